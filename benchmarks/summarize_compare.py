"""Mean +- sample std (ddof=1, as in the benchmark report) over seeds of several ``gsg compare`` folders, as Markdown.

    python benchmarks/summarize_compare.py runs/compare/acsf1-seed0 runs/compare/acsf1-seed1 ...

Each folder holds one run directory per variant (``eval.json``) and the random-init floor
(``eval_random.json`` in the first variant's folder).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from gsg_multimodal.stats import mean_std

PROBES = (("knn", "kNN"), ("linear", "linear"), ("svm", "SVM"))


def collect(folders: list[Path]) -> dict[str, dict[str, list[float]]]:
    scores: dict[str, dict[str, list[float]]] = {}
    for folder in folders:
        runs = sorted(p.parent for p in folder.glob("*/eval.json"))
        for run in runs:
            add(scores, run.name, json.loads((run / "eval.json").read_text()))
        floors = sorted(folder.glob("*/eval_random.json"))
        if floors:  # named by the domain ("random init", "MiniLM as shipped", ...), as the run wrote it
            floor = json.loads(floors[0].read_text())
            add(scores, floor.get("encoder", "random init"), floor)
    return scores


def add(scores: dict, name: str, result: dict) -> None:
    row = scores.setdefault(name, {})
    for probe, _ in PROBES:
        row.setdefault(probe, []).append(100 * result[probe]["accuracy"])


def main(argv: list[str]) -> None:
    folders = [Path(a) for a in argv]
    scores = collect(folders)
    print(f"Accuracy on the test split, mean +- sample std (ddof=1) over {len(folders)} seeds (one folder per seed).\n")
    print("| encoder | " + " | ".join(f"{label} acc" for _, label in PROBES) + " |")
    print("| --- | " + " | ".join("---:" for _ in PROBES) + " |")
    for name, row in scores.items():
        cells = [f"{mean_std(row[p])[0]:.1f} +- {mean_std(row[p])[1]:.1f} (n={len(row[p])})" for p, _ in PROBES]
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main(sys.argv[1:])
