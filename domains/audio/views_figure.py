"""``gsg views`` for audio: each sample's eval log-mel (or waveform) next to its random views."""

from __future__ import annotations

from pathlib import Path

import torch


def save_views_grid(originals: torch.Tensor, views: list[torch.Tensor], path: Path, waveform: bool) -> None:
    """One row per sample: the deterministic eval input, then each view; log-mels as images, low bands at the bottom."""
    import matplotlib

    matplotlib.use("Agg")  # no display on a training machine
    import matplotlib.pyplot as plt

    n, cols = originals.shape[0], 1 + len(views)
    fig, axes = plt.subplots(n, cols, figsize=(2.2 * cols, 1.6 * n), squeeze=False)
    for i in range(n):
        for j, x in enumerate([originals, *views]):
            ax = axes[i][j]
            item = x[i].detach().float().cpu()
            if waveform:
                ax.plot(item[0].numpy(), linewidth=0.4)
            else:
                ax.imshow(item[0].numpy(), origin="lower", aspect="auto", cmap="magma", vmin=-3, vmax=3)
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title("eval input" if j == 0 else f"view {j}", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
