"""Streaming archives (issue 20): shards read a few rows at a time, windows cut on the fly, exact resume.

The archives are tiny (``tests/stream_archive.py``: 12 recordings of 3 channels, 60-129 steps, windows of
32 every 16 steps = 52 windows) so every test runs on one core in seconds.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from gsg_domains.timeseries.augment import collate_series
from gsg_domains.timeseries.data import TimeSeriesDataConfig, _channel_stats, load_timeseries, rounded_stats
from gsg_domains.timeseries.stream import load_stream
from gsg_multimodal import checkpoints, streaming
from gsg_multimodal.cli import main
from gsg_multimodal.errors import UserError
from gsg_multimodal.streaming import ExampleStream, StreamLoader, find_shards, next_batch

from .conftest import ROOT
from .stream_archive import recordings, write_archive, write_single
from .test_reliability import assert_same_weights, fresh_process, full_history, killed_at, one_line_error_of

WINDOWS = {"window": 32, "stride": 16}
# A tiny encoder on the shipped recipe's config; the data section comes from each test.
SMALL = [
    str(ROOT / "configs" / "acsf1_gsg.yaml"),
    "views.max_train_length=32",
    "encoder.hidden=8",
    "encoder.depth=2",
    "encoder.out_dim=16",
    "model.projector_hidden=16",
    "model.projector_dim=16",
    "model.predictor_hidden=8",
    "train.log_every=1",
    "train.progress_bar=false",
    "train.trackers=[none]",
    "train.cpu=true",
    "train.deterministic=true",
    "monitor.knn_every=0",
    "eval.cv_folds=2",
    "data.window=32",
    "data.stride=16",
]


def stream_cfg(path: Path, **kw) -> TimeSeriesDataConfig:
    return TimeSeriesDataConfig(path=str(path), streaming=True, **{**WINDOWS, **kw})


def one_pass(source, seed: int = 0, rank: int = 0, world: int = 1) -> list[tuple[tuple, np.ndarray]]:
    stream = ExampleStream(source, seed, rank, world)
    out = []
    while (item := stream.next()) is not None:
        out.append((item[0], item[1]["series"]))
    return out


@pytest.fixture
def archive(tmp_path: Path) -> dict:
    recs = recordings()
    return {
        "recs": recs,
        "parquet": write_archive(tmp_path / "parquet", recs, shards=3),
        "arrow": write_archive(tmp_path / "arrow", recs, shards=3, kind="arrow"),
        "single": write_single(tmp_path / "one.parquet", recs),
        "root": tmp_path,
    }


# ---------------------------------------------------------------- finding shards


def test_shards_are_found_in_folders_globs_and_files_and_mixed_splits_are_refused(tmp_path: Path) -> None:
    recs = recordings(4)
    write_archive(tmp_path / "a" / "sub", recs, shards=2)
    write_archive(tmp_path / "a" / ".hidden", recs, shards=1)  # skipped, like datasets' cache-*.arrow files
    (tmp_path / "a" / "cache-123.arrow").write_bytes(b"not a shard")
    (tmp_path / "a" / "notes.txt").write_text("ignored")
    names = [p.name for p in find_shards(str(tmp_path / "a"))]
    assert names == ["part-00000.parquet", "part-00001.parquet"]
    assert [p.name for p in find_shards(str(tmp_path / "a" / "**" / "*-00001.parquet"))] == ["part-00001.parquet"]
    assert len(find_shards(str(tmp_path / "a" / "sub" / "part-00000.parquet"))) == 1
    hub = tmp_path / "hub" / "data"  # a hub data set's folder: train and test shards side by side
    for split in ("train", "test"):
        write_archive(hub, recs, shards=1).pop().rename(hub / f"{split}-00000-of-00001.parquet")
    with pytest.raises(UserError, match=r"several splits \(test, train\).*glob") as info:
        find_shards(str(tmp_path / "hub"))
    assert "\n" not in str(info.value)
    assert [p.name for p in find_shards(str(hub / "train-*"))] == ["train-00000-of-00001.parquet"]
    (tmp_path / "dd" / "train").mkdir(parents=True)
    (tmp_path / "dd" / "dataset_dict.json").write_text('{"splits": ["train"]}')
    with pytest.raises(UserError, match=r"DatasetDict folder of splits \(train\).*dd/train"):
        find_shards(str(tmp_path / "dd"))
    for spec, fragment in [
        (tmp_path / "missing", "does not exist"),
        (tmp_path / "dd" / "train", "holds no *.arrow / *.parquet / *.pq file"),
        (tmp_path / "a" / "*.csv", "matches no"),
        (tmp_path / "a" / "notes.txt", "is not a"),
    ]:
        with pytest.raises(UserError, match=fragment.replace("*", r"\*").replace(".", r"\.")):
            find_shards(str(spec))


# ---------------------------------------------------------------- streaming equals in memory


@pytest.mark.parametrize("normalize", ["dataset", "series", "none"])
def test_one_pass_gives_the_in_memory_windows(archive: dict, normalize: str) -> None:
    """Shuffled (buffer 8, shards in a seeded order): the same windows as the in-memory path, as a multiset.
    With shuffle_buffer=1 and sorted shards: the same windows in the same order, bit for bit."""
    memory = load_timeseries(
        TimeSeriesDataConfig(path=str(archive["single"]), series_column="series", normalize=normalize, **WINDOWS)
    )
    expected = [np.asarray(r["series"], dtype=np.float32) for r in memory.pretrain]
    assert len(expected) == 52
    for kind in ("parquet", "arrow"):
        ordered = load_stream(stream_cfg(archive[kind][0].parent, normalize=normalize, shuffle_buffer=1,
                                         shuffle_shards=False))  # fmt: skip
        got = [x for _, x in one_pass(ordered.pretrain)]
        assert len(got) == len(expected) and all(np.array_equal(a, b) for a, b in zip(got, expected, strict=True))
        shuffled = load_stream(stream_cfg(archive[kind][0].parent, normalize=normalize, shuffle_buffer=8))
        items = one_pass(shuffled.pretrain, seed=3)
        assert [x.tobytes() for _, x in items] != [x.tobytes() for x in got]  # really shuffled...
        assert Counter(x.tobytes() for _, x in items) == Counter(x.tobytes() for x in expected)  # ...same windows
        assert len({ref for ref, _ in items}) == 52
        again = one_pass(shuffled.pretrain, seed=3)
        assert [r for r, _ in again] == [r for r, _ in items]  # a seed gives one order


def test_a_datasets_save_to_disk_folder_streams_as_it_is(archive: dict, tmp_path: Path) -> None:
    """The folder `datasets.Dataset.save_to_disk(num_shards=2)` writes (Arrow stream shards data-0000k-of-00002
    beside its JSON files) is an archive as it is, memory-mapped."""
    import datasets

    features = datasets.Features({"series": datasets.List(datasets.List(datasets.Value("float32"))),
                                  "label": datasets.Value("int64")})  # fmt: skip
    rows = {"series": [r.tolist() for r in archive["recs"]], "label": list(range(12))}
    datasets.Dataset.from_dict(rows, features=features).save_to_disk(str(tmp_path / "saved"), num_shards=2)
    shards = find_shards(str(tmp_path / "saved"))
    assert [p.name for p in shards] == ["data-00000-of-00002.arrow", "data-00001-of-00002.arrow"]
    source = load_stream(stream_cfg(tmp_path / "saved", normalize="none", shuffle_buffer=1, shuffle_shards=False))
    reference = load_stream(stream_cfg(archive["parquet"][0].parent, normalize="none", shuffle_buffer=1,
                                       shuffle_shards=False))  # fmt: skip
    got, expected = one_pass(source.pretrain), one_pass(reference.pretrain)
    assert len(got) == 52 and all(np.array_equal(a, b) for (_, a), (_, b) in zip(got, expected, strict=True))


def test_streaming_statistics_are_the_in_memory_statistics(archive: dict) -> None:
    """One streaming pass (Chan's merge) gives the per-channel mean/std the in-memory path computes over its
    windows (overlapping windows count their shared steps twice), to float64 rounding; and without windows."""
    from gsg_domains.timeseries.stream import RecordingRows, stream_stats

    recs = archive["recs"]
    for window, stride in [(32, 16), (32, 32), (None, None)]:
        cfg = stream_cfg(archive["parquet"][0].parent, window=window, stride=stride, normalize="none")
        splits = load_stream(cfg)
        got = stream_stats(splits.pretrain, RecordingRows(cfg))
        pieces = recs
        if window:
            pieces = [r[:, s : s + window] for r in recs for s in range(0, r.shape[1] - window + 1, stride)]
        mean, std = _channel_stats(pieces)  # rounded to 8 significant digits, as stored in info
        assert rounded_stats(got["mean"], got["std"]) == (mean, std)
        assert got["examples"] == len(pieces) and got["recordings"] == len(recs)


@pytest.mark.slow
@pytest.mark.parametrize("normalize", ["series", "dataset"])
def test_a_streaming_run_equals_the_in_memory_run(
    archive: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, normalize: str
) -> None:
    """Same seed, same windows in the same order (shuffle_buffer=1, sorted shards; the in-memory loader made
    sequential): the same loss at every step and the same weights. 52 windows in batches of 5: 10 steps per
    pass with 2 windows dropped (drop_last) on both sides, 24 steps = 2.4 passes (epochs)."""
    common = [*SMALL, f"data.normalize={normalize}", "train.batch_size=5", "train.steps=24"]
    streamed, in_memory = tmp_path / "streamed", tmp_path / "in_memory"
    stream_args = ["data.streaming=true", f"data.path={archive['parquet'][0].parent}", "data.shuffle_buffer=1",
                   "data.shuffle_shards=false"]  # fmt: skip
    assert main(["pretrain", *common, *stream_args, f"output_dir={streamed}"]) == 0
    fresh_process()

    from torch.utils.data import DataLoader

    class InOrder(DataLoader):
        def __init__(self, *args, shuffle: bool = False, **kwargs) -> None:
            super().__init__(*args, shuffle=False, **kwargs)

    monkeypatch.setattr(torch.utils.data, "DataLoader", InOrder)
    memory_args = [f"data.path={archive['single']}", "data.series_column=series"]
    assert main(["pretrain", *common, *memory_args, f"output_dir={in_memory}"]) == 0
    losses = [[r["loss"] for r in full_history(run)] for run in (streamed, in_memory)]
    assert len(losses[0]) == 24
    if normalize == "series":  # the very same float32 values: bit-identical training
        assert losses[0] == losses[1]
        assert_same_weights(streamed, in_memory)
    else:  # archive statistics summed in another order than the in-memory ones: equal to rounding
        assert losses[0] == pytest.approx(losses[1], rel=1e-5, abs=1e-6)
    passes = [r["stream_pass"] for r in full_history(streamed)]
    assert passes[9] == 0 and passes[10] == 1 and passes[-1] == 2


# ---------------------------------------------------------------- exact resume


@pytest.mark.parametrize("kind", ["parquet", "arrow"])
def test_the_stream_resumes_exactly_from_any_state(archive: dict, kind: str) -> None:
    """A state taken between any two examples (mid-shard, mid-row, while the buffer drains, between passes)
    restores the same examples in the same order, for one and two processes, splitting by shards or examples."""
    folder = archive[kind][0].parent
    for world, split in [(1, "auto"), (2, "shards"), (2, "examples")]:
        source = load_stream(stream_cfg(folder, shuffle_buffer=6, shard_split=split)).pretrain
        for rank in range(world):
            stream = ExampleStream(source, 5, rank, world)
            states, items = [], []
            for _ in range(75):  # more than a pass
                states.append(stream.state_dict())
                items.append(stream.next())
            assert None in items
            for start in range(0, 75, 4):
                again = ExampleStream(source, 5, rank, world)
                again.load_state_dict(states[start])
                for expected in items[start:]:
                    got = again.next()
                    assert (got is None) == (expected is None)
                    if got is not None:
                        assert got[0] == expected[0] and np.array_equal(got[1]["series"], expected[1]["series"])


def test_the_loader_in_a_worker_gives_the_same_batches_and_its_state_resumes_anywhere(archive: dict) -> None:
    source = load_stream(stream_cfg(archive["parquet"][0].parent, shuffle_buffer=8)).pretrain
    inline = [b["x"] for b in StreamLoader(source, 4, collate_series, seed=1, num_batches=30)]
    assert len(inline) == 30
    worker = StreamLoader(source, 4, collate_series, seed=1, num_batches=30, workers=1)
    batches = iter(worker)
    first = [next(batches)["x"] for _ in range(17)]  # the worker has read ahead by now
    state = worker.state_dict()
    del batches
    assert all(torch.equal(a, b) for a, b in zip(first, inline, strict=False))
    saved = torch.load(_saved(state, archive["root"]), weights_only=True)  # as a checkpoint holds it
    resumed = StreamLoader(source, 4, collate_series, seed=1, num_batches=30)
    resumed.load_state_dict(saved)
    rest = [b["x"] for b in resumed]
    assert len(rest) == 13 and all(torch.equal(a, b) for a, b in zip(rest, inline[17:], strict=True))


def _saved(state: dict, folder: Path) -> Path:
    path = folder / "state.pt"
    torch.save(state, path)
    return path


STREAM_RUN = ["data.streaming=true", "data.shuffle_buffer=8", "train.batch_size=5", "train.steps=24",
              "train.checkpoint_every=1"]  # fmt: skip
# 10 steps per pass; the buffer (8 windows) drains during steps 9-10; passes 0, 1, 2.
STREAM_KILLS = ["saving:9", "sealed:10", "step:11", "published:17"]


@pytest.mark.slow
def test_a_killed_streaming_run_resumes_bit_exact(
    archive: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed inside the stream (a real SIGKILL with the loader in a worker process, then four injected
    kills: while the shuffle buffer drains, at a pass's end, early in the next pass, mid-pass) and resumed
    each time, alternating the loader worker on and off: the same weights and metrics as an uninterrupted run."""
    args = [*SMALL, *STREAM_RUN, f"data.path={archive['parquet'][0].parent}"]
    reference, run = tmp_path / "reference", tmp_path / "killed"
    assert main(["pretrain", *args, f"output_dir={reference}"]) == 0
    fresh_process()
    env = {**os.environ, checkpoints.KILL_ENV: "step:6", "OMP_NUM_THREADS": str(torch.get_num_threads())}
    cmd = [sys.executable, "-m", "gsg_multimodal", "pretrain", *args, f"output_dir={run}", "train.num_workers=1"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    for i, point in enumerate(STREAM_KILLS):
        killed_at(monkeypatch, point, [*args, f"output_dir={run}", "--resume", f"train.num_workers={i % 2}"])
    assert main(["pretrain", *args, f"output_dir={run}", "--resume", "train.num_workers=1"]) == 0
    assert_same_weights(reference, run)
    assert full_history(run) == full_history(reference)
    assert [r["stream_pass"] for r in full_history(run)][-1] == 2


@pytest.mark.slow
def test_resuming_over_a_changed_archive_is_refused(
    archive: dict, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    folder = tmp_path / "changing"
    write_archive(folder, archive["recs"], shards=3)
    args = [*SMALL, *STREAM_RUN, f"data.path={folder}", f"output_dir={tmp_path / 'run'}"]
    assert main(["pretrain", *args, "train.max_steps=3"]) == 0
    write_archive(folder / "more", archive["recs"][:2], shards=1)  # a shard added since the checkpoint
    assert main(["pretrain", *args, "--resume"]) == 2
    line = one_line_error_of(capsys)
    assert "cannot resume the stream of data.path" in line and "archive:" in line and "--overwrite" in line


# ---------------------------------------------------------------- processes share the archive


def test_processes_read_disjoint_parts_that_cover_each_pass(archive: dict, tmp_path: Path) -> None:
    """``shards`` (the shard count divides by the processes): each process reads only its own files;
    ``examples`` (it does not): every process reads every file and keeps one window in ``world``.
    Either way one pass of all processes together is every window once."""
    four = write_archive(tmp_path / "four", archive["recs"], shards=4)
    everything = {ref for ref, _ in one_pass(load_stream(stream_cfg(four[0].parent)).pretrain)}
    for folder, world, mode in [(four[0].parent, 2, "shards"), (four[0].parent, 3, "examples"),
                                (archive["parquet"][0].parent, 2, "examples")]:  # fmt: skip
        source = load_stream(stream_cfg(folder)).pretrain
        assert source.strategy(world) == mode
        if folder != four[0].parent:
            everything = {ref for ref, _ in one_pass(source)}
        parts = []
        for rank in range(world):
            stream = ExampleStream(source, 2, rank, world)
            own = stream.pass_shards()
            refs = [ref for ref, _ in one_pass(source, 2, rank, world)]
            if mode == "shards":
                assert {shard for shard, _, _ in refs} <= set(own) and len(own) == 4 // world
            parts.append(set(refs))
            assert len(refs) == len(parts[-1])
        assert set.union(*parts) == everything
        assert sum(len(p) for p in parts) == len(everything)  # disjoint
    one_shard = load_stream(stream_cfg(archive["parquet"][0])).pretrain
    with pytest.raises(UserError, match="1 shard.*for 2 processes"):
        StreamLoader(one_shard.__class__(one_shard.shards, one_shard.reader, split="shards"), 4, collate_series,
                     seed=0, world=2)  # fmt: skip


@pytest.mark.slow
def test_torchrun_two_processes_stream_their_own_shards(archive: dict, tmp_path: Path) -> None:
    """A real two-process CPU run (torchrun, gloo) over 4 shards: each rank opens only its own 2 shards of
    the first pass, the windows it trains on are its own, and the weights stay equal on both ranks."""
    four = write_archive(tmp_path / "four", archive["recs"], shards=4)
    out = tmp_path / "dist"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29547",
           str(ROOT / "tests" / "scripts" / "stream_check.py"), *SMALL, "data.streaming=true",
           f"data.path={four[0].parent}", "data.shuffle_buffer=4", "train.batch_size=4", "train.steps=3",
           f"output_dir={out}"]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = [json.loads((out / f"stream_check_{r}.json").read_text()) for r in range(2)]
    source = load_stream(stream_cfg(four[0].parent, shuffle_buffer=4)).pretrain
    for r, result in enumerate(ranks):
        own = ExampleStream(source, 0, r, 2).pass_shards()
        assert result["num_processes"] == 2 and result["steps"] == 3
        assert result["opened"] and set(result["opened"]) <= {four[i].name for i in own}
        assert len(result["refs"]) >= 3 * 4  # the windows of its 3 batches (and of none of the other rank's shards)
        assert {shard for shard, _, _ in result["refs"]} <= set(own)
        assert result["max_param_diff_per_step"] == [0.0, 0.0, 0.0]
    assert not set(ranks[0]["opened"]) & set(ranks[1]["opened"])
    assert not {tuple(x) for x in ranks[0]["refs"]} & {tuple(x) for x in ranks[1]["refs"]}


# ---------------------------------------------------------------- bad shards and bad configs


def _rewrite(path: Path, table: pa.Table) -> None:
    pq.write_table(table, path)


def test_a_corrupt_or_wrongly_shaped_shard_is_named(archive: dict, tmp_path: Path) -> None:
    recs = archive["recs"]

    def fails(make, *fragments: str, read: bool = False) -> None:
        folder = tmp_path / f"case{len(list(tmp_path.iterdir()))}"
        paths = write_archive(folder, recs, shards=3)
        make(paths[1])
        with pytest.raises(UserError) as info:
            splits = load_stream(stream_cfg(folder, normalize="none"))
            if read:
                one_pass(splits.pretrain)
        message = str(info.value)
        assert "\n" not in message and str(paths[1]) in message, message
        for fragment in fragments:
            assert fragment in message, message

    fails(lambda p: p.write_bytes(os.urandom(3000)), "cannot read shard", "damaged or not a Parquet file")
    fails(lambda p: p.write_bytes(p.read_bytes()[:-40]), "cannot read shard")  # footer cut off

    def damaged_page(p: Path) -> None:  # the footer is intact, a data page header of row group 1 is not
        offset = pq.ParquetFile(p).metadata.row_group(1).column(0).data_page_offset
        data = bytearray(p.read_bytes())
        data[offset : offset + 32] = b"\xff" * 32
        p.write_bytes(bytes(data))

    fails(damaged_page, "cannot read shard", read=True)
    expected = "Expected one row per recording, column 'series'"
    fails(lambda p: _rewrite(p, pa.table({"values": [[1.0, 2.0]]})), "has no column 'series'", "(its columns: values)",
          expected)  # fmt: skip
    fails(lambda p: _rewrite(p, pa.table({"series": ["1,2,3"]})), "column 'series' is string", expected)
    fails(lambda p: _rewrite(p, pa.table({"series": [[[[1.0]]]]})), "list<element: list<element: list", expected)
    fails(lambda p: _rewrite(p, pa.table({"series": pa.array([[1.0] * 40, None])})), "row 1 of shard", "null",
          read=True)  # fmt: skip
    fails(lambda p: _rewrite(p, pa.table({"series": [[[1.0] * 40, [2.0] * 39]]})), "row 0", "different lengths",
          read=True)  # fmt: skip
    fails(lambda p: _rewrite(p, pa.table({"series": [[[1.0] * 40]]})), "row 0", "1 channel(s), the archive 3",
          read=True)  # fmt: skip
    fails(lambda p: _rewrite(p, pa.table({"series": [[[1.0, float("nan")] * 20] * 3]})), "row 0", "NaN",
          "data.nan_policy", read=True)  # fmt: skip
    arrow = write_archive(tmp_path / "arrow_bad", recs, shards=2, kind="arrow")
    arrow[0].write_bytes(arrow[0].read_bytes()[:100])
    with pytest.raises(UserError, match=rf"cannot read shard '{arrow[0]}'.*Arrow \(IPC file or stream\)"):
        load_stream(stream_cfg(arrow[0].parent))


@pytest.mark.slow
def test_a_shard_error_met_by_the_loader_worker_is_one_line(archive: dict, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture) -> None:  # fmt: skip
    folder = tmp_path / "nan"
    paths = write_archive(folder, archive["recs"], shards=3)
    _rewrite(paths[2], pa.table({"series": [[[1.0, float("nan")] * 20] * 3]}))
    args = [*SMALL, *STREAM_RUN, "data.normalize=series", "data.shuffle_shards=false", f"data.path={folder}",
            "train.num_workers=1", f"output_dir={tmp_path / 'run'}"]  # fmt: skip
    assert main(["pretrain", *args]) == 2
    line = one_line_error_of(capsys)
    assert f"row 0 of shard '{paths[2]}' has NaN" in line


def test_streaming_config_mistakes_get_one_line(archive: dict, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    folder = archive["parquet"][0].parent
    cases = [
        (["data.streaming=true", f"data.path={folder}", "train.steps=null"], "set train.steps=N"),
        (["data.streaming=true", f"data.path={folder}", "train.checkpoint_every=0"], "set train.checkpoint_every=N"),
        (["data.streaming=true", "data.path=null"], "set data.path to its folder"),
        (["data.eval_path=x.parquet"], "unset data.eval_path"),
        (["data.streaming=true", f"data.path={folder}", "data.limit=5"], "data.limit does not apply"),
        (["data.streaming=true", f"data.path={folder}", "data.test_fraction=0.5"], "from data.eval_path"),
        (["data.streaming=true", f"data.path={folder}", "data.shuffle_buffer=0"], "data.shuffle_buffer=0"),
        (["data.streaming=true", f"data.path={folder}", "train.batch_size=60"], "only 52 example(s) in a pass"),
        (["data.streaming=true", f"data.path={folder}", "data.series_column=values"], "has no column 'values'"),
    ]
    for extra, fragment in cases:
        assert main(["pretrain", *SMALL, "train.steps=2", *extra, f"output_dir={tmp_path / 'r'}", "--overwrite"]) == 2
        assert fragment in one_line_error_of(capsys), extra
        fresh_process()


@pytest.mark.slow
def test_probes_read_their_labelled_file_normalised_with_the_archive_statistics(
    archive: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """data.eval_path gives the probes' splits (in memory); the archive's statistics, cached in the run folder,
    normalise them, and `gsg evaluate` reads the cache instead of the archive."""
    labels = [i % 2 for i in range(12)]
    eval_file = write_single(tmp_path / "eval.parquet", archive["recs"], labels)
    run = tmp_path / "run"
    args = [*SMALL, "data.streaming=true", f"data.path={archive['arrow'][0].parent}", f"data.eval_path={eval_file}",
            "data.series_column=series", "data.test_fraction=0.5", "train.batch_size=4", "train.steps=4",
            f"output_dir={run}"]  # fmt: skip
    assert main(["pretrain", *args]) == 0
    cached = json.loads((run / "cache" / "stream_stats.json").read_text())["stats"]
    memory = load_timeseries(TimeSeriesDataConfig(path=str(archive["single"]), series_column="series",
                                                  normalize="none", **WINDOWS))  # fmt: skip
    mean, std = _channel_stats([np.asarray(r["series"], dtype=np.float32) for r in memory.pretrain])
    assert rounded_stats(cached["mean"], cached["std"]) == (mean, std)  # both as stored in info
    calls = []
    real = streaming.StreamSource.records

    def counted(self: streaming.StreamSource):  # noqa: ANN202
        calls.append(1)
        yield from real(self)

    monkeypatch.setattr(streaming.StreamSource, "records", counted)
    assert main(["evaluate", str(run)]) == 0
    assert len(calls) == 1  # only the first recording (the channel count); the statistics came from the cache
    assert (run / "eval.json").is_file()


def test_next_batch_drops_the_incomplete_rest_of_each_pass(archive: dict) -> None:
    source = load_stream(stream_cfg(archive["parquet"][0].parent, shuffle_buffer=1, shuffle_shards=False)).pretrain
    stream = ExampleStream(source, 0)
    batches = [next_batch(stream, 5) for _ in range(12)]  # 52 windows: 10 batches, 2 dropped, then pass 1
    flat = [b["series"] for batch in batches for b in batch]
    memory = [x for _, x in one_pass(source)]
    assert all(np.array_equal(a, b) for a, b in zip(flat[:50], memory[:50], strict=True))
    assert all(np.array_equal(a, b) for a, b in zip(flat[50:], memory[:10], strict=True))


@pytest.mark.slow
def test_the_shipped_streaming_config_runs_from_the_config_alone(archive: dict, tmp_path: Path) -> None:
    """configs/sensors_stream_gsg.yaml with only the archive's path, a small model and budget overridden
    (its windows of 512 steps replaced by 32 for these short recordings): trains, checkpoints and exports."""
    run = tmp_path / "run"
    shards = f"data.path={archive['parquet'][0].parent}/*.parquet"
    args = [str(ROOT / "configs" / "sensors_stream_gsg.yaml"), shards, *SMALL[1:], "train.batch_size=4",
            "train.steps=6", "train.checkpoint_every=3", f"output_dir={run}"]  # fmt: skip
    assert main(["pretrain", *args]) == 0
    assert (run / "encoder" / "model.safetensors").is_file() and (run / "cache" / "stream_stats.json").is_file()
    assert [r["step"] for r in full_history(run)] == list(range(1, 7))
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step-000000003", "step-000000006"]
