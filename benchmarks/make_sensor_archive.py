"""Write a synthetic sensor archive: Parquet shards of long multichannel recordings, a fraction of them labelled.

    python benchmarks/make_sensor_archive.py --out /data/sensors --gb 8            # about 8 GB on disk
    python benchmarks/make_sensor_archive.py --out /tmp/tiny --recordings 20 --steps 5000

What it imitates: a fleet of rotating machines (pumps, fans, motors), each recording ``--channels`` sensors at
``--rate-hz`` for ``--steps`` samples (default 16 channels x 100,000 steps at 1 kHz: 100 s, 6.4 MB of float32
per recording). Channels cycle through six vibration accelerometers (placement gains fixed per archive), one
motor current and one temperature. Each recording's machine is in one state:

| state | share | signature (on top of shaft harmonics at a speed that varies per recording and over time) |
| --- | --- | --- |
| ``normal`` | 60 % | weak harmonics, low noise |
| ``imbalance`` | 10 % | strong 1x shaft harmonic |
| ``misalignment`` | 10 % | strong 2x harmonic (and 3x) |
| ``bearing`` | 10 % | impulses at 3.57x shaft speed ringing a 260 Hz resonance; runs warmer |
| ``looseness`` | 10 % | 0.5x sub-harmonic, many harmonics, more broadband noise |

The states differ in the spectrum and noise, so a probe on good features can tell them apart; only
``--labelled-fraction`` of the recordings (default 10 %, evenly spread over the ids) carry their state as
``label``, the others have a null label but are drawn from the same mix.

Schema (one row per recording; what ``data.series_column=values`` reads in the time-series domain)::

    recording  string                  "rec-000000042": the global index, stable across shards and reruns
    values     list<list<float32>>     [channels][steps], channel-major
    label      string, nullable        the machine state, or null for unlabelled recordings

Each file's schema metadata holds ``gsg.archive`` (JSON: rate_hz, channels, steps, channel names, seed, the
generator's version). Files are ``part-00000.parquet``, ``part-00001.parquet``, ... with ``--shard-mb`` of
values each (before compression) in row groups of at most ``--row-group-mb``; shard ``k`` holds the
recordings ``k * per_shard`` onwards.

Deterministic: recording ``i`` is a function of ``(--seed, i)`` and the shape options only, so the output does
not depend on how it is sharded or interrupted. Resumable and safe to kill: a shard is written to a hidden
temporary file, synced, then renamed, so a ``part-*.parquet`` is always complete; a rerun with the same options
keeps the complete shards (their footers are checked) and writes the rest. ``_archive.json`` records the
options; a rerun with other shape options is refused (use another ``--out``). Memory stays at about one row
group.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

VERSION = 1
STATES = ("normal", "imbalance", "misalignment", "bearing", "looseness")
STATE_SHARE = (0.6, 0.1, 0.1, 0.1, 0.1)
KINDS = ("vib-1", "vib-2", "vib-3", "vib-4", "vib-5", "vib-6", "current", "temperature")
SHAPE_KEYS = ("channels", "steps", "rate_hz", "seed", "labelled_fraction", "shard_mb", "compression", "version")
SCHEMA = pa.schema(
    [
        pa.field("recording", pa.string(), nullable=False),
        pa.field("values", pa.list_(pa.list_(pa.float32())), nullable=False),
        pa.field("label", pa.string(), nullable=True),
    ]
)


def channel_names(channels: int) -> list[str]:
    """``s0-vib-1``, ... ``s0-temperature``, ``s1-vib-1``, ...: the kinds repeat per sensor station of 8 channels."""
    return [f"s{c // len(KINDS)}-{KINDS[c % len(KINDS)]}" for c in range(channels)]


def is_labelled(i: int, fraction: float) -> bool:
    """Evenly spread: exactly ``floor(n * fraction)`` of the first ``n`` recordings are labelled, for every n."""
    return math.floor((i + 1) * fraction) > math.floor(i * fraction)


class Machine:
    """Draws recordings. ``mixing`` (per archive) places the sensors: how strongly each sees each component."""

    def __init__(self, channels: int, steps: int, rate_hz: float, seed: int) -> None:
        self.channels, self.steps, self.seed = channels, steps, seed
        self.t = np.arange(steps, dtype=np.float64) / rate_hz
        rng = np.random.default_rng((seed, 0))
        kinds = [KINDS[c % len(KINDS)] for c in range(channels)]
        # Components: 0.5x, 1x, 2x, 3x, 4x-5x, bearing ringing, line current, slow thermal wave.
        mixing = np.zeros((channels, 8), dtype=np.float32)
        for c, kind in enumerate(kinds):
            if kind.startswith("vib"):
                mixing[c, :6] = rng.uniform(0.5, 1.5, 6)  # each position sees each vibration differently
            elif kind == "current":
                mixing[c, [1, 6]] = (0.05, 1.0)  # the line frequency, slightly modulated by the shaft
            else:
                mixing[c, 7] = 1.0
        self.mixing = mixing
        self.noise = np.array([0.3 if k.startswith("vib") else 0.05 if k == "current" else 0.02 for k in kinds])
        self.offset = np.array([40.0 if k == "temperature" else 0.0 for k in kinds], dtype=np.float32)
        self.state_cdf = np.cumsum(STATE_SHARE)

    def state_of(self, i: int) -> int:
        return int(np.searchsorted(self.state_cdf, np.random.default_rng((self.seed, 2, i)).random(), side="right"))

    def recording(self, i: int) -> tuple[np.ndarray, int]:
        """``[channels, steps]`` float32 values of recording ``i``, and its state."""
        state = self.state_of(i)
        rng = np.random.default_rng((self.seed, 1, i))
        t = self.t
        f0 = rng.uniform(20.0, 45.0)  # shaft speed (Hz), drifting +-2 % with the load
        wobble = rng.uniform(20.0, 60.0)
        shaft = 2 * np.pi * f0 * (t - 0.02 * wobble / (2 * np.pi) * np.cos(2 * np.pi * t / wobble))
        amp = {  # strengths of 0.5x, 1x, 2x, 3x, 4x-5x, bearing
            "normal": (0.0, 0.3, 0.1, 0.05, 0.02, 0.0),
            "imbalance": (0.0, 1.2, 0.1, 0.05, 0.02, 0.0),
            "misalignment": (0.0, 0.4, 0.9, 0.4, 0.05, 0.0),
            "bearing": (0.0, 0.3, 0.1, 0.05, 0.02, 0.8),
            "looseness": (0.3, 0.5, 0.35, 0.3, 0.25, 0.0),
        }[STATES[state]]
        amp = np.asarray(amp) * rng.uniform(0.8, 1.2, 6)  # machine-to-machine spread
        phases = rng.uniform(0, 2 * np.pi, 6)
        basis = np.empty((8, self.steps), dtype=np.float32)
        basis[0] = amp[0] * np.sin(0.5 * shaft + phases[0])
        basis[1] = amp[1] * np.sin(shaft + phases[1])
        basis[2] = amp[2] * np.sin(2 * shaft + phases[2])
        basis[3] = amp[3] * np.sin(3 * shaft + phases[3])
        basis[4] = amp[4] * (np.sin(4 * shaft + phases[4]) + np.sin(5 * shaft + phases[5]))
        if amp[5] > 0:  # a defect hit 3.57 times per turn, each ringing a resonance that decays
            since_hit = np.mod(3.57 * shaft / (2 * np.pi), 1.0)
            basis[5] = amp[5] * np.exp(-12.0 * since_hit) * np.sin(2 * np.pi * 260.0 * t)
        else:
            basis[5] = 0.0
        basis[6] = np.sin(2 * np.pi * 50.0 * t + rng.uniform(0, 2 * np.pi))
        warm = {"bearing": 8.0, "looseness": 3.0}.get(STATES[state], 0.0) + rng.uniform(-2, 2)
        basis[7] = warm + 0.5 * np.sin(2 * np.pi * t / rng.uniform(30.0, 120.0))
        values = self.mixing @ basis  # [C, T] float32
        noise_scale = self.noise * (2.0 if STATES[state] == "looseness" else 1.0)
        noise = rng.standard_normal((self.channels, self.steps), dtype=np.float32)
        values += noise * noise_scale[:, None].astype(np.float32) + self.offset[:, None]
        return values, state


def batch_table(machine: Machine, first: int, count: int, fraction: float) -> pa.Table:
    """``count`` recordings from ``first`` as one Arrow table, the values converted without copying."""
    c, s = machine.channels, machine.steps
    flat = np.empty((count, c, s), dtype=np.float32)
    ids, labels = [], []
    for k in range(count):
        i = first + k
        flat[k], state = machine.recording(i)
        ids.append(f"rec-{i:09d}")
        labels.append(STATES[state] if is_labelled(i, fraction) else None)
    inner = pa.ListArray.from_arrays(pa.array(np.arange(0, count * c * s + 1, s, dtype=np.int32)), flat.reshape(-1))
    outer = pa.ListArray.from_arrays(pa.array(np.arange(0, count * c + 1, c, dtype=np.int32)), inner)
    return pa.Table.from_arrays([pa.array(ids, pa.string()), outer, pa.array(labels, pa.string())], schema=SCHEMA)


VALUES_COLUMN = "values.list.element.list.element"  # the float32 leaf of the nested list


def complete_rows(path: Path) -> int | None:
    """Rows of a finished shard, or ``None`` if its footer cannot be read (then it is written again)."""
    try:
        return pq.read_metadata(path).num_rows
    except (OSError, pa.ArrowException):
        return None


class Archive:
    """The shards of one archive in ``out``: shard ``k`` holds ``per_shard`` recordings from ``k * per_shard``."""

    def __init__(self, out: Path, args: argparse.Namespace, machine: Machine, metadata: dict[bytes, bytes]) -> None:
        self.recording_bytes = args.channels * args.steps * 4
        self.out, self.args, self.machine, self.metadata = out, args, machine, metadata
        self.per_shard = max(1, round(args.shard_mb * 1e6 / self.recording_bytes))
        self.per_group = max(1, min(self.per_shard, int(args.row_group_mb * 1e6 // self.recording_bytes)))

    def path(self, shard: int) -> Path:
        return self.out / f"part-{shard:05d}.parquet"

    def ensure(self, shard: int, count: int) -> bool:
        """Write shard ``shard`` (``count`` recordings) unless a complete copy is there; whether it was written."""
        path = self.path(shard)
        if path.is_file() and complete_rows(path) == count:
            return False
        first = shard * self.per_shard
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        try:
            with pq.ParquetWriter(
                tmp,
                SCHEMA.with_metadata(self.metadata),
                compression=None if self.args.compression == "none" else self.args.compression,
                use_dictionary=["recording", "label"],  # not the values: unique floats only grow a dictionary
                use_byte_stream_split=[VALUES_COLUMN],  # each float's bytes stored apart by position: they compress
            ) as writer:
                for start in range(first, first + count, self.per_group):
                    n = min(self.per_group, first + count - start)
                    writer.write_table(batch_table(self.machine, start, n, self.args.labelled_fraction))
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())  # on disk before it takes its final name
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        print(f"{path.name}: recordings {first}..{first + count - 1}, {path.stat().st_size / 1e6:.0f} MB", flush=True)
        return True


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="folder for the shards")
    size = parser.add_mutually_exclusive_group(required=True)
    size.add_argument("--gb", type=float, help="about this many GB (1e9 bytes) on disk, in whole shards")
    size.add_argument("--recordings", type=int, help="exactly this many recordings")
    parser.add_argument("--channels", type=int, default=16)
    parser.add_argument("--steps", type=int, default=100_000, help="samples per recording and channel")
    parser.add_argument("--rate-hz", type=float, default=1000.0, help="sampling rate")
    parser.add_argument("--labelled-fraction", type=float, default=0.1)
    parser.add_argument("--shard-mb", type=float, default=256.0, help="values per shard, MB before compression")
    parser.add_argument("--row-group-mb", type=float, default=32.0, help="values per row group (at least 1 recording)")
    parser.add_argument("--compression", default="zstd", choices=("none", "zstd", "snappy", "lz4", "gzip"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.channels < 1 or args.steps < 2 or not 0 <= args.labelled_fraction <= 1 or args.rate_hz <= 0:
        parser.error("need --channels >= 1, --steps >= 2, --rate-hz > 0 and --labelled-fraction in [0, 1]")
    if (args.gb is not None and args.gb <= 0) or (args.recordings is not None and args.recordings < 1):
        parser.error("--gb must be positive and --recordings at least 1")
    if args.shard_mb <= 0 or args.row_group_mb <= 0:
        parser.error("--shard-mb and --row-group-mb must be positive")
    return args


def check_options(out: Path, options: dict) -> None:
    """Record the options in ``_archive.json``; refuse a folder holding an archive made with other ones."""
    recorded = out / "_archive.json"
    if recorded.is_file():
        before = json.loads(recorded.read_text())
        differ = {k: (before.get(k), v) for k, v in options.items() if before.get(k) != v}
        if differ:
            sys.exit(f"error: '{out}' holds an archive made with other options {differ}; use another --out")
        return
    tmp = out / "_archive.json.tmp"
    tmp.write_text(json.dumps(options, indent=1) + "\n")
    os.replace(tmp, recorded)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    options = {**{k: getattr(args, k) for k in SHAPE_KEYS if k != "version"}, "version": VERSION}
    check_options(out, options)
    for leftover in out.glob(".part-*.tmp-*"):  # from a generation killed mid-shard
        leftover.unlink(missing_ok=True)
    machine = Machine(args.channels, args.steps, args.rate_hz, args.seed)
    info = {**options, "channel_names": channel_names(args.channels), "states": list(STATES)}
    archive = Archive(out, args, machine, {b"gsg.archive": json.dumps(info).encode()})
    per_shard = archive.per_shard

    started = time.time()
    count = per_shard if args.recordings is None else min(per_shard, args.recordings)
    written = int(archive.ensure(0, count))
    new_recordings = count * written
    if args.recordings is not None:
        recordings = args.recordings
    else:  # shards are alike: the first one's size on disk says how many make --gb
        recordings = per_shard * max(1, math.ceil(args.gb * 1e9 / archive.path(0).stat().st_size))
    shards = math.ceil(recordings / per_shard)
    for shard in range(1, shards):
        count = min(per_shard, recordings - shard * per_shard)
        if archive.ensure(shard, count):
            written, new_recordings = written + 1, new_recordings + count
    wall = time.time() - started

    disk = sum(archive.path(k).stat().st_size for k in range(shards))
    states = [0] * len(STATES)
    for i in range(recordings):
        if is_labelled(i, args.labelled_fraction):
            states[machine.state_of(i)] += 1
    print(
        f"{out}: {shards} files ({written} written, {shards - written} kept), {disk / 1e9:.3f} GB, "
        f"{recordings} recordings of {args.channels} x {args.steps} float32, {sum(states)} labelled "
        f"({', '.join(f'{s} {n}' for s, n in zip(STATES, states, strict=True))}); {wall:.1f} s"
    )
    if written:
        values_mb = new_recordings * archive.recording_bytes / 1e6
        disk_mb = disk / 1e6 * new_recordings / recordings  # shards are alike
        print(
            f"written: {values_mb:.0f} MB of values (about {disk_mb:.0f} MB on disk) in {wall:.1f} s: "
            f"{values_mb / wall:.0f} MB/s of values, {disk_mb / wall:.0f} MB/s to disk"
        )
    extra = sorted(p.name for p in out.glob("part-*.parquet") if int(p.stem.split("-")[1]) >= shards)
    if extra:
        print(f"note: {len(extra)} more shard(s) from an earlier, larger run are in the folder, from {extra[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
