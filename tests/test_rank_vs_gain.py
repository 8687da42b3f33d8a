"""benchmarks/rank_vs_gain.py: pairing each trained cell with its untrained twin."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

from .conftest import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
import rank_vs_gain  # noqa: E402

FIELDS = ["dataset", "row", "seed", "svm", "linear", "knn", "effective_rank"]


def _row(ds: str, row: str, seed: int, svm: float, rank: str) -> dict[str, str]:
    return dict(zip(FIELDS, [ds, row, str(seed), str(svm), "0.5", "0.5", rank], strict=True))


def test_each_cell_is_paired_with_the_untrained_cell_of_its_data_set_and_seed() -> None:
    rows = [
        _row("A", "untrained", 0, 0.50, "10"),
        _row("A", "untrained", 1, 0.60, "20"),
        _row("B", "untrained", 0, 0.90, "40"),
        _row("A", "GSG", 0, 0.70, "30"),  # +20 points, rank x3
        _row("A", "GSG", 1, 0.55, "10"),  # -5 points, rank x0.5
        _row("B", "GSG", 0, 0.90, "40"),  # level
        _row("B", "MFCC", 0, 0.95, ""),  # hand-crafted: no rank, left out
        _row("C", "GSG", 0, 0.95, "40"),  # no untrained twin: left out
    ]
    got = rank_vs_gain.pairs(rows, "untrained", "svm")
    assert set(got) == {"GSG"}
    assert [(round(g, 6), r) for g, r in got["GSG"]] == [(20.0, 3.0), (-5.0, 0.5), (0.0, 1.0)]


def test_the_script_prints_a_row_per_objective_and_refuses_a_missing_untrained_row(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, FIELDS)
        w.writeheader()
        for seed in range(4):
            w.writerow(_row("A", "untrained", seed, 0.5, "10"))
            w.writerow(_row("A", "GSG", seed, 0.5 + 0.1 * seed, str(10 + seed)))  # gain rises with rank
    script = str(ROOT / "benchmarks" / "rank_vs_gain.py")
    done = subprocess.run([sys.executable, script, str(path)], capture_output=True, text=True, check=True)
    assert "| GSG | 4 | 1.15 | +15.0 | 1.00 |" in done.stdout
    bad = subprocess.run([sys.executable, script, str(path), "--untrained", "random"], capture_output=True, text=True)
    assert bad.returncode != 0 and bad.stderr.strip().count("\n") == 0 and "--untrained" in bad.stderr
