"""Carry a suite's finished results between machines (``gsg benchmark --save-results / --load-results``).

A long suite runs over several sittings, often on machines that do not keep ``runs/``. What its
report is computed from is small: each finished cell's ``result.json`` and resolved
``run/config.yaml`` (the cache key ``Benchmark.is_done`` checks), the transfer evaluations, and the
encoders that are still needed (the runs the embedding map draws, and sources of transfer
evaluations not done yet). The archive holds exactly those; checkpoints and other encoders stay
behind, so a 930-cell suite fits in a few megabytes.

The archive is deterministic (sorted members, fixed owners and gzip header, file times kept), so
saving unchanged results writes the same bytes and a version-controlled archive changes only when
results do. File times are kept because a transfer evaluation counts as current only when it is
newer than its source's result.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import tarfile
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from .errors import UserError
from .report_tables import ReportData, embedding_runs

if TYPE_CHECKING:
    from .benchmark import Benchmark

MANIFEST = "suite.json"


def _finished_files(bench: Benchmark) -> list[Path]:
    """Files under ``bench.out`` that the report and a later run need, relative to it."""
    data = ReportData(bench)  # reads every finished cell once; its results say which cells are done
    done = list(data.results)
    files = []
    for cell in done:
        rel = bench.cell_dir(cell).relative_to(bench.out)
        files += [rel / "result.json", rel / "run" / "config.yaml"]
        eval_json = bench.cell_dir(cell) / "run" / "eval.json"
        if eval_json.is_file():
            files.append(rel / "run" / "eval.json")
    encoders = {run_dir for _, run_dir in embedding_runs(data)}
    for source, _, out_file in bench.transfer_jobs():
        if source in data.results and not bench.transfer_done(source, out_file):
            encoders.add(bench.cell_dir(source) / "run")  # its transfer rows still have to be evaluated
        elif bench.transfer_done(source, out_file):
            files.append(out_file.relative_to(bench.out))
    for run_dir in sorted(encoders):
        encoder = run_dir / "encoder"
        if encoder.is_dir():
            files += [f.relative_to(bench.out) for f in encoder.iterdir() if f.is_file()]
    return sorted(set(files))


def save_results(bench: Benchmark, archive: str | Path) -> int:
    """Write the finished results of ``bench`` to ``archive`` (a .tar.gz); returns the number of cells in it."""
    archive = Path(archive)
    files = _finished_files(bench)
    manifest = json.dumps({"suite": bench.suite.name, "cells": sum(f.name == "result.json" for f in files)}).encode()
    buf = io.BytesIO()
    with (
        gzip.GzipFile(fileobj=buf, mode="wb", mtime=0, filename="") as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        _add(tar, MANIFEST, manifest, mtime=0)
        for rel in files:
            path = bench.out / rel
            _add(tar, rel.as_posix(), path.read_bytes(), mtime=int(path.stat().st_mtime))
    archive.parent.mkdir(parents=True, exist_ok=True)
    tmp = archive.with_name(archive.name + ".tmp")
    tmp.write_bytes(buf.getvalue())
    os.replace(tmp, archive)  # an archive is whole or the old one
    return json.loads(manifest)["cells"]


def _add(tar: tarfile.TarFile, name: str, data: bytes, mtime: int) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), mtime, 0o644
    tar.addfile(info, io.BytesIO(data))


def load_results(bench: Benchmark, archive: str | Path) -> int:
    """Unpack ``archive`` into ``bench.out``; returns the number of cells taken from it.

    A cell that has a result here already keeps it (a local result is never replaced); an archived
    cell replaces a local one that is only begun. Transfer evaluations are added where missing.
    """
    archive = Path(archive)
    if not archive.is_file():
        raise UserError(f"results archive '{archive}' does not exist; check the path (--save-results writes one)")
    try:
        with tarfile.open(archive, mode="r:gz") as tar:
            members = {m.name: m for m in tar.getmembers()}
            manifest = json.loads(tar.extractfile(members[MANIFEST]).read())  # type: ignore[union-attr]
            if manifest.get("suite") != bench.suite.name:
                raise UserError(
                    f"results archive '{archive}' holds suite '{manifest.get('suite')}', not "
                    f"'{bench.suite.name}'; load it into that suite"
                )
            known = {bench.cell_dir(c).relative_to(bench.out).as_posix() for c in bench.cells}
            archived = {_cell_of(n) for n in members if n.startswith("cells/") and n.endswith("/result.json")}
            # Cells this suite no longer has are left out; a local result is never replaced.
            taken = {c for c in archived & known if not (bench.out / c / "result.json").is_file()}
            for name, member in sorted(members.items()):
                if name == MANIFEST:
                    continue
                if not member.isfile() or PurePosixPath(name).parts[0] not in ("cells", "transfer"):
                    raise UserError(f"results archive '{archive}' has an unexpected member '{name}'")
                cell = _cell_of(name) if name.startswith("cells/") else None
                if cell is not None and cell not in taken:
                    continue
                if cell is None and (bench.out / name).exists():
                    continue
                if name.endswith("/result.json"):
                    continue  # written last, below: a cell counts as done only once its config is in place
                tar.extract(member, bench.out, filter="data")
            for cell in sorted(taken):
                tar.extract(members[f"{cell}/result.json"], bench.out, filter="data")
    except (tarfile.TarError, EOFError, OSError, KeyError, ValueError, gzip.BadGzipFile) as exc:
        raise UserError(
            f"cannot read results archive '{archive}' ({type(exc).__name__}: {exc}); it is damaged or not one "
            "that --save-results wrote: save it again from the machine that has the cells"
        ) from None
    return len(taken)


def _cell_of(name: str) -> str:
    """``cells/<data set>/<objective>/<budget>/<seed>`` of a member under a cell's folder."""
    parts = PurePosixPath(name).parts
    return "/".join(parts[:5])
