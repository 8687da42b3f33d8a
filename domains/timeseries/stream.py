"""Streaming archives of recordings: the time-series half of ``gsg_multimodal.streaming``.

The archive (``data.path`` with ``data.streaming=true``) is a folder, glob or file of Parquet / Arrow
shards with **one row per recording** and a column ``data.series_column`` (default ``series``) holding
its values: ``list<number>`` for one channel, or ``list<list<number>>`` as ``[channels][time]`` with
every channel of a row equally long. Any integer or floating type is read as float32; a null value is
NaN (``data.nan_policy`` applies); other columns (labels, ids, metadata) are ignored. Every recording has
the archive's channel count. Recordings may differ in length.

Windows are cut on the fly (``data.window`` / ``data.stride``, as in memory: a tail shorter than the
window is dropped, and so is a recording shorter than the window); without ``data.window`` each
recording is one example, so a whole recording must fit in memory. ``data.normalize``: ``series``
z-normalises each window, ``dataset`` standardises each channel with the archive's mean and std computed
in one streaming pass (Chan et al.'s pairwise merge of per-recording sums, float64, every window's steps
counted as often as windows cover them: the statistics the in-memory path computes over its windows),
cached in the run folder (``cache/stream_stats.json``) so a resume or an evaluation does not read the
archive again.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from gsg_multimodal.domain import DataSplits
from gsg_multimodal.errors import UserError
from gsg_multimodal.streaming import StreamReader, StreamSource, find_shards

from . import windows
from .data import (
    TimeSeriesDataConfig,
    _fix_missing,
    _normalize,
    apply_channel_stats,
    load_timeseries,
    rounded_stats,
)

if TYPE_CHECKING:
    import pyarrow as pa

DEFAULT_COLUMN = "series"
STATS_FILE = "stream_stats.json"


def schema_text(column: str) -> str:
    return (
        f"one row per recording, column '{column}' (data.series_column) of type list<number> (one channel) "
        "or list<list<number>> ([channels][time])"
    )


def _list_depth(tp: Any) -> tuple[int, Any]:
    import pyarrow as pa

    depth = 0
    while pa.types.is_list(tp) or pa.types.is_large_list(tp) or pa.types.is_fixed_size_list(tp):
        tp, depth = tp.value_type, depth + 1
    return depth, tp


class RecordingRows(StreamReader):
    """Rows of recordings -> float32 ``[channels, length]`` records -> windows (examples for ``collate_series``)."""

    def __init__(self, cfg: TimeSeriesDataConfig) -> None:
        self.column = cfg.series_column or DEFAULT_COLUMN
        self.columns = [self.column]
        self.schema_text = schema_text(self.column)
        self.window, self.stride = cfg.window, cfg.stride or cfg.window
        self.nan_policy, self.normalize = cfg.nan_policy, cfg.normalize
        self.channels: int | None = None  # the archive's, set from its first recording
        self.stats: tuple[list[float], list[float]] | None = None  # (mean, std) per channel, normalize=dataset

    def check_schema(self, schema: pa.Schema) -> str | None:
        import pyarrow as pa

        if self.column not in schema.names:
            return f"it has no column '{self.column}' (its columns: {', '.join(schema.names) or 'none'})"
        tp = schema.field(self.column).type
        depth, leaf = _list_depth(tp)
        if depth not in (1, 2) or not (pa.types.is_integer(leaf) or pa.types.is_floating(leaf)):
            return f"its column '{self.column}' is {tp}"
        return None

    def decode(self, batch: pa.RecordBatch, first_row: int, shard: Path) -> list[np.ndarray]:
        import pyarrow.compute as pc

        col = batch.column(self.column)
        where = lambda i: f"row {first_row + i} of shard '{shard}'"  # noqa: E731
        if col.null_count:
            bad = int(np.flatnonzero(col.is_null().to_numpy(zero_copy_only=False))[0])
            raise UserError(f"{where(bad)} has no series (null); fill it in or drop that row")
        depth, _ = _list_depth(col.type)
        if depth == 1:
            channels = np.ones(len(col), dtype=np.int64)
            steps = col
        else:
            channels = pc.list_value_length(col).to_numpy(zero_copy_only=False).astype(np.int64)
            steps = col.flatten()  # one list per channel
            if steps.null_count:
                null_channel = np.flatnonzero(steps.is_null().to_numpy(zero_copy_only=False))[0]
                bad = int(np.searchsorted(np.cumsum(channels), null_channel, side="right"))
                raise UserError(f"{where(bad)} has a channel without values (null); fill it in or drop that row")
        lengths = pc.list_value_length(steps).to_numpy(zero_copy_only=False).astype(np.int64)
        values = steps.flatten().to_numpy(zero_copy_only=False).astype(np.float32, copy=False)  # nulls -> NaN
        records: list[np.ndarray] = []
        channel_at = 0
        value_at = 0
        for i, c in enumerate(channels):
            own = lengths[channel_at : channel_at + c]
            channel_at += c
            if c == 0 or own[0] == 0:
                raise UserError(f"{where(i)} has length zero; remove that row or fill in its values")
            if (own != own[0]).any():
                raise UserError(
                    f"{where(i)} has channels of different lengths {sorted(set(own.tolist()))}; "
                    "give every channel of a recording the same number of steps"
                )
            if self.channels is not None and c != self.channels:
                raise UserError(
                    f"{where(i)} has {c} channel(s), the archive {self.channels}; give every recording the same"
                )
            n = int(own[0])
            x = values[value_at : value_at + c * n].reshape(c, n)
            value_at += c * n
            records.append(_fix_missing(x, self.nan_policy, where(i)))
        return records

    def keys(self, record: np.ndarray) -> Sequence[int]:
        if self.window is None:
            return (0,)
        return windows.window_starts(record.shape[1], self.window, self.stride)

    def example(self, record: np.ndarray, key: int) -> dict[str, Any]:
        x = record if self.window is None else record[:, key : key + self.window]
        if self.normalize == "series":
            x = _normalize(x)
        elif self.normalize == "dataset":
            x = apply_channel_stats(x, *self.stats)  # the in-memory path's own step
        else:
            x = np.array(x, dtype=np.float32)  # a copy: the example must not keep the whole record alive
        return {"series": x, "length": x.shape[1]}

    def coverage(self, length: int) -> np.ndarray:
        """How many examples cover each step of a recording of ``length`` steps (1s without windows)."""
        if self.window is None:
            return np.ones(length)
        starts = windows.window_starts(length, self.window, self.stride)
        edges = np.zeros(length + 1)
        np.add.at(edges, starts, 1.0)
        np.add.at(edges, starts + self.window, -1.0)
        return np.cumsum(edges[:-1])


def stream_stats(source: StreamSource, reader: RecordingRows) -> dict[str, Any]:
    """Per-channel mean and std over every example's steps, in one pass (float64, Chan's merge per recording)."""
    total = 0.0
    mean = m2 = None
    recordings = examples = 0
    for _, _, x in source.records():
        recordings += 1
        weight = reader.coverage(x.shape[1])
        n = float(weight.sum())
        examples += len(reader.keys(x))
        if n == 0:
            continue  # shorter than the window: no example, as in memory
        x64 = x.astype(np.float64)
        m = (x64 * weight).sum(axis=1) / n
        d = x64 - m[:, None]
        s = (d * d * weight).sum(axis=1)
        if mean is None:
            total, mean, m2 = n, m, s
            continue
        delta = m - mean
        both = total + n
        mean = mean + delta * (n / both)
        m2 = m2 + s + delta * delta * (total * n / both)
        total = both
    if mean is None:
        raise UserError(
            f"{source.name} holds no recording of at least data.window={reader.window} steps; choose a shorter window"
        )
    std = np.maximum(np.sqrt(m2 / total), 1e-8)
    import pyarrow as pa

    pa.default_memory_pool().release_unused()  # the pass's read buffers, kept cached by the allocator otherwise
    return {"mean": mean.tolist(), "std": std.tolist(), "recordings": recordings, "examples": examples, "steps": total}


def cached_stats(source: StreamSource, reader: RecordingRows, cfg: TimeSeriesDataConfig,
                 cache_dir: Path | None) -> dict[str, Any]:  # fmt: skip
    """``stream_stats``, read from ``cache_dir`` when it was computed there for the same archive and settings."""
    key = {
        "archive": source.fingerprint(with_times=True),
        "column": reader.column,
        "window": reader.window,
        "stride": reader.stride,
        "nan_policy": cfg.nan_policy,
    }
    file = cache_dir / STATS_FILE if cache_dir is not None else None
    if file is not None and file.is_file():
        try:
            saved = json.loads(file.read_text())
            if saved.get("key") == key:
                return saved["stats"]
        except (OSError, ValueError, KeyError, TypeError):
            pass  # unreadable: computed again and rewritten
    stats = stream_stats(source, reader)
    if file is not None:
        file.parent.mkdir(parents=True, exist_ok=True)
        tmp = file.with_name(f"{file.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"key": key, "stats": stats}, indent=1))
        os.replace(tmp, file)
    return stats


def load_stream(cfg: TimeSeriesDataConfig, cache_dir: Path | None = None) -> DataSplits:
    """The streamed pretraining split, plus the probes' labelled splits from ``eval_path`` (in memory) if set."""
    shards = find_shards(cfg.path, "data.path", ("parquet",) if cfg.format == "parquet" else ("parquet", "arrow"))
    reader = RecordingRows(cfg)
    source = StreamSource(
        shards, reader, cfg.shuffle_buffer, cfg.shuffle_shards, cfg.shard_split, name=f"data.path '{cfg.path}'"
    )
    source.check()  # every shard's schema, before any work
    first = next(source.records(), None)
    if first is None:
        raise UserError(f"data.path '{cfg.path}' holds no recording (its shards have no rows); add data")
    reader.channels = int(first[2].shape[0])
    stats = None
    if cfg.normalize == "dataset":
        found = cached_stats(source, reader, cfg, cache_dir)
        stats = rounded_stats(found["mean"], found["std"])  # as the in-memory path stores and applies them
        reader.stats = stats
    info: dict[str, Any] = {"channels": reader.channels, "dataset": cfg.path, "streaming": True, "num_classes": 0}
    if stats is not None:  # in info: an export applies them to raw input (gsg embed)
        info.update(channel_mean=stats[0], channel_std=stats[1])
    if not cfg.eval_path:
        return DataSplits(pretrain=source, info=info)
    probes = load_timeseries(replace(cfg, streaming=False, path=cfg.eval_path, eval_path=None), stats=stats)
    if probes.info["channels"] != reader.channels:
        raise UserError(
            f"data.eval_path '{cfg.eval_path}' has {probes.info['channels']} channel(s) but the streamed archive "
            f"(data.path) has {reader.channels}; the probes' files must hold the same channels as the archive"
        )
    info["num_classes"] = probes.info["num_classes"]
    return DataSplits(source, probes.train, probes.test, probes.label_names, info)
