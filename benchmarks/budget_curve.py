"""Probe accuracy against minutes of pretraining, one line per objective, from finished table cells.

    python benchmarks/budget_curve.py benchmarks/fmnist_lr012.yaml=runs/fmnist_lr012 \\
        benchmarks/fmnist_sweep.yaml=runs/fmnist_sweep --probe linear --lr 0.12 --out docs/data/fmnist_budget_lr012.png

Each argument is a table file (``benchmarks/ts_table.py``'s format) and the folder of its cells. A cell is a
point of its objective's line (``objective.method`` in its overrides) when it trains at the base config's
learning rate, i.e. it overrides ``optim.lr`` to nothing else than ``--lr`` (other cells are the lr sweep).
x: median pretraining minutes over the seeds of that (objective, steps); y: mean accuracy, bars one sample
std when there are several seeds. The untrained encoder is the dashed line. Prints the points as a table.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import ts_table  # noqa: E402  (the sibling script: its cell layout and reader)


def override(overrides: list[str], key: str) -> str | None:
    """The last value ``overrides`` give ``key`` (later overrides win, as in ``gsg``), or None."""
    values = [o.split("=", 1)[1] for o in overrides if o.startswith(f"{key}=")]
    return values[-1] if values else None


def points(tables: list[tuple[Path, Path]], probe: str, lr: str | None) -> dict[str, list[dict[str, Any]]]:
    """``{objective: [{"steps", "minutes", "mean", "std", "n"}]}`` sorted by steps; ``"untrained"`` has steps 0."""
    by_key: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for table_file, out in tables:
        table = ts_table.load_table(table_file)
        for results in ts_table.collect(out, table).values():
            for r in results:
                kind = r.get("kind", "random" if r["steps"] == 0 else "trained")  # cells before kinds were kept
                if kind == "floor":
                    continue
                method = "untrained" if kind == "random" else override(r["overrides"], "objective.method")
                cell_lr = override(r["overrides"], "optim.lr")
                if method is None or (lr is not None and cell_lr is not None and float(cell_lr) != float(lr)):
                    continue
                by_key.setdefault((method, r["steps"]), []).append(r)
    curves: dict[str, list[dict[str, Any]]] = {}
    for (method, steps), rs in sorted(by_key.items(), key=lambda kv: kv[0][1]):
        scores = [100 * r["scores"][probe] for r in rs]
        curves.setdefault(method, []).append(
            {
                "steps": steps,
                "minutes": statistics.median(r["train_s"] for r in rs) / 60,
                "mean": statistics.fmean(scores),
                "std": statistics.stdev(scores) if len(scores) > 1 else 0.0,
                "n": len(scores),
            }
        )
    return curves


def draw(curves: dict[str, list[dict[str, Any]]], probe: str, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for method, pts in curves.items():
        if method == "untrained":
            ax.axhline(pts[0]["mean"], color="gray", linestyle="--", label="untrained encoder")
            continue
        ax.errorbar(
            [p["minutes"] for p in pts],
            [p["mean"] for p in pts],
            yerr=[p["std"] for p in pts],
            marker="o",
            capsize=3,
            label=method,
        )
    ax.set_xlabel("pretraining wall time, minutes")
    ax.set_ylabel(f"{probe} probe test accuracy, %")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tables", nargs="+", help="TABLE.yaml=CELLS_FOLDER pairs")
    parser.add_argument("--probe", default="linear", choices=ts_table.PROBES)
    parser.add_argument(
        "--lr", default="0.12", help="the base learning rate (the configs' own); cells at other rates are left out"
    )
    parser.add_argument("--title", default="Fashion-MNIST, small_cnn, one CPU core per run")
    parser.add_argument("--out", type=Path, required=True, help="the PNG to write")
    args = parser.parse_args()
    pairs = []
    for item in args.tables:
        if "=" not in item:
            raise SystemExit(f"error: '{item}' is not TABLE.yaml=CELLS_FOLDER")
        table, out = item.split("=", 1)
        pairs.append((Path(table), Path(out)))
    curves = points(pairs, args.probe, args.lr)
    if not curves:
        raise SystemExit("error: no finished cells in those folders; run the tables first")
    print(f"| objective | steps | minutes | {args.probe} % | seeds |\n|---|---:|---:|---:|---:|")
    for method, pts in curves.items():
        for p in pts:
            print(f"| {method} | {p['steps']} | {p['minutes']:.1f} | {p['mean']:.1f} ± {p['std']:.1f} | {p['n']} |")
    draw(curves, args.probe, args.out, args.title)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
