"""The benchmark report's matplotlib figures: drawn from the series ``report_tables`` computes, saved as PNG.

Each ``draw_*`` function takes plain series and returns a figure; ``FigureWriter`` saves it beside the
report and returns the markdown that shows it. matplotlib is imported only here, and only when drawing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .variants import display_name


class FigureWriter:
    """Saves figures to ``<report stem>_figures/`` and returns the markdown image lines."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.fig_dir = out.parent / f"{out.stem}_figures"
        self.paths: list[str] = []

    def save(self, fig: Any, name: str, caption: str) -> list[str]:
        import matplotlib.pyplot as plt

        self.fig_dir.mkdir(parents=True, exist_ok=True)
        path = self.fig_dir / f"{name}.png"
        fig.savefig(path, dpi=110, bbox_inches="tight")
        plt.close(fig)
        self.paths.append(str(path))
        return [f"![{caption}]({path.relative_to(self.out.parent).as_posix()})", "", f"*{caption}*", ""]


def panels(n: int, width: float = 4.2, height: float = 3.2) -> tuple[Any, list[Any]]:
    """A figure with ``n`` axes side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, n, figsize=(width * n, height), squeeze=False)
    return fig, list(axes[0])


def draw_batch_sweep(plot: dict[str, list[tuple[str, list, list, list]]]) -> Any:
    fig, axes = panels(len(plot))
    for ax, (ds, series) in zip(axes, plot.items(), strict=True):
        for label, xs, ms, ss in series:
            if xs:
                ax.errorbar(xs, ms, yerr=ss, marker="o", capsize=3, label=label)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("batch size")
        ax.set_ylabel("linear-probe accuracy (%)")
        ax.set_title(ds)
        ax.legend(fontsize=7)
    return fig


def draw_z_std(plot: dict[str, list[tuple[str, list, list, bool]]], seed: int) -> Any:
    fig, axes = panels(len(plot))
    for ax, (ds, series) in zip(axes, plot.items(), strict=True):
        for label, steps, values, with_predictor in series:
            ax.plot(steps, values, linestyle="-" if with_predictor else "--", label=label)
        ax.axhline(1.0, color="grey", linewidth=0.8)
        ax.set_xlabel("step")
        ax.set_ylabel("z-std x sqrt(d)")
        ax.set_title(f"{ds} (seed {seed})")
        ax.legend(fontsize=7)
    return fig


def draw_pairings(plot: tuple[str, dict[str, dict[str, tuple[list, list]]]]) -> Any:
    ds, curves = plot
    fig, axes = panels(len(curves))
    for ax, (obj, by_key) in zip(axes, curves.items(), strict=True):
        for k, (steps, values) in by_key.items():
            ax.plot(steps, values, label=k[5:])
        ax.set_ylim(0, 0.6)
        ax.set_title(f"{display_name(obj)}, {ds}")
        ax.set_xlabel("step")
        ax.legend(fontsize=7)
    return fig


def draw_embedding_map(runs: list[tuple[str, Path]]) -> Any:
    """t-SNE of each run's test-split embeddings, coloured by label."""
    import numpy as np
    from sklearn.manifold import TSNE

    fig, axes = panels(len(runs), 4.0, 3.8)
    for ax, (obj, run_dir) in zip(axes, runs, strict=True):
        x, y = split_features(run_dir, random_init=obj == "random")
        xy = TSNE(n_components=2, perplexity=min(30.0, (len(x) - 1) / 3), random_state=0, init="pca").fit_transform(x)
        for label in np.unique(y):
            m = y == label
            ax.scatter(xy[m, 0], xy[m, 1], s=6, label=str(label))
        ax.set_title(display_name(obj), fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    axes[-1].legend(fontsize=6, markerscale=2, loc="best")
    return fig


def split_features(run_dir: Path, random_init: bool) -> tuple[Any, Any]:
    """Frozen features and labels of a run's test split (the encoder before pretraining if ``random_init``)."""
    from .evaluate import run_features

    feats, *_ = run_features(run_dir, random_init, splits=("test",))
    return feats["test"]
