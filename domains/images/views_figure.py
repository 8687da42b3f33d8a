"""``gsg views``: a PNG grid of samples (first column) and their augmented views (next columns)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch


def _to_image(x: torch.Tensor) -> np.ndarray:
    """``[C, H, W]`` in [0, 1] -> ``[H, W]`` (gray) or ``[H, W, 3]`` float for ``imshow``."""
    a = x.detach().float().clamp(0, 1).cpu().numpy()
    return a[0] if a.shape[0] == 1 else a.transpose(1, 2, 0)


def save_grid(originals: torch.Tensor, views: list[torch.Tensor], path: Path, title: str) -> None:
    """Draw ``originals [N, C, H, W]`` and each of ``views`` (same shape, all in [0, 1]) row by row."""
    import matplotlib

    matplotlib.use("Agg")  # no display needed; the figure only goes to a file
    import matplotlib.pyplot as plt

    n, cols = originals.shape[0], 1 + len(views)
    fig, axes = plt.subplots(n, cols, figsize=(1.3 * cols, 1.3 * n + 0.4), squeeze=False)
    for i in range(n):
        for j, img in enumerate([originals[i]] + [v[i] for v in views]):
            ax = axes[i, j]
            ax.imshow(_to_image(img), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title("original" if j == 0 else f"view {j}", fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
