"""benchmarks/text_lsa_reference.py: the unsupervised width-d yardstick for text encoders."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from gsg_multimodal.errors import UserError

from .conftest import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
import text_lsa_reference  # noqa: E402


def _corpus(n: int, seed: int) -> tuple[list[str], np.ndarray]:
    """Snippets whose label is carried by which of two word families they use, among shared filler words."""
    rng = np.random.default_rng(seed)
    good, bad = ["superb", "moving", "brilliant", "warm"], ["dull", "clumsy", "tedious", "flat"]
    filler = [f"w{i}" for i in range(40)]
    texts, labels = [], []
    for i in range(n):
        y = i % 2
        words = list(rng.choice(filler, 6)) + list(rng.choice(bad if y else good, 2))
        rng.shuffle(words)
        texts.append(" ".join(words))
        labels.append(y)
    return texts, np.array(labels)


def test_a_wide_enough_summary_keeps_the_words_that_carry_the_label() -> None:
    train_x, train_y = _corpus(200, 0)
    test_x, test_y = _corpus(100, 1)
    scores = text_lsa_reference.lsa_scores(train_x, train_y, test_x, test_y, [1, 40])
    assert scores[40]["linear"] >= 95  # enough dimensions for every word family
    assert scores[1]["linear"] < scores[40]["linear"]  # one direction cannot hold them all
    assert scores[40]["C"] in text_lsa_reference.C_GRID


def test_a_width_beyond_the_vocabulary_is_refused_in_one_line() -> None:
    train_x, train_y = _corpus(60, 0)
    with pytest.raises(UserError, match="--dims 5000"):
        text_lsa_reference.lsa_scores(train_x, train_y, train_x, train_y, [5000])


def test_a_missing_run_is_one_line_on_stderr(tmp_path) -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "text_lsa_reference.py"), str(tmp_path / "nope")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "not a run directory" in done.stderr


def test_a_run_of_another_domain_is_refused_in_one_line(tmp_path) -> None:
    run = tmp_path / "ts_run"
    run.mkdir()
    (run / "config.yaml").write_text((ROOT / "configs" / "acsf1_gsg.yaml").read_text())
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "text_lsa_reference.py"), str(run)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "is a timeseries run; this reference is for text runs" in done.stderr
