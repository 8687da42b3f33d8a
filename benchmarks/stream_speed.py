"""Time the streaming reader: the statistics pass, windows per second, a resume, and memory.

    python benchmarks/stream_speed.py                          # writes a synthetic 566 MB archive first
    python benchmarks/stream_speed.py --shards 8               # a 118 MB one
    python benchmarks/stream_speed.py --archive data/sensors   # an existing archive (docs/timeseries.md schema)

The synthetic archive (random float32 values: only sizes matter for speed) has ``--shards`` Parquet files of
25 recordings x 6 channels x 20,000 steps, in row groups of 8 recordings; it is written to a temporary folder
and deleted afterwards (by a child process, so its memory is not counted here). Prints one line per
measurement; memory is the process's high-water mark (``VmHWM``) and ``RssAnon`` (its own memory, without
file pages).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from gsg_domains.timeseries.augment import collate_series
from gsg_domains.timeseries.data import TimeSeriesDataConfig
from gsg_domains.timeseries.stream import load_stream
from gsg_multimodal.streaming import StreamLoader


def write_synthetic(folder: Path, shards: int, recordings: int = 25, channels: int = 6, steps: int = 20_000) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for k in range(shards):
        total = recordings * channels * steps
        values = pa.array(rng.standard_normal(total).astype(np.float32))
        per_channel = pa.ListArray.from_arrays(pa.array(np.arange(0, total + 1, steps, dtype=np.int32)), values)
        row_starts = np.arange(0, recordings * channels + 1, channels, dtype=np.int32)
        per_row = pa.ListArray.from_arrays(pa.array(row_starts), per_channel)
        pq.write_table(pa.table({"series": per_row}), folder / f"part-{k:05d}.parquet", row_group_size=8)


def memory() -> str:
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    return ", ".join(f"{k} {int(fields[k].split()[0]) / 1e6:.2f} GB" for k in ("VmHWM", "RssAnon") if k in fields)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archive", help="an existing archive (folder, glob or file); default: a synthetic one")
    parser.add_argument("--shards", type=int, default=40, help="shards of the synthetic archive (14.8 MB each)")
    parser.add_argument("--window", type=int, default=512)
    parser.add_argument("--stride", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--batches", type=int, default=60)
    parser.add_argument("--workers", type=int, default=0, help="0: read in this process; 1: a background reader")
    parser.add_argument("--write-only", help=argparse.SUPPRESS)  # the child that writes the synthetic archive
    args = parser.parse_args()
    if args.write_only:
        write_synthetic(Path(args.write_only), args.shards)
        return
    torch.set_num_threads(1)
    scratch = Path(tempfile.mkdtemp(prefix="stream_speed_"))
    try:
        archive = args.archive
        if archive is None:
            archive = str(scratch / "archive")  # written by a child process, so its memory is not counted here
            cmd = [sys.executable, __file__, "--write-only", archive, "--shards", str(args.shards)]
            subprocess.run(cmd, check=True)
        size = sum(p.stat().st_size for p in Path(archive).rglob("*") if p.is_file()) if Path(archive).is_dir() else 0
        print(f"archive {archive}: {size / 1e6:.0f} MB; after imports: {memory()}")
        cfg = TimeSeriesDataConfig(path=archive, streaming=True, window=args.window, stride=args.stride)
        started = time.perf_counter()
        splits = load_stream(cfg, cache_dir=scratch / "cache")
        took = time.perf_counter() - started
        print(f"load + statistics pass: {took:.2f} s ({size / 1e6 / took:.0f} MB/s); {memory()}")
        started = time.perf_counter()
        load_stream(cfg, cache_dir=scratch / "cache")
        print(f"load with cached statistics: {time.perf_counter() - started:.2f} s")
        loader = StreamLoader(splits.pretrain, args.batch_size, collate_series, seed=0, num_batches=args.batches,
                              workers=args.workers)  # fmt: skip
        started, windows = time.perf_counter(), 0
        for batch in loader:
            windows += batch["x"].shape[0]
        took = time.perf_counter() - started
        print(f"loader: {windows} windows in {took:.2f} s = {windows / took:.0f} windows/s; {memory()}")
        state = scratch / "state.pt"
        torch.save(loader.state_dict(), state)
        print(f"stream state in a checkpoint: {state.stat().st_size / 1e3:.1f} kB")
        started = time.perf_counter()
        resumed = StreamLoader(splits.pretrain, args.batch_size, collate_series, seed=0, num_batches=args.batches + 1)
        resumed.load_state_dict(torch.load(state, weights_only=True))
        next(iter(resumed))
        print(f"resume: first batch after {time.perf_counter() - started:.2f} s")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
