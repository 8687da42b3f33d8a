"""``gsg views`` for text: each sample's sentence and its views, decoded back to words, as a PNG (and .txt)."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any


def decode_views(tokenizer: Any, batch: dict[str, Any], views: list[Any]) -> list[list[str]]:
    """Per sample: the original sentence, then each view, decoded without special tokens or padding."""

    # Special tokens other than the mask token are dropped, so masked spans stay visible.
    hidden = set(tokenizer.all_special_ids) - {tokenizer.mask_token_id}

    def text(ids: Any, mask: Any) -> str:
        return tokenizer.decode([t for t in ids[mask.bool()].tolist() if t not in hidden])

    rows = []
    for i in range(batch["input_ids"].shape[0]):
        row = [text(batch["input_ids"][i], batch["attention_mask"][i])]
        row += [text(v["input_ids"][i], v["attention_mask"][i]) for v in views]
        rows.append(row)
    return rows


def save_views_text(tokenizer: Any, batch: dict[str, Any], views: list[Any], path: Path) -> None:
    """Write the decoded views to ``path`` (PNG via matplotlib) and the same text next to it as ``.txt``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = decode_views(tokenizer, batch, views)
    lines: list[str] = []
    for i, row in enumerate(rows):
        lines.append(f"sample {i}: {row[0]}")
        lines += [f"  view {j}: {v}" for j, v in enumerate(row[1:], 1)]
        lines.append("")
    Path(path).with_suffix(".txt").write_text("\n".join(lines))
    wrapped = [w for line in lines for w in (textwrap.wrap(line, 110, subsequent_indent="      ") or [""])]
    fig = plt.figure(figsize=(11, 0.2 * len(wrapped) + 0.5))
    fig.text(0.01, 0.99, "\n".join(wrapped), va="top", ha="left", family="monospace", fontsize=8)
    fig.savefig(path, dpi=100)
    plt.close(fig)
