"""The TF-IDF + logistic regression floor: C chosen by CV on train only, the shape the core's tables read."""

from __future__ import annotations

import datasets
import pytest

from gsg_domains.text.data import TextDataConfig, load_text
from gsg_domains.text.floor import NAME, tfidf_floor
from gsg_multimodal.config import EvalConfig
from gsg_multimodal.domain import DataSplits
from gsg_multimodal.probes import CV_SKIPPED, format_table


def test_floor_on_real_snippets_beats_chance_and_fits_the_result_tables():
    data = load_text(TextDataConfig(name="rotten_tomatoes", labels=["fresh", "rotten"], limit=600))
    res = tfidf_floor(data, EvalConfig(cv_folds=3, logreg_c=[0.1, 1.0, 10.0]), seed=0)
    assert res["name"] == NAME and set(res) == {"name", "linear"}
    lin = res["linear"]
    assert lin["params"]["C"] in (0.1, 1.0, 10.0) and 0.5 < lin["cv_accuracy"] <= 1.0
    assert 0.55 < lin["accuracy"] <= 1.0  # fresh is 58 % of the snippets: a floor, but above the majority
    assert NAME in format_table({NAME: res})


def test_test_split_does_not_influence_the_choice_of_c():
    data = load_text(TextDataConfig(name="rotten_tomatoes", labels=["fresh", "rotten"], limit=300))
    flipped = data.test.map(lambda r: {"label": 1 - r["label"]})
    cfg = EvalConfig(cv_folds=3, logreg_c=[0.1, 1.0, 10.0])
    a = tfidf_floor(data, cfg, seed=0)["linear"]
    b = tfidf_floor(DataSplits(data.pretrain, data.train, flipped, data.label_names), cfg, seed=0)["linear"]
    assert a["params"] == b["params"] and a["cv_accuracy"] == b["cv_accuracy"]
    assert b["accuracy"] == pytest.approx(1.0 - a["accuracy"])  # the same predictions, scored against flipped labels


def test_tiny_or_single_sample_classes_skip_cv_as_the_core_probes_do():
    ds = datasets.Dataset.from_dict({"text": ["good film", "bad film", "good good"], "label": [1, 0, 1]})
    res = tfidf_floor(DataSplits(ds, ds, ds, ["bad", "good"]), EvalConfig(), seed=0)["linear"]
    assert res["params"] == {"C": 1.0, "cv": CV_SKIPPED} and res["cv_accuracy"] is None
