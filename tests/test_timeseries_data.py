"""Time-series data loading: the .ts parser, the built-in archives and the user's own files."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from gsg_domains.timeseries import data as tsdata
from gsg_domains.timeseries.data import (
    BUILTIN_DATASETS,
    TimeSeriesDataConfig,
    load_timeseries,
    read_ts_file,
)
from gsg_multimodal.errors import UserError


def rows(ds) -> list[np.ndarray]:
    return [np.asarray(r["series"], dtype=np.float32) for r in ds]


def user(path, **kw) -> TimeSeriesDataConfig:
    return TimeSeriesDataConfig(path=str(path), **kw)


def one_line_error(cfg: TimeSeriesDataConfig, *fragments: str) -> str:
    with pytest.raises(UserError) as info:
        load_timeseries(cfg)
    message = str(info.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message
    return message


# ---------------------------------------------------------------- the .ts parser


@pytest.mark.parametrize("name", ["ACSF1", "BasicMotions", "JapaneseVowels"])
def test_parser_matches_aeon(name):
    aeon_datasets = pytest.importorskip("aeon.datasets")
    _, train_file, test_file = tsdata._builtin_files(name)
    for path in (train_file, test_file):
        ours, labels = read_ts_file(path)
        theirs, their_labels = aeon_datasets.load_from_ts_file(str(path))
        assert len(ours) == len(theirs)
        for a, b in zip(ours, theirs, strict=True):
            assert a.dtype == np.float32
            np.testing.assert_array_equal(a, np.asarray(b, dtype=np.float32))  # NaN-aware
        assert [s.lower() for s in labels] == list(their_labels)  # aeon lower-cases labels; we keep them


def test_parser_missing_values_and_errors(tmp_path):
    good = tmp_path / "tiny.ts"
    good.write_text("# comment\n@problemName tiny\n@classLabel true a b\n@data\n1,?,3:4,5,NaN:a\n\n2,2:3,3:b\n")
    series, labels = read_ts_file(good)
    assert labels == ["a", "b"] and [s.shape for s in series] == [(2, 3), (2, 2)]
    assert np.isnan(series[0][0, 1]) and np.isnan(series[0][1, 2])

    splits = load_timeseries(user(good, nan_policy="interpolate"))  # a user's own .ts file
    assert splits.label_names == ["a", "b"] and splits.info["channels"] == 2

    unlabelled = tmp_path / "u.ts"
    unlabelled.write_text("@classLabel false\n@data\n1,2,3\n")
    assert read_ts_file(unlabelled)[1] is None

    for body, line in [("@data\n1,2:3\n", 2), ("@data\n1,x,3\n", 2), ("@classLabel true a\n1,2:a\n", 2)]:
        bad = tmp_path / "bad.ts"
        bad.write_text(body)
        with pytest.raises(UserError, match=f"line {line}"):
            read_ts_file(bad)


# ---------------------------------------------------------------- built-in archives


@pytest.mark.parametrize(
    ("name", "n_train", "n_test", "channels", "min_len", "max_len", "classes"),
    [
        ("ACSF1", 100, 100, 1, 1460, 1460, 10),
        ("BasicMotions", 40, 40, 6, 100, 100, 4),
        ("JapaneseVowels", 270, 370, 12, 7, 29, 9),
        ("PLAID", 537, 537, 1, 100, 1344, 11),
    ],
)
def test_builtin_shapes(name, n_train, n_test, channels, min_len, max_len, classes):
    splits = load_timeseries(TimeSeriesDataConfig(name=name))
    assert (splits.pretrain.num_rows, splits.train.num_rows, splits.test.num_rows) == (n_train, n_train, n_test)
    assert splits.labelled and len(splits.label_names) == classes
    mean, std = splits.info.pop("channel_mean"), splits.info.pop("channel_std")  # data.normalize=dataset
    assert len(mean) == len(std) == channels and min(std) > 0
    assert splits.info == {
        "channels": channels,
        "max_length": max_len,
        "min_length": min_len,
        "num_classes": classes,
        "dataset": name,
    }
    row = splits.test[0]
    x = np.asarray(row["series"], dtype=np.float32)
    assert x.shape == (channels, row["length"]) and 0 <= row["label"] < classes
    assert splits.train.with_format("numpy")[0]["series"].shape[0] == channels
    assert set(splits.train["label"]) == set(range(classes))


def test_builtin_name_is_case_insensitive_and_unknown_lists_names():
    splits = load_timeseries(TimeSeriesDataConfig(name="basicmotions", limit=3))
    assert splits.info["dataset"] == "BasicMotions" and splits.label_names == sorted(splits.label_names)
    message = one_line_error(TimeSeriesDataConfig(name="NoSuchSet"), "NoSuchSet", "data.path")
    assert all(name in message for name in BUILTIN_DATASETS)


def test_finding_builtin_files_does_not_import_aeon_or_sktime():
    code = (
        "import importlib.util, sys\n"
        "spec = importlib.util.spec_from_file_location('tsdata', 'domains/timeseries/data.py')\n"
        "mod = sys.modules['tsdata'] = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)\n"
        "mod._builtin_files('PLAID'); mod._builtin_files('GunPoint')\n"
        "assert not {'aeon', 'sktime', 'numba', 'datasets'} & set(sys.modules), sys.modules.keys()\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[1])


def test_builtin_missing_package_names_the_pip_install(monkeypatch):
    monkeypatch.setattr(tsdata.packaged, "package_dir", lambda package: None)
    one_line_error(TimeSeriesDataConfig(name="PLAID"), "pip install sktime==1.2.0")
    one_line_error(TimeSeriesDataConfig(name="GunPoint"), "pip install aeon==1.6.0")


def test_limit_and_pretrain_split():
    splits = load_timeseries(
        TimeSeriesDataConfig(name="GunPoint", limit=7, pretrain_split="train+test", normalize="series")
    )
    assert (splits.train.num_rows, splits.test.num_rows, splits.pretrain.num_rows) == (7, 7, 14)
    full = load_timeseries(TimeSeriesDataConfig(name="GunPoint", normalize="none"))
    np.testing.assert_allclose(rows(splits.train)[0], tsdata._normalize(rows(full.train)[0]))  # the first N
    one_line_error(TimeSeriesDataConfig(name="GunPoint", limit=0), "data.limit")


def test_series_normalisation():
    splits = load_timeseries(TimeSeriesDataConfig(name="BasicMotions", limit=5, normalize="series"))
    for x in rows(splits.train):
        np.testing.assert_allclose(x.mean(axis=1), 0, atol=1e-5)
        np.testing.assert_allclose(x.std(axis=1), 1, atol=1e-4)
    raw = load_timeseries(TimeSeriesDataConfig(name="BasicMotions", limit=5, normalize="none"))
    assert abs(rows(raw.train)[0].std(axis=1) - 1).max() > 0.1


def test_dataset_normalisation_is_the_default_and_keeps_levels():
    """Per-channel statistics of the train split, applied to both splits: levels and scales survive."""
    assert TimeSeriesDataConfig().normalize == "dataset"
    norm = load_timeseries(TimeSeriesDataConfig(name="JapaneseVowels"))
    raw = load_timeseries(TimeSeriesDataConfig(name="JapaneseVowels", normalize="none"))
    train = np.concatenate(rows(norm.train), axis=1)
    np.testing.assert_allclose(train.mean(axis=1), 0, atol=1e-4)
    np.testing.assert_allclose(train.std(axis=1), 1, atol=1e-4)
    raw_train = np.concatenate(rows(raw.train), axis=1).astype(np.float64)
    mean, std = raw_train.mean(axis=1, keepdims=True), raw_train.std(axis=1, keepdims=True)
    for a, b in zip(rows(norm.test)[:20], rows(raw.test)[:20], strict=True):  # test uses the train statistics
        np.testing.assert_allclose(a, (b - mean) / std, atol=1e-4)
    assert np.abs(np.stack([x.mean(axis=1) for x in rows(norm.train)])).max() > 0.5  # per-series levels kept
    # The statistics travel in info (checkpoints, exports: what embedding raw series applies), rounded so
    # that the same data gives the same info anywhere; the rounded values are the ones applied.
    np.testing.assert_allclose(norm.info["channel_mean"], mean[:, 0], rtol=1e-7)
    np.testing.assert_allclose(norm.info["channel_std"], std[:, 0], rtol=1e-7)
    assert all(float(f"{v:.8g}") == v for v in norm.info["channel_mean"] + norm.info["channel_std"])
    assert "channel_mean" not in raw.info


# ---------------------------------------------------------------- the user's own files


def test_npy_unlabelled_constant_series_and_channels(tmp_path):
    x = np.random.default_rng(0).normal(3, 5, size=(6, 2, 50)).astype(np.float32)
    x[1] = 0.7  # constant -> zeros, not NaN
    x[2, :, 40:] = np.nan  # trailing all-NaN steps are padding
    np.save(tmp_path / "x.npy", x)
    splits = load_timeseries(user(tmp_path / "x.npy", normalize="series"))
    assert splits.train is None and splits.test is None and splits.label_names is None
    assert splits.info == {
        "channels": 2,
        "max_length": 50,
        "min_length": 40,
        "num_classes": 0,
        "dataset": str(tmp_path / "x.npy"),
    }
    series = rows(splits.pretrain)
    assert np.array_equal(series[1], np.zeros((2, 50))) and series[2].shape == (2, 40)
    np.testing.assert_allclose(series[0].std(axis=1), 1, atol=1e-5)

    np.save(tmp_path / "uni.npy", x[:, 0])
    assert load_timeseries(user(tmp_path / "uni.npy")).info["channels"] == 1


def test_npz_labels_and_test_path(tmp_path):
    rng = np.random.default_rng(1)
    np.savez(tmp_path / "train.npz", x=rng.normal(size=(6, 30)), y=np.array([10, 9, 2, 2, 9, 10]))
    np.savez(tmp_path / "test.npz", x=rng.normal(size=(4, 30)), y=np.array([2, 9, 10, 10]))
    splits = load_timeseries(user(tmp_path / "train.npz", test_path=str(tmp_path / "test.npz")))
    assert splits.labelled and splits.label_names == ["2", "9", "10"]  # numeric order, not "10" < "2"
    assert splits.train["label"] == [2, 1, 0, 0, 1, 2] and splits.test["label"] == [0, 1, 2, 2]
    assert splits.pretrain.num_rows == 6

    alone = load_timeseries(user(tmp_path / "train.npz"))  # labelled, no test file: pretraining still works
    assert alone.train.num_rows == 6 and alone.test is None and not alone.labelled

    np.savez(tmp_path / "nolabels.npz", x=rng.normal(size=(3, 30)))
    one_line_error(user(tmp_path / "train.npz", test_path=str(tmp_path / "nolabels.npz")), "data.test_path")
    np.savez(tmp_path / "wrongkey.npz", data=rng.normal(size=(3, 30)))
    one_line_error(user(tmp_path / "wrongkey.npz"), "'x'")


def test_wide_csv(tmp_path):
    csv = tmp_path / "wide.csv"
    csv.write_text("label,t0,t1,t2,t3\ncat,1,2,3,4\ndog,4,3,2,1\ncat,5,6,,\n")
    splits = load_timeseries(user(csv, normalize="none"))
    assert splits.label_names == ["cat", "dog"] and splits.train["label"] == [0, 1, 0]
    series = rows(splits.train)
    assert series[0].tolist() == [[1, 2, 3, 4]] and series[2].tolist() == [[5, 6]]  # trailing blanks = shorter
    assert splits.info["min_length"] == 2 and splits.info["max_length"] == 4

    (tmp_path / "plain.txt").write_text("t0,t1,t2\n1,2,3\n3,2,1\n")  # no label column: unlabelled
    unlabelled = load_timeseries(user(tmp_path / "plain.txt", format="csv"))
    assert unlabelled.train is None and unlabelled.pretrain.num_rows == 2
    one_line_error(user(csv, label_column=None), "not numeric", "data.label_column")


def test_parquet_list_column_multichannel_variable_length(tmp_path):
    rng = np.random.default_rng(2)
    series = [rng.normal(size=(3, n)).round(3) for n in (5, 9, 7, 12)]
    table = pa.table({"values": [s.tolist() for s in series], "kind": ["b", "a", "b", "c"]})
    pq.write_table(table, tmp_path / "data.parquet")
    splits = load_timeseries(
        user(tmp_path / "data.parquet", series_column="values", label_column="kind", normalize="none")
    )
    assert splits.label_names == ["a", "b", "c"] and splits.train["label"] == [1, 0, 1, 2]
    assert splits.info == {
        "channels": 3,
        "max_length": 12,
        "min_length": 5,
        "num_classes": 3,
        "dataset": str(tmp_path / "data.parquet"),
    }
    for got, want in zip(rows(splits.train), series, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-6)
    assert splits.train.with_format("numpy")[1]["series"].shape == (3, 9)
    assert splits.train["length"] == [5, 9, 7, 12]

    one_line_error(user(tmp_path / "data.parquet", series_column="missing"), "data.series_column")
    pq.write_table(pa.table({"values": [[1.0, 2.0], []]}), tmp_path / "empty_row.parquet")
    one_line_error(user(tmp_path / "empty_row.parquet", series_column="values"), "series 1", "length zero")
    pq.write_table(pa.table({"values": [[[1.0, 2.0]], [[1.0, 2.0], [3.0, 4.0]]]}), tmp_path / "chan.parquet")
    one_line_error(user(tmp_path / "chan.parquet", series_column="values"), "series 1", "channels")


def test_csv_list_column_as_json_text(tmp_path):
    csv = tmp_path / "lists.csv"
    csv.write_text('series,label\n"[1, 2, 3]",0\n"[4, 5]",1\n')
    splits = load_timeseries(user(csv, series_column="series", normalize="none"))
    assert [s.tolist() for s in rows(splits.train)] == [[[1, 2, 3]], [[4, 5]]]


def test_missing_empty_and_unknown_files(tmp_path):
    one_line_error(user(tmp_path / "nope.csv"), "data.path", "does not exist")
    one_line_error(user(tmp_path / "x.npy", test_path=str(tmp_path / "t.npy")), "does not exist")
    (tmp_path / "empty.csv").write_text("")
    one_line_error(user(tmp_path / "empty.csv"), "empty.csv", "at least one row")
    (tmp_path / "header.csv").write_text("label,t0,t1\n")
    one_line_error(user(tmp_path / "header.csv"), "at least one row")
    np.save(tmp_path / "none.npy", np.zeros((0, 10)))
    one_line_error(user(tmp_path / "none.npy"), "no series")
    (tmp_path / "data.xyz").write_text("1,2\n")
    one_line_error(user(tmp_path / "data.xyz"), "data.format")
    (tmp_path / "broken.npy").write_bytes(b"not numpy")
    one_line_error(user(tmp_path / "broken.npy"), "broken.npy")


def test_nan_policies(tmp_path):
    x = np.array([[1.0, np.nan, 3.0, 4.0, np.inf], [np.nan, 2.0, 2.0, 2.0, 2.0]], dtype=np.float32)
    np.save(tmp_path / "nan.npy", np.stack([np.ones_like(x), x]))
    message = one_line_error(user(tmp_path / "nan.npy"), "series 1", "train", "nan.npy", "data.nan_policy=interpolate")
    assert "series 0" not in message

    filled = rows(load_timeseries(user(tmp_path / "nan.npy", nan_policy="interpolate", normalize="none")).pretrain)[1]
    np.testing.assert_allclose(filled, [[1, 2, 3, 4, 4], [2, 2, 2, 2, 2]])  # linear inside, nearest at the edges
    zeroed = rows(load_timeseries(user(tmp_path / "nan.npy", nan_policy="zero", normalize="none")).pretrain)[1]
    np.testing.assert_allclose(zeroed, [[1, 0, 3, 4, 0], [0, 2, 2, 2, 2]])
    normalised = rows(load_timeseries(user(tmp_path / "nan.npy", nan_policy="interpolate")).pretrain)
    assert all(np.isfinite(s).all() for s in normalised)


def test_building_a_thousand_series_is_fast():
    import time

    rng = np.random.default_rng(3)
    series = [rng.normal(size=(2, int(n))).astype(np.float32) for n in rng.integers(100, 1500, size=1000)]
    start = time.perf_counter()
    ds = tsdata._to_dataset(series, list(range(1000)))
    assert time.perf_counter() - start < 2.0 and ds.num_rows == 1000
