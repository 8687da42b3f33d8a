"""Small streaming archives for the tests, in the schema of docs/timeseries.md ("Streaming archives").

One row per recording, column ``series`` = ``list<list<float32>>`` ([channels][time]), optional ``label``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

SERIES_TYPE = pa.list_(pa.list_(pa.float32()))


def recordings(n: int = 12, channels: int = 3, lengths: tuple[int, int] = (60, 130), seed: int = 0) -> list[np.ndarray]:
    """``n`` recordings ``[channels, L_i]`` of smooth signals plus noise, lengths in ``[lengths[0], lengths[1])``."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        steps = int(rng.integers(*lengths))
        t = np.arange(steps)[None, :] / 10.0
        phase = rng.uniform(0, 6, size=(channels, 1))
        level = np.arange(channels)[:, None] * 2.0 + i % 3  # channels differ in level, so statistics matter
        x = level + np.sin(t * (1 + i % 4) + phase) + 0.1 * rng.standard_normal((channels, steps))
        out.append(x.astype(np.float32))
    return out


def table(recs: list[np.ndarray], labels: list | None = None) -> pa.Table:
    columns = {"series": pa.array([r.tolist() for r in recs], type=SERIES_TYPE)}
    if labels is not None:
        columns["label"] = pa.array(labels)
    return pa.table(columns)


def write_archive(
    folder: Path,
    recs: list[np.ndarray],
    shards: int = 3,
    kind: str = "parquet",
    labels: list | None = None,
    row_group_size: int = 2,
) -> list[Path]:
    """Recordings split in order into ``shards`` files ``part-00000.<ext>`` ... (Parquet, or Arrow IPC stream)."""
    folder.mkdir(parents=True, exist_ok=True)
    bounds = np.linspace(0, len(recs), shards + 1).round().astype(int)
    paths = []
    for k in range(shards):
        lo, hi = bounds[k], bounds[k + 1]
        part = table(recs[lo:hi], labels[lo:hi] if labels is not None else None)
        if kind == "parquet":
            path = folder / f"part-{k:05d}.parquet"
            pq.write_table(part, path, row_group_size=row_group_size)
        else:
            path = folder / f"part-{k:05d}.arrow"
            with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_stream(sink, part.schema) as writer:
                writer.write_table(part, max_chunksize=row_group_size)
        paths.append(path)
    return paths


def write_single(path: Path, recs: list[np.ndarray], labels: list | None = None) -> Path:
    """All recordings in one Parquet file: what the in-memory path reads with data.series_column=series."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table(recs, labels), path)
    return path
