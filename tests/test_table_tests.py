"""benchmarks/table_tests.py: data-set-level tests between the rows of a table runner CSV."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
import table_tests  # noqa: E402

SCRIPT = str(ROOT / "benchmarks" / "table_tests.py")


def _write(path: Path, scores: dict[tuple[str, str, int], float]) -> None:
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, ["dataset", "row", "seed", "svm", "linear", "knn"])
        w.writeheader()
        for (ds, row, seed), v in scores.items():
            w.writerow({"dataset": ds, "row": row, "seed": seed, "svm": v, "linear": v, "knn": v})


def test_equal_scores_tie_and_only_shared_seeds_are_paired() -> None:
    rows = [
        {"dataset": "A", "row": "x", "seed": "0", "svm": str(0.1 + 0.2)},
        {"dataset": "A", "row": "y", "seed": "0", "svm": "0.3"},  # 0.1 + 0.2 != 0.3 in floats: must still tie
        {"dataset": "A", "row": "x", "seed": "1", "svm": "0.9"},  # y has no seed 1: not paired
    ]
    assert table_tests.differences(rows, "x", "y", "svm") == {"A": [0.0]}


def test_a_row_name_with_a_dash_is_split_where_both_halves_are_rows() -> None:
    names = {"GSG instance", "TS2Vec objective", "gsg-random"}
    assert table_tests.parse_comparison("gsg-random-GSG instance", names) == ("gsg-random", "GSG instance")
    with pytest.raises(SystemExit, match="is not 'A-B'"):
        table_tests.parse_comparison("GSG-SimSiam", names)


def test_known_answers_over_six_data_sets_with_holm_over_the_family(tmp_path: Path) -> None:
    scores = {}
    for i, ds in enumerate("ABCDEF"):
        for seed in range(3):
            scores[(ds, "base", seed)] = 0.5 + 0.01 * seed
            scores[(ds, "better", seed)] = 0.5 + 0.01 * seed + 0.02  # +2 points on every data set and seed
            scores[(ds, "mixed", seed)] = 0.5 + 0.01 * seed + (0.02 if i < 3 else -0.02)
    path = tmp_path / "t.csv"
    _write(path, scores)
    out = subprocess.run(
        [sys.executable, SCRIPT, str(path), "better-base", "mixed-base"], capture_output=True, text=True, check=True
    ).stdout
    # All six data sets one way: the exact sign-flip p is its floor 2/2^6 = 0.031; Holm doubles the smaller p.
    assert "| better - base | 6 | 6 / 0 / 0 | +2.0 | [+2.0, +2.0] | 0.031 | 0.031 | 0.062 |" in out
    # Three up, three down by the same amount: mean 0, every sign pattern is at least as extreme.
    assert "| mixed - base | 6 | 3 / 0 / 3 | +0.0 |" in out and "| 1.000 | 0.031 | 1.000 |" in out


def test_rows_that_share_no_seed_or_a_missing_file_are_refused_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    _write(path, {("A", "x", 0): 0.5, ("A", "y", 1): 0.6})
    for args, needle in (([str(path), "x-y"], "share no seed"), ([str(tmp_path / "no.csv"), "x-y"], "no CSV at")):
        done = subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True)
        assert done.returncode != 0 and needle in done.stderr and done.stderr.strip().count("\n") == 0
