"""``gsg views`` for series: each sample's whole series beside its augmented views, drawn with matplotlib."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from gsg_multimodal.errors import UserError

from .series import SeriesBatch

MAX_CHANNELS = 3  # more channels than this make a small panel unreadable; the first ones are drawn


def _rows(view: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """A view or eval input -> (``x [N, C, T]`` on the CPU, valid lengths ``[N]``)."""
    if isinstance(view, SeriesBatch):
        return view.x.detach().float().cpu(), view.lengths.cpu()
    x = view.detach().float().cpu()
    return x, torch.full((x.shape[0],), x.shape[-1])


def save_views_grid(batch: dict[str, Any], views: list[Any], path: Path, eval_input: Any) -> None:
    """One row per sample: the eval input (whole series), then each view, first channels overlaid.

    Views are drawn at their own length on the original's step axis scale, so a crop looks shorter.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise UserError("drawing views needs matplotlib; run: pip install matplotlib") from e
    panels = [_rows(eval_input), *(_rows(v) for v in views)]
    n = panels[0][0].shape[0]
    channels = min(panels[0][0].shape[1], MAX_CHANNELS)
    longest = max(int(lengths.max()) for _, lengths in panels)
    fig, axes = plt.subplots(n, len(panels), figsize=(2.6 * len(panels), 1.6 * n), squeeze=False, sharey="row")
    colors = ["tab:blue", "tab:orange", "tab:green"]
    for i in range(n):
        for j, (x, lengths) in enumerate(panels):
            ax = axes[i][j]
            steps = int(lengths[i])
            for c in range(channels):
                ax.plot(range(steps), x[i, c, :steps].numpy(), lw=0.8, color=colors[c])
            ax.set_xlim(0, longest - 1)
            ax.tick_params(labelsize=6)
            if i == 0:
                ax.set_title("whole series" if j == 0 else f"view {j}", fontsize=8)
            ax.text(0.98, 0.04, f"{steps} steps", transform=ax.transAxes, ha="right", fontsize=6, color="gray")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
