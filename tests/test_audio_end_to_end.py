"""Tiny real runs of the audio domain: drums (GSG), synthetic spoken words (waveform encoder), ``gsg views``."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
import torch

from gsg_domains.audio.data import DRUMKITS_DIR
from gsg_multimodal import load_encoder
from gsg_multimodal.cli import main

from .conftest import ROOT

TINY = [
    "data.limit=32",
    "data.max_seconds=0.5",
    "views.crop_seconds=0.3",
    "encoder.channels=8",
    "encoder.out_dim=32",
    "model.projector_hidden=32",
    "model.projector_dim=32",
    "model.predictor_hidden=8",
    "train.steps=null",  # the drums recipe counts optimiser steps; these tiny runs count epochs
    "train.epochs=1",
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


@pytest.mark.slow
@pytest.mark.skipif(not Path(DRUMKITS_DIR).is_dir(), reason="Debian package hydrogen-drumkits is not installed")
def test_gsg_on_real_drums_then_evaluate_random_init_and_mfcc_floor(tmp_path: Path) -> None:
    run = tmp_path / "drums"
    assert main(["pretrain", str(ROOT / "configs" / "drums_gsg.yaml"), *TINY, f"output_dir={run}"]) == 0
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in rows if "loss" in r]
    assert [r["step"] for r in steps] == [1, 2, 3, 4]  # 32 clips / batch 8, GSG with 4 views
    assert all(-1.0 <= r["loss"] <= 1.0 for r in steps)
    assert any("knn_acc" in r for r in rows)

    assert main(["evaluate", str(run)]) == 0
    assert main(["evaluate", str(run), "--random-init"]) == 0
    assert main(["evaluate", str(run), "--floor"]) == 0
    for name in ("eval.json", "eval_random.json", "eval_floor.json"):
        res = json.loads((run / name).read_text())
        for probe in ("knn", "linear", "svm"):
            assert 0.0 <= res[probe]["accuracy"] <= 1.0
    assert json.loads((run / "eval_floor.json").read_text())["name"] == "MFCC statistics"

    # The export rebuilds with its front-end statistics and reads log-mels of the configured size.
    encoder = load_encoder(str(run))
    info = encoder.gsg_config["info"]
    assert info["dataset"] == "drums" and info["n_mels"] == 64 and info["logmel_std"] > 0
    assert encoder(torch.randn(2, 1, 64, 31)).shape == (2, encoder.out_dim)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed (apt-get install espeak-ng)")
def test_spoken_words_script_then_waveform_encoder_run(tmp_path: Path) -> None:
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import make_spoken_words
    finally:
        sys.path.pop(0)
    words = tmp_path / "words"
    make_spoken_words.main(
        [
            str(words),
            "--words",
            "yes,no",
            "--accents",
            "en-us,en-gb",
            "--variants",
            "m1,f2",
            "--speeds",
            "150,190",
            "--pitches",
            "50",
            "--test-every",
            "2",
        ]
    )
    assert "SYNTHETIC" in (words / "README.md").read_text()
    assert len(list((words / "train").rglob("*.wav"))) == 8 and len(list((words / "test").rglob("*.wav"))) == 8

    run = tmp_path / "run"
    extra = [
        f"data.path={words}",
        "data.sample_rate=8000",
        "data.f_max=3900",
        "views.crop_seconds=0.5",
        "encoder.name=dilated_cnn",
        "encoder.hidden=8",
        "encoder.depth=2",
        "encoder.out_dim=16",
        "encoder.dropout=0.0",
        "objective.method=simsiam",
        "train.batch_size=4",
        "train.steps=null",  # the config counts steps; this run counts one epoch
        "train.epochs=1",
        "train.progress_bar=false",
        "train.trackers=[none]",
        "train.cpu=true",
        "train.checkpoint_every=0",
        "monitor.knn_every=0",
        "model.projector_hidden=16",
        "model.projector_dim=16",
        "model.predictor_hidden=8",
        "eval.cv_folds=2",
        f"output_dir={run}",
    ]
    assert main(["pretrain", str(ROOT / "configs" / "spoken_simsiam.yaml"), *extra]) == 0
    assert main(["evaluate", str(run)]) == 0
    assert json.loads((run / "eval.json").read_text())["feature_dim"] == 32  # mean+max pooling: concatenated
    assert load_encoder(str(run))(torch.randn(1, 1, 4000)).shape == (1, 32)


def test_views_command_draws_log_mels(tmp_path: Path) -> None:
    if not Path(DRUMKITS_DIR).is_dir():
        pytest.skip("Debian package hydrogen-drumkits is not installed")
    out = tmp_path / "views.png"
    cfg = str(ROOT / "configs" / "drums_gsg.yaml")
    assert (
        main(
            ["views", cfg, "data.limit=8", "data.max_seconds=0.5", "--samples", "3", "--views", "2", "--out", str(out)]
        )
        == 0
    )
    assert out.stat().st_size > 1000
