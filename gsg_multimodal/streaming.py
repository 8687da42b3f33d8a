"""Streamed pretraining data: an archive of Parquet / Arrow shards read a few rows at a time, never all in memory.

A domain that can stream returns a ``StreamSource`` as ``DataSplits.pretrain`` instead of a
``datasets.Dataset``; the trainer then reads it through a ``StreamLoader``. The domain supplies a
``StreamReader``: which columns it reads, the schema it needs (checked when each shard is opened),
how a record batch becomes records (one per row) and how a record becomes examples
(e.g. several crops of one long row). Everything else lives here and knows nothing about any kind of data:

- **Shards**: a folder (searched recursively), a glob, or one file; ``.parquet``/``.pq`` files are read
  row group by row group (a few rows decoded at a time), ``.arrow`` files (Arrow IPC file or stream
  format, as ``datasets`` writes them) are memory-mapped.
- **Order**: one *pass* reads every shard once. Pass ``p`` visits the shards in an order drawn from
  ``(seed, p)`` (or sorted, ``shuffle_shards=false``); examples go through a shuffle buffer of
  ``shuffle_buffer`` examples drawn from ``(seed, rank, p)``: each new example replaces a random one,
  which is yielded; at the end of the pass the buffer is emptied in random order. A pass is cut into
  full batches; the incomplete rest of a pass is dropped (``drop_last``), and the next pass follows, so
  the stream never ends: the budget is counted in optimiser steps.
- **Processes**: ``shards`` gives process ``r`` of ``w`` the shards ``r, r + w, ...`` of each pass's
  order (each reads only its own files); ``examples`` lets every process read every shard and keep one
  example in ``w``; ``auto`` (the default) takes ``shards`` when the shard count divides by ``w``, else
  ``examples`` (the rule of ``datasets.distributed.split_dataset_by_node``).
- **Exact resume**: the state after each batch is the pass number, the position in the pass (shard,
  row, example of the row, examples seen), the shuffle buffer as references ``(shard, row, key)`` and
  the buffer's generator state. Restoring re-reads only the referenced rows (at most ``shuffle_buffer``
  of them) and the row under the cursor: no replay of the stream. The state is saved in every
  checkpoint (``generators_<rank>.pt``), so a killed run continues with the same examples in the same
  order as an uninterrupted one.

Why not ``datasets.IterableDataset`` with ``state_dict()``: its documented resume loses the shuffle
buffer's contents ("examples from shuffle buffers are lost when resuming and the buffers are refilled
with new data"), so a resumed run would not see the same samples, and torchdata's stateful loader is not
a dependency. The reading itself is pyarrow's (Parquet row groups, memory-mapped Arrow).
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from .errors import UserError

if TYPE_CHECKING:
    import pyarrow as pa

SHARD_KINDS = {".parquet": "parquet", ".pq": "parquet", ".arrow": "arrow"}
READ_BYTES = 16_000_000  # about this much data decoded at a time: a row can be one long recording (MBs)
READ_ROWS = 1024  # and at most this many rows
_HUB_NAME = re.compile(r"^(?P<split>.+?)-\d{5}-of-\d{5}$")  # `datasets` / hub shard names: train-00000-of-00004
STATE_VERSION = 1


@dataclass
class StreamOptions:
    """The streaming keys of a domain's ``data`` section; a domain that streams inherits them.

    ``streaming``: read ``data.path`` as an archive of shards, a few rows at a time. ``shuffle_buffer``:
    examples held for shuffling (memory: that many examples). ``shuffle_shards``: visit the shards in a
    new seeded order every pass (false: sorted by path). ``shard_split``: how processes share the shards
    (``auto``, ``shards``, ``examples``; see the module docstring).
    """

    streaming: bool = False
    shuffle_buffer: int = 1024
    shuffle_shards: bool = True
    shard_split: Literal["auto", "shards", "examples"] = "auto"

    def __post_init__(self) -> None:
        if self.shuffle_buffer < 1:
            raise UserError(
                f"data.shuffle_buffer={self.shuffle_buffer} must be at least 1 example (1 keeps the archive's order)"
            )


# ---------------------------------------------------------------- finding and opening shards


def find_shards(spec: str, key: str = "data.path", kinds: Sequence[str] = ("parquet", "arrow")) -> list[Path]:
    """The shard files of an archive, in a fixed order (sorted by path).

    ``spec``: a folder (searched recursively; hidden files and folders and ``datasets``' ``cache-*.arrow``
    files are skipped), a glob pattern (``**`` allowed), or a single file. A ``datasets`` ``DatasetDict``
    folder or a folder of hub-style files of several splits (``train-00000-of-00002.parquet`` beside
    ``test-...``) is refused, naming the splits: streaming reads one split.
    """
    suffixes = {s for s, k in SHARD_KINDS.items() if k in kinds}
    wanted = " / ".join(f"*{s}" for s in sorted(suffixes))
    path = Path(spec).expanduser()
    if any(ch in spec for ch in "*?["):
        found = [Path(p) for p in glob.glob(str(path), recursive=True)]
        files = sorted(p for p in found if p.is_file() and p.suffix.lower() in suffixes)
        if not files:
            raise UserError(f"{key} '{spec}' matches no {wanted} file; check the pattern")
    elif path.is_dir():
        if (path / "dataset_dict.json").is_file():
            splits = sorted(p.name for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
            raise UserError(
                f"{key} '{spec}' is a datasets DatasetDict folder of splits ({', '.join(splits)}); "
                f"point {key} at one split's folder, e.g. '{path / (splits[0] if splits else 'train')}'"
            )
        files = sorted(
            (
                p
                for p in path.rglob("*")
                if p.is_file()
                and p.suffix.lower() in suffixes
                and not p.name.startswith("cache-")
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
            ),
            key=lambda p: p.relative_to(path).as_posix(),
        )
        if not files:
            raise UserError(f"{key} '{spec}' holds no {wanted} file; point it at a folder or glob of shards")
    elif path.is_file():
        if path.suffix.lower() not in suffixes:
            raise UserError(f"{key} '{spec}' is not a {wanted} shard; streaming reads Parquet or Arrow files")
        files = [path]
    else:
        raise UserError(f"{key} '{spec}' does not exist; point it at a folder, a glob or a file of shards")
    splits = sorted({m.group("split") for p in files if (m := _HUB_NAME.match(p.stem))})
    if len(splits) > 1:
        example = path if path.is_dir() else path.parent
        raise UserError(
            f"{key} '{spec}' holds the shards of several splits ({', '.join(splits)}); streaming reads one: "
            f"set {key} to a glob of one of them, e.g. '{example}/**/{splits[-1]}-*'"
        )
    return files


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class Shard:
    """One shard file: Parquet read row group by row group, or Arrow memory-mapped. Errors name the file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.kind = SHARD_KINDS[path.suffix.lower()]
        self._parquet: Any = None
        self._table: Any = None
        try:
            if self.kind == "parquet":
                import pyarrow.parquet as pq

                self._parquet = pq.ParquetFile(str(path))
                meta = self._parquet.metadata
                sizes = [meta.row_group(g).num_rows for g in range(meta.num_row_groups)]
                self._group_starts = np.concatenate([[0], np.cumsum(sizes, dtype=np.int64)])
                data_bytes = sum(meta.row_group(g).total_byte_size for g in range(meta.num_row_groups))
            else:
                self._table = _read_arrow(path)
                data_bytes = self._table.nbytes
            # Rows per read sized by bytes, so memory stays bounded whether a row is a short series or a
            # recording of many MB (then one row at a time; 16 rows of 6.4 MB cost over 600 MB of buffers).
            per_row = data_bytes / max(self.num_rows, 1)
            self.read_rows = int(min(READ_ROWS, max(1, READ_BYTES // max(per_row, 1))))
        except UserError:
            raise
        except Exception as e:  # pyarrow raises several types for a damaged file
            raise self.damaged(e) from e

    def damaged(self, exc: BaseException) -> UserError:
        what = "Parquet" if self.kind == "parquet" else "Arrow (IPC file or stream)"
        return UserError(
            f"cannot read shard '{self.path}' ({_first_line(exc)}); it is damaged or not a {what} file: "
            "replace it, or move it out of the archive"
        )

    @property
    def schema(self) -> pa.Schema:
        return self._parquet.schema_arrow if self.kind == "parquet" else self._table.schema

    @property
    def num_rows(self) -> int:
        return int(self._group_starts[-1]) if self.kind == "parquet" else self._table.num_rows

    def batches(self, columns: list[str], start: int = 0) -> Iterator[tuple[int, pa.RecordBatch]]:
        """``(first row, record batch)`` of at most ``read_rows`` rows each, from row ``start`` on."""
        if start >= self.num_rows:
            return
        if self.kind == "arrow":
            table = self._table.select(columns).slice(start)
            row = start
            for batch in table.to_batches(max_chunksize=self.read_rows):
                yield row, batch
                row += batch.num_rows
            return
        group = int(np.searchsorted(self._group_starts, start, side="right") - 1)
        row = int(self._group_starts[group])
        reader = self._parquet.iter_batches(
            batch_size=self.read_rows, row_groups=range(group, len(self._group_starts) - 1), columns=columns
        )
        while True:
            try:
                batch = next(reader)
            except StopIteration:
                return
            except Exception as e:  # a damaged page or column chunk
                raise self.damaged(e) from e
            if row + batch.num_rows > start:
                skip = max(start - row, 0)
                yield row + skip, batch.slice(skip) if skip else batch
            row += batch.num_rows

    def take(self, columns: list[str], rows: Sequence[int]) -> pa.RecordBatch:
        """The given rows (sorted, unique) as one record batch; Parquet reads only the row groups holding them."""
        import pyarrow as pa

        rows = np.asarray(rows, dtype=np.int64)
        if self.kind == "arrow":
            return self._table.select(columns).take(pa.array(rows)).combine_chunks().to_batches()[0]
        groups = np.searchsorted(self._group_starts, rows, side="right") - 1
        parts = []
        for group in np.unique(groups):
            try:
                table = self._parquet.read_row_group(int(group), columns=columns)
            except Exception as e:
                raise self.damaged(e) from e
            local = rows[groups == group] - self._group_starts[group]
            parts.append(table.take(pa.array(local)))
        return pa.concat_tables(parts).combine_chunks().to_batches()[0]


def _read_arrow(path: Path) -> Any:
    """A memory-mapped Arrow table (IPC file format, or the stream format ``datasets`` writes): nothing copied."""
    import pyarrow as pa

    source = pa.memory_map(str(path), "r")
    try:
        return pa.ipc.open_file(source).read_all()
    except pa.ArrowInvalid:
        source.seek(0)
        return pa.ipc.open_stream(source).read_all()


# ---------------------------------------------------------------- what a domain supplies


class StreamReader(ABC):
    """How a domain reads its shards: columns, the schema it needs, rows -> records -> examples.

    Instances travel to the loader's worker process, so they must be picklable (plain attributes).
    """

    columns: list[str]
    schema_text: str = ""  # the expected schema in words, quoted by the error for a shard that lacks it

    @abstractmethod
    def check_schema(self, schema: pa.Schema) -> str | None:
        """What is wrong with a shard's schema (one phrase), or ``None`` when it can be read."""

    @abstractmethod
    def decode(self, batch: pa.RecordBatch, first_row: int, shard: Path) -> list[Any]:
        """One record per row of ``batch`` (rows ``first_row ...`` of ``shard``); ``UserError`` naming both if bad."""

    def keys(self, record: Any) -> Sequence[int]:
        """The examples of a record, as integer keys (e.g. crop starts); by default one example per record."""
        return (0,)

    @abstractmethod
    def example(self, record: Any, key: int) -> dict[str, Any]:
        """Example ``key`` of ``record``: a row for the domain's ``collate`` that owns its memory (no view)."""


Ref = tuple[int, int, int]  # (shard index, row in shard, key): where an example comes from


@dataclass
class StreamSource:
    """A streamed split (``DataSplits.pretrain`` of a streaming run): shards, the domain's reader, shuffling."""

    shards: list[Path]
    reader: StreamReader
    shuffle_buffer: int = 1024
    shuffle_shards: bool = True
    split: Literal["auto", "shards", "examples"] = "auto"
    name: str = "the streamed archive"  # how messages name it, e.g. "data.path 'archive/'"

    def open(self, index: int) -> Shard:
        return Shard(self.shards[index])

    def check(self) -> None:
        """Open every shard (its footer or header only) and check its schema; the first bad one stops loading."""
        for i, path in enumerate(self.shards):
            problem = self.reader.check_schema(self.open(i).schema)
            if problem is not None:
                raise UserError(
                    f"shard '{path}' does not have the expected schema: {problem}. Expected {self.reader.schema_text}; "
                    "fix or remove that file"
                )

    def fingerprint(self, with_times: bool = False) -> str:
        """The shards' paths (relative to their common folder) and sizes, and modification times if asked.

        Changes when a shard is added, removed, renamed or rewritten with another size; moving the whole
        archive elsewhere keeps it.
        """
        root = Path(os.path.commonpath([p.parent for p in self.shards]))
        items = []
        for p in self.shards:
            info = p.stat()
            items.append([p.relative_to(root).as_posix(), info.st_size] + ([info.st_mtime_ns] if with_times else []))
        return hashlib.sha256(json.dumps(items).encode()).hexdigest()[:16]

    def strategy(self, world: int) -> str:
        if self.split != "auto":
            return self.split
        return "shards" if len(self.shards) % world == 0 else "examples"

    def records(self) -> Iterator[tuple[int, int, Any]]:
        """``(shard, row, record)`` over the whole archive in its sorted order (one pass, e.g. for statistics)."""
        for index in range(len(self.shards)):
            shard = self.open(index)
            for first, batch in shard.batches(self.reader.columns):
                for i, record in enumerate(self.reader.decode(batch, first, shard.path)):
                    yield index, first + i, record

    def head(self, n: int) -> list[dict[str, Any]]:
        """The first ``n`` examples in archive order (no shuffling): for ``gsg views``."""
        out: list[dict[str, Any]] = []
        for _, _, record in self.records():
            for key in self.reader.keys(record):
                out.append(self.reader.example(record, key))
                if len(out) >= n:
                    return out
        return out

    def fetch(self, refs: Sequence[Ref]) -> list[dict[str, Any]]:
        """The examples at ``refs``, in that order, reading only the rows they come from (to rebuild a buffer)."""
        wanted: dict[int, set[int]] = {}
        for shard, row, _ in refs:
            wanted.setdefault(shard, set()).add(row)
        records: dict[tuple[int, int], Any] = {}
        for index, rows in sorted(wanted.items()):
            shard = self.open(index)
            ordered = sorted(rows)
            if ordered[-1] >= shard.num_rows:
                raise UserError(f"shard '{shard.path}' has fewer rows than the checkpoint refers to; it was changed")
            batch = shard.take(self.reader.columns, ordered)
            for pos, row in enumerate(ordered):
                records[index, row] = self.reader.decode(batch.slice(pos, 1), row, shard.path)[0]
        return [self.reader.example(records[shard, row], key) for shard, row, key in refs]


# ---------------------------------------------------------------- the stream of one process


class ExampleStream:
    """The examples of one process, pass after pass, deterministic in ``(seed, rank, world)`` and resumable.

    ``next()`` gives ``(ref, example)``, or ``None`` once at the end of each pass (the next call begins the
    next pass). ``state_dict()`` between two calls is enough to continue exactly there.
    """

    def __init__(self, source: StreamSource, seed: int, rank: int = 0, world: int = 1) -> None:
        self.source, self.seed, self.rank, self.world = source, seed, rank, world
        self.mode = source.strategy(world)
        self.size = source.shuffle_buffer
        self._shard: tuple[int, Shard] | None = None
        self.finished_pass_yield = 0  # examples the last finished pass gave (a pass with too few is an error)
        self._identity = {
            "archive": source.fingerprint(),
            "seed": seed,
            "rank": rank,
            "world": world,
            "mode": self.mode,
            "shuffle_buffer": self.size,
            "shuffle_shards": source.shuffle_shards,
        }
        self._begin_pass(0)

    def _begin_pass(self, index: int) -> None:
        self.pass_index = index
        self.shard_pos = self.row = self.taken = self.seen = self.yielded = 0
        self.draining = False
        self.buffer: list[dict[str, Any]] = []
        self.refs: list[Ref] = []
        self.rng = np.random.default_rng([self.seed, self.rank, index, 0xB0FF])
        self._walker: Iterator[tuple[Ref, dict[str, Any]]] | None = None

    def pass_shards(self) -> list[int]:
        """Indices of the shards this process reads in the current pass, in reading order."""
        n = len(self.source.shards)
        if self.source.shuffle_shards:  # the same order on every process: it depends on the pass only
            order = np.random.default_rng([self.seed, self.pass_index, 0x5A4D]).permutation(n)
        else:
            order = np.arange(n)
        return order[self.rank :: self.world].tolist() if self.mode == "shards" else order.tolist()

    def _shard_at(self, index: int) -> Shard:
        if self._shard is None or self._shard[0] != index:
            self._shard = (index, self.source.open(index))
        return self._shard[1]

    def _walk(self) -> Iterator[tuple[Ref, dict[str, Any]]]:
        """This process's examples of the pass in reading order; the cursor moves before each is handed out."""
        reader = self.source.reader
        shards = self.pass_shards()
        while self.shard_pos < len(shards):
            index = shards[self.shard_pos]
            shard = self._shard_at(index)
            for first, batch in shard.batches(reader.columns, self.row):
                for i, record in enumerate(reader.decode(batch, first, shard.path)):
                    keys = reader.keys(record)
                    self.row = first + i
                    while self.taken < len(keys):
                        key = keys[self.taken]
                        mine = self.mode != "examples" or self.seen % self.world == self.rank
                        self.taken += 1
                        self.seen += 1
                        if mine:
                            yield (index, self.row, int(key)), reader.example(record, key)
                    self.row, self.taken = first + i + 1, 0
            self.shard_pos, self.row, self.taken = self.shard_pos + 1, 0, 0

    def next(self) -> tuple[Ref, dict[str, Any]] | None:
        while not self.draining:
            if self._walker is None:
                self._walker = self._walk()
            item = next(self._walker, None)
            if item is None:  # the pass's reading is over: empty the buffer in random order
                self.draining = True
                order = self.rng.permutation(len(self.buffer))
                self.buffer = [self.buffer[i] for i in order]
                self.refs = [self.refs[i] for i in order]
                break
            if len(self.buffer) < self.size:
                self.refs.append(item[0])
                self.buffer.append(item[1])
                continue
            j = int(self.rng.integers(self.size))
            out = (self.refs[j], self.buffer[j])
            self.refs[j], self.buffer[j] = item
            self.yielded += 1
            return out
        if self.buffer:
            self.yielded += 1
            return self.refs.pop(), self.buffer.pop()
        self.finished_pass_yield = self.yielded
        self._begin_pass(self.pass_index + 1)
        return None

    # ------------------------------------------------------------ state

    def state_dict(self) -> dict[str, Any]:
        """The position after the last example handed out: small (ints, the buffer as references, the rng state)."""
        return {
            "version": STATE_VERSION,
            **self._identity,
            "pass": self.pass_index,
            "shard_pos": self.shard_pos,
            "row": self.row,
            "taken": self.taken,
            "seen": self.seen,
            "yielded": self.yielded,
            "draining": self.draining,
            "refs": np.asarray(self.refs, dtype=np.int64).reshape(-1, 3),
            "rng": self.rng.bit_generator.state,
        }

    def check_state(self, state: dict[str, Any]) -> None:
        """Refuse a saved state of another archive or stream set-up, naming what changed."""
        mine = self._identity
        differ = [k for k in mine if state.get(k) != mine[k]]
        if state.get("version") != STATE_VERSION or differ:
            shown = ", ".join(f"{k}: {state.get(k)!r} -> {mine[k]!r}" for k in differ[:3])
            raise UserError(
                f"cannot resume the stream of {self.source.name} exactly: "
                + (f"{shown} since the checkpoint" if differ else "the checkpoint's stream state is of another version")
                + " (shards added, removed or rewritten change the stream); restore the archive as it was, "
                "or pass --overwrite to start again"
            )

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue exactly after the example the state was taken at (re-reads only the buffered rows)."""
        self.check_state(state)
        self._begin_pass(int(state["pass"]))
        for key in ("shard_pos", "row", "taken", "seen", "yielded"):
            setattr(self, key, int(state[key]))
        self.draining = bool(state["draining"])
        self.rng.bit_generator.state = state["rng"]
        refs = [tuple(int(v) for v in r) for r in np.asarray(state["refs"], dtype=np.int64).reshape(-1, 3)]
        self.refs = refs
        self.buffer = self.source.fetch(refs) if refs else []


# ---------------------------------------------------------------- batches for the trainer


def next_batch(stream: ExampleStream, batch_size: int) -> list[dict[str, Any]]:
    """The next full batch; a pass's incomplete rest is dropped (drop_last) and the next pass begins."""
    rows: list[dict[str, Any]] = []
    while len(rows) < batch_size:
        item = stream.next()
        if item is None:
            if stream.finished_pass_yield < batch_size:
                hint = (
                    ", or set data.shard_split=examples (this process's share of the shards is too small)"
                    if stream.mode == "shards" and stream.world > 1
                    else ""
                )
                raise UserError(
                    f"{stream.source.name} gives process {stream.rank} only {stream.finished_pass_yield} example(s) "
                    f"in a pass, fewer than train.batch_size={batch_size}: lower train.batch_size, "
                    f"add data{hint}"
                )
            rows = []  # the end of a pass: its incomplete batch is dropped
            continue
        rows.append(item[1])
    return rows


class _Batches:
    """``(collated batch, stream state after it)`` forever, from a given state; runs in a worker process or inline."""

    def __init__(self, source: StreamSource, collate: Callable, batch_size: int, seed: int, rank: int, world: int,
                 state: dict[str, Any] | None) -> None:  # fmt: skip
        self.source, self.collate, self.batch_size = source, collate, batch_size
        self.seed, self.rank, self.world, self.state = seed, rank, world, state

    def __iter__(self) -> Iterator[tuple[Any, dict[str, Any]]]:
        stream = ExampleStream(self.source, self.seed, self.rank, self.world)
        if self.state is not None:
            stream.load_state_dict(self.state)
        while True:
            rows = next_batch(stream, self.batch_size)
            yield self.collate(rows), stream.state_dict()


class StreamLoader:
    """The trainer's loader for a ``StreamSource``: ``len(self)`` full batches, then it stops.

    Every process yields the same number of batches (the stream is endless), so processes stay in step
    whatever their shards hold. ``state_dict()`` is the state after the last batch handed out, including
    when a worker process reads ahead. ``workers`` >= 1 reads and collates in one background process
    (more would each need their own part of the stream); 0 reads in the training process.
    """

    def __init__(self, source: StreamSource, batch_size: int, collate: Callable, seed: int, rank: int = 0,
                 world: int = 1, num_batches: int = 1, device: Any = None, workers: int = 0) -> None:  # fmt: skip
        self.source, self.batch_size, self.collate = source, batch_size, collate
        self.seed, self.rank, self.world = seed, rank, world
        self.num_batches, self.device, self.workers = num_batches, device, min(workers, 1)
        if source.strategy(world) == "shards" and len(source.shards) < world:
            raise UserError(
                f"{source.name} has {len(source.shards)} shard(s) for {world} processes, and data.shard_split=shards "
                "gives each process whole shards; set data.shard_split=auto (or examples), or write more shards"
            )
        self.batches_done = 0
        self._state: dict[str, Any] | None = None  # None: the very beginning

    def __len__(self) -> int:
        return self.num_batches

    def set_epoch(self, epoch: int) -> None:
        """Nothing to do: each pass over the archive is reshuffled with its own seed."""

    def state_dict(self) -> dict[str, Any]:
        """Plain Python values (``torch.load(weights_only=True)`` reads them back)."""
        stream = None if self._state is None else {**self._state, "refs": self._state["refs"].tolist()}
        return {"batches": self.batches_done, "stream": stream}

    @property
    def passes(self) -> int:
        """The pass over the archive this process is in (0 before the first batch)."""
        return 0 if self._state is None else int(self._state["pass"])

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.batches_done = int(state["batches"])
        self._state = state["stream"]
        if self._state is not None:
            self._state = {**self._state, "refs": np.asarray(self._state["refs"], dtype=np.int64).reshape(-1, 3)}
            # Checked now, so a changed archive stops the resume before any training.
            ExampleStream(self.source, self.seed, self.rank, self.world).check_state(self._state)

    def __iter__(self) -> Iterator[Any]:
        produce = _Batches(self.source, self.collate, self.batch_size, self.seed, self.rank, self.world, self._state)
        if self.batches_done >= self.num_batches:
            return
        failure: Any = type(None)
        if self.workers:
            from .stream_worker import StreamFailure, in_worker

            items: Any = in_worker(produce)
            failure = StreamFailure
        else:
            items = produce
        for item in items:
            if isinstance(item, failure):  # a UserError in the worker: the same one line here
                raise UserError(item.message)
            batch, state = item
            self._state = state
            self.batches_done += 1
            yield self._to_device(batch)
            if self.batches_done >= self.num_batches:
                return

    def _to_device(self, batch: Any) -> Any:
        if self.device is None:
            return batch
        from accelerate.utils import send_to_device

        return send_to_device(batch, self.device)
