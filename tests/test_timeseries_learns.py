"""A short real pretraining run on a tiny built-in set beats its untrained encoder (the pipeline can learn)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gsg_multimodal.cli import main
from gsg_multimodal.evaluate import evaluate_run

from .conftest import ROOT

SMALL = [
    "objective.method=ts2vec",
    "train.steps=80",
    "encoder.depth=6",
    "encoder.hidden=32",
    "encoder.out_dim=128",
    "views.max_train_length=128",
    "train.progress_bar=false",
    "train.trackers=[none]",
    "train.cpu=true",
    "eval.cv_folds=3",
]


@pytest.mark.slow
def test_a_short_run_on_arrowhead_beats_its_untrained_encoder(tmp_path: Path) -> None:
    """ArrowHead (36 train / 175 test series), 80 steps of the TS2Vec objective with a small encoder, about 20 s.

    Scored by kNN on the 175 test series: the train split's 36 series are too few for a cross-validated
    kNN to tell the two apart (5-fold folds of 7 series; seen: the same 0.69-0.81 for both). Seen on the
    2-core machine: 72.6 % against 62.3 % for the untrained encoder (seed 0); SVM 73.1 against 70.3.
    Instance-level GSG at this tiny budget does not beat it (docs/timeseries.md has the full budget).
    """
    run = tmp_path / "run"
    config = str(ROOT / "configs" / "arrowhead_gsg.yaml")
    assert main(["pretrain", config, *SMALL, f"output_dir={run}"]) == 0
    trained = evaluate_run(run)
    untrained = evaluate_run(run, random_init=True)
    assert trained["knn"]["accuracy"] >= untrained["knn"]["accuracy"] + 0.05, (trained["knn"], untrained["knn"])
