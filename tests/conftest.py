from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

# Tiny, real pretraining runs: BasicMotions (40 train / 40 test series, 6 channels, length 100).
TINY = [
    "data.name=BasicMotions",
    "views.length=64",
    "encoder.hidden=16",
    "encoder.depth=2",
    "encoder.out_dim=32",
    "model.projector_hidden=32",
    "model.projector_dim=32",
    "model.predictor_hidden=8",
    "train.steps=null",  # the shipped recipe counts optimiser steps; these tiny runs count epochs
    "train.epochs=2",
    "train.batch_size=8",
    "train.log_every=1",
    "train.checkpoint_every=0",
    "train.progress_bar=false",
    "train.trackers=[none]",
    "train.cpu=true",
    "monitor.knn_every=1",
    "optim.warmup_fraction=0",
    "eval.cv_folds=2",
]


@pytest.fixture(autouse=True)
def fresh_accelerate_state():
    """Each test gets its own Accelerate state, as a new process would."""
    yield
    from accelerate.state import AcceleratorState, PartialState

    AcceleratorState._reset_state(reset_partial_state=True)
    PartialState._reset_state()
