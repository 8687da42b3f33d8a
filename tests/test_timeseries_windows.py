"""Sliding windows over long recordings, per-window labels, the recording-level split, and label checks."""

from __future__ import annotations

import numpy as np
import pytest

from gsg_domains.timeseries import windows
from gsg_domains.timeseries.data import TimeSeriesDataConfig, load_timeseries
from gsg_multimodal.errors import UserError


def rows(ds) -> list[np.ndarray]:
    return [np.asarray(r["series"], dtype=np.float32) for r in ds]


def user(path, **kw) -> TimeSeriesDataConfig:
    return TimeSeriesDataConfig(path=str(path), normalize="none", **kw)


def one_line_error(make, *fragments: str) -> str:
    with pytest.raises(UserError) as info:
        make()
    message = str(info.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message
    return message


def recordings(n: int, length: int, channels: int = 1) -> np.ndarray:
    """Recording i holds i * 1000 + step (+ 100 000 per channel): every window tells where it came from."""
    step = np.arange(length, dtype=np.float32)
    rec = np.arange(n, dtype=np.float32)[:, None, None] * 1000
    return rec + step + 100_000 * np.arange(channels, dtype=np.float32)[None, :, None]


# ---------------------------------------------------------------- labels of the train and test files


def test_text_train_labels_and_numeric_test_labels_are_refused_naming_both_files(tmp_path):
    train, test = tmp_path / "train.csv", tmp_path / "test.npz"
    train.write_text("label,t0,t1,t2\nnormal,1,2,3\nbearing,3,2,1\nimbalance,1,1,1\n")
    np.savez(test, x=np.ones((3, 3)), y=np.array([0, 1, 2]))
    message = one_line_error(
        lambda: load_timeseries(user(train, test_path=str(test))),
        f"data.path '{train}'",
        f"data.test_path '{test}'",
        "'bearing', 'imbalance', 'normal'",
        "'0', '1', '2'",
        "6 unrelated classes",
        "same label names",
    )
    assert "text" in message and "numbers" in message


def test_numbers_spelled_differently_are_mapped_to_the_train_spelling(tmp_path):
    np.savez(tmp_path / "train.npz", x=np.ones((4, 5)), y=np.array(["01", "02", "02", "10"]))
    np.savez(tmp_path / "test.npz", x=np.ones((3, 5)), y=np.array([2, 10, 1]))
    splits = load_timeseries(user(tmp_path / "train.npz", test_path=str(tmp_path / "test.npz")))
    assert splits.label_names == ["01", "02", "10"]
    assert splits.train["label"] == [0, 1, 1, 2] and splits.test["label"] == [1, 2, 0]


def test_test_labels_unseen_in_train_are_refused_and_named(tmp_path):
    np.savez(tmp_path / "train.npz", x=np.ones((4, 5)), y=np.array([1, 2, 2, 1]))
    np.savez(tmp_path / "test.npz", x=np.ones((4, 5)), y=np.array([1, 3, 3, 7]))
    message = one_line_error(
        lambda: load_timeseries(user(tmp_path / "train.npz", test_path=str(tmp_path / "test.npz"))),
        "data.test_path",
        "test.npz",
        "train.npz",
        "'3' (2x)",
        "'7' (1x)",
        "predict",
    )
    assert "'1'" in message  # the train labels are shown as the ones the probes can predict
    np.savez(tmp_path / "fewer.npz", x=np.ones((2, 5)), y=np.array([2, 2]))  # a subset of train is fine
    splits = load_timeseries(user(tmp_path / "train.npz", test_path=str(tmp_path / "fewer.npz")))
    assert splits.label_names == ["1", "2"] and splits.test["label"] == [1, 1]


# ---------------------------------------------------------------- windows


def test_windows_and_stride_count_and_content(tmp_path):
    x = recordings(2, 10)
    np.savez(tmp_path / "rec.npz", x=x, y=np.array(["a", "b"]))
    splits = load_timeseries(user(tmp_path / "rec.npz", window=4, stride=3))
    got = rows(splits.train)  # starts 0, 3, 6 per recording; the tail step 9 is dropped
    assert len(got) == 6 and all(w.shape == (1, 4) for w in got)
    for k, (rec, start) in enumerate([(0, 0), (0, 3), (0, 6), (1, 0), (1, 3), (1, 6)]):
        np.testing.assert_array_equal(got[k], x[rec, :, start : start + 4])
    assert splits.train["label"] == [0, 0, 0, 1, 1, 1]  # window_label defaults to the recording's label
    assert splits.info["max_length"] == splits.info["min_length"] == 4

    default = rows(load_timeseries(user(tmp_path / "rec.npz", window=4)).pretrain)  # stride = window: 0, 4
    assert [float(w[0, 0]) for w in default] == [0, 4, 1000, 1004]

    multi = recordings(1, 7, channels=3)
    np.save(tmp_path / "multi.npy", multi)  # unlabelled recording: windows for pretraining
    splits = load_timeseries(user(tmp_path / "multi.npy", window=5, stride=1))
    assert splits.train is None and [w.shape for w in rows(splits.pretrain)] == [(3, 5)] * 3
    np.testing.assert_array_equal(rows(splits.pretrain)[2], multi[0, :, 2:7])


def test_windows_are_series_for_normalisation(tmp_path):
    np.save(tmp_path / "rec.npy", recordings(1, 40) * 0.01)
    for w in rows(
        load_timeseries(TimeSeriesDataConfig(path=str(tmp_path / "rec.npy"), window=8, normalize="series")).pretrain
    ):
        np.testing.assert_allclose(w.mean(), 0, atol=1e-5)
        np.testing.assert_allclose(w.std(), 1, atol=1e-4)


def test_majority_labels_match_a_direct_count():
    rng = np.random.default_rng(0)
    steps = rng.integers(0, 4, size=203)
    got = windows.majority_labels(steps, 16, 5)
    want = []
    for s in windows.window_starts(203, 16, 5):
        counts = np.bincount(steps[s : s + 16], minlength=4)
        want.append(int(np.flatnonzero(counts == counts.max())[0]))  # ties: the smallest label
    assert got.tolist() == want
    assert windows.majority_labels(np.array(["b", "a", "a", "b"]), 4, 4).tolist() == ["a"]  # tie -> sorts first
    assert windows.window_starts(3, 4, 1).size == 0 and windows.cut(np.zeros((1, 3)), 4, 1) == []


def test_majority_window_labels_from_npz_y_steps(tmp_path):
    x = recordings(2, 12)
    y_steps = np.array([[0] * 5 + [2] * 7, [1] * 12])
    np.savez(tmp_path / "steps.npz", x=x, y_steps=y_steps)
    splits = load_timeseries(user(tmp_path / "steps.npz", window=4, stride=2))
    # recording 0 windows start 0, 2, 4, 6, 8: [0000] [0002] [0222] [2222] [2222] -> 0 0 2 2 2
    assert splits.label_names == ["0", "1", "2"]
    assert splits.train["label"] == [0, 0, 2, 2, 2, 1, 1, 1, 1, 1]

    np.savez(tmp_path / "both.npz", x=x, y=np.array([5, 6]), y_steps=y_steps)
    by_recording = load_timeseries(user(tmp_path / "both.npz", window=4, stride=2, window_label="recording"))
    assert by_recording.label_names == ["5", "6"] and by_recording.train["label"] == [0] * 5 + [1] * 5

    one_line_error(lambda: load_timeseries(user(tmp_path / "steps.npz")), "y_steps", "data.window")
    one_line_error(
        lambda: load_timeseries(user(tmp_path / "steps.npz", window=4, window_label="recording")),
        "data.window_label=recording",
        "data.window_label=majority",
    )
    np.savez(tmp_path / "plain.npz", x=x, y=np.array([5, 6]))
    one_line_error(
        lambda: load_timeseries(user(tmp_path / "plain.npz", window=4, window_label="majority")),
        "per-step labels",
        "y_steps",
        "data.step_label_column",
    )
    np.savez(tmp_path / "badshape.npz", x=x, y_steps=y_steps[:, :5])
    one_line_error(lambda: load_timeseries(user(tmp_path / "badshape.npz", window=4)), "'y_steps'", "[2, 12]")
    one_line_error(lambda: load_timeseries(user(tmp_path / "steps.npz", window=50)), "data.window=50", "12 steps")


def test_long_csv_with_step_labels_and_recording_ids(tmp_path):
    lines = ["run,temp,vib,state"]
    for run, n in (("r1", 6), ("r2", 5)):
        lines += [f"{run},{t},{-t},{'ok' if t < 4 else 'fault'}" for t in range(n)]
    csv = tmp_path / "long.csv"
    csv.write_text("\n".join(lines) + "\n")
    cfg = user(csv, window=3, stride=1, step_label_column="state", recording_column="run", label_column=None)
    splits = load_timeseries(cfg)
    got = rows(splits.train)
    assert len(got) == 4 + 3 and splits.info["channels"] == 2  # 6 steps -> 4 windows, 5 -> 3; never across runs
    np.testing.assert_array_equal(got[4], [[0, 1, 2], [0, -1, -2]])  # first window of r2
    assert splits.label_names == ["fault", "ok"]
    assert splits.train["label"] == [1, 1, 1, 0, 1, 1, 1]  # r1: 4 steps ok then fault; r2: 4 ok then 1 fault

    single = tmp_path / "single.csv"
    single.write_text("\n".join(line.split(",", 1)[1] for line in lines) + "\n")  # without the run column
    one = load_timeseries(user(single, window=3, step_label_column="state", label_column=None))
    assert one.pretrain.num_rows == 3  # no recording column: all rows are one recording (11 steps), stride 3
    # without data.recording_column the text ids would be a channel
    one_line_error(
        lambda: load_timeseries(user(csv, window=3, step_label_column="state")), "['run']", "data.recording_column"
    )
    one_line_error(
        lambda: load_timeseries(user(csv, window=3, step_label_column="nope", label_column=None)),
        "data.step_label_column 'nope'",
    )
    np.save(tmp_path / "x.npy", np.ones((2, 9)))
    one_line_error(
        lambda: load_timeseries(user(tmp_path / "x.npy", window=3, step_label_column="state")), "y_steps", "x.npy"
    )


# ---------------------------------------------------------------- the automatic recording-level split


def test_test_fraction_splits_by_recording_stratified_and_reproducible(tmp_path):
    labels = np.array(["a"] * 12 + ["b"] * 8)
    np.savez(tmp_path / "rec.npz", x=recordings(20, 10), y=labels)
    cfg = user(tmp_path / "rec.npz", window=4, stride=2, test_fraction=0.25, split_seed=3)
    splits = load_timeseries(cfg)

    def origin(ds) -> list[int]:
        return [int(w[0, 0] // 1000) for w in rows(ds)]

    train, test = origin(splits.train), origin(splits.test)
    assert not set(train) & set(test) and set(train) | set(test) == set(range(20))
    for rec in range(20):  # every recording: all of its 4 windows on one side
        assert (train + test).count(rec) == 4 and (train.count(rec) in (0, 4))
    held_out = sorted(set(test))
    assert [labels[i] for i in held_out].count("a") == 3 and [labels[i] for i in held_out].count("b") == 2
    assert splits.label_names == ["a", "b"] and splits.pretrain.num_rows == len(train)

    again = load_timeseries(cfg)
    assert origin(again.test) == test and origin(again.train) == train
    other = load_timeseries(user(tmp_path / "rec.npz", window=4, stride=2, test_fraction=0.25, split_seed=4))
    assert sorted(set(origin(other.test))) != held_out

    plain = load_timeseries(user(tmp_path / "rec.npz", test_fraction=0.5))  # without windows: series are recordings
    assert plain.train.num_rows == plain.test.num_rows == 10


def test_test_fraction_stratifies_per_step_recordings_by_their_majority(tmp_path):
    y_steps = np.array([[0] * 8] * 6 + [[1] * 8] * 4)
    np.savez(tmp_path / "steps.npz", x=recordings(10, 8), y_steps=y_steps)
    splits = load_timeseries(user(tmp_path / "steps.npz", window=4, test_fraction=0.5))
    assert sorted(splits.test["label"]).count(0) == 3 * 2 and sorted(splits.test["label"]).count(1) == 2 * 2

    np.save(tmp_path / "unlabelled.npy", recordings(4, 8))
    one_line_error(lambda: load_timeseries(user(tmp_path / "unlabelled.npy", test_fraction=0.5)), "no labels")
    np.savez(tmp_path / "single.npz", x=recordings(2, 8), y=np.array([1, 2]))
    one_line_error(lambda: load_timeseries(user(tmp_path / "single.npz", test_fraction=0.3)), "no recording")
    one_line_error(lambda: load_timeseries(TimeSeriesDataConfig(test_fraction=0.3)), "built-in")


# ---------------------------------------------------------------- keys


@pytest.mark.parametrize(
    ("kw", "fragments"),
    [
        ({"window": 1}, ("data.window=1", "at least 2")),
        ({"window": 8, "stride": 0}, ("data.stride=0", "at least 1")),
        ({"stride": 4}, ("data.stride", "data.window")),
        ({"window_label": "majority"}, ("data.window_label", "data.window")),
        ({"test_fraction": 0.0}, ("data.test_fraction=0.0", "between 0 and 1")),
        ({"test_fraction": 1.0}, ("data.test_fraction=1.0", "between 0 and 1")),
        ({"test_fraction": 0.2, "test_path": "t.npz"}, ("data.test_path", "data.test_fraction")),
        ({"window": 8, "recording_column": "run"}, ("data.recording_column", "data.step_label_column")),
    ],
)
def test_keys_are_validated_with_one_line(kw, fragments):
    one_line_error(lambda: TimeSeriesDataConfig(path="x.npz", **kw), *fragments)
