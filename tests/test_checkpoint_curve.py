"""benchmarks/checkpoint_curve.py: one run's probe scores at step 0 and at every kept checkpoint."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

from gsg_multimodal.cli import main

from .conftest import ROOT, TINY

SCRIPT = ROOT / "benchmarks" / "checkpoint_curve.py"


def _curve(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=600)


def test_curve_scores_the_untrained_encoder_and_each_checkpoint_like_gsg_evaluate(tmp_path: Path) -> None:
    run = tmp_path / "run"
    extra = ["train.checkpoint_every=2", "train.keep_checkpoints=4", "monitor.knn_every=0", f"output_dir={run}"]
    assert main(["pretrain", str(ROOT / "configs" / "acsf1_gsg.yaml"), *TINY, *extra]) == 0  # 10 steps
    assert main(["evaluate", str(run)]) == 0
    assert main(["evaluate", str(run), "--random-init"]) == 0

    done = _curve(str(run), "eval.cv_folds=2")
    assert done.returncode == 0, done.stdout + done.stderr
    rows = list(csv.DictReader((run / "curve.csv").open()))
    assert [int(r["step"]) for r in rows] == [0, 4, 6, 8, 10]  # step 0, then the 4 kept checkpoints, oldest first
    for row, name in ((rows[0], "eval_random.json"), (rows[-1], "eval.json")):
        expected = json.loads((run / name).read_text())  # the same probes as gsg evaluate
        for probe in ("knn", "linear", "svm"):
            assert float(row[probe]) == round(100 * expected[probe]["accuracy"], 2)

    scored = [p.stat().st_mtime_ns for p in sorted((run / "curve").glob("step-*/eval*.json"))]
    again = _curve(str(run), "eval.cv_folds=2")  # finished points are read back, not recomputed
    assert again.returncode == 0 and list(csv.DictReader((run / "curve.csv").open())) == rows
    assert [p.stat().st_mtime_ns for p in sorted((run / "curve").glob("step-*/eval*.json"))] == scored

    other = _curve(str(run), "eval.cv_folds=3", "--out", str(tmp_path / "other.csv"))  # other settings: rescored
    assert other.returncode == 0
    rescored = [p.stat().st_mtime_ns for p in sorted((run / "curve").glob("step-*/eval*.json"))]
    assert all(before < after for before, after in zip(scored, rescored, strict=True))


def test_curve_refuses_a_folder_without_checkpoints(tmp_path: Path) -> None:
    done = _curve(str(tmp_path))
    assert done.returncode != 0 and done.stderr.strip().splitlines() == [
        f"error: '{tmp_path}' is not a run directory with checkpoints; pass a 'gsg pretrain' output_dir"
    ]
