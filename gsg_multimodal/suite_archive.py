"""Carry a suite's finished results between machines (``gsg benchmark --save-results / --load-results``).

A long suite runs over several sittings, often on machines that do not keep ``runs/``. What its
report is computed from is small: each finished cell's ``result.json`` and resolved
``run/config.yaml`` (the cache key ``Benchmark.is_done`` checks), the transfer evaluations, and the
encoders that are still needed (the runs the embedding map draws, and sources of transfer
evaluations not done yet). The archive holds exactly those; checkpoints and other encoders stay
behind, so a 930-cell suite fits in a few megabytes.

The encoders go to a companion file beside it (``X.tar.gz`` -> ``X.encoders.tar.gz``): they are most
of the bytes and change far less often than the results (the embedding map's runs never do once
trained), so a version-controlled pair adds only the small results file to the history per sitting.

Both files are deterministic (sorted members, fixed owners and gzip header, file times kept), so
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
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from .errors import UserError
from .report_tables import ReportData, embedding_runs

if TYPE_CHECKING:
    from .benchmark import Benchmark

MANIFEST = "suite.json"


def encoders_archive(archive: str | Path) -> Path:
    """The companion file that holds the encoders of ``archive``."""
    archive = Path(archive)
    stem = archive.name[: -len(".tar.gz")] if archive.name.endswith(".tar.gz") else archive.name
    return archive.with_name(stem + ".encoders.tar.gz")


def _finished_files(bench: Benchmark) -> tuple[list[Path], list[Path]]:
    """Files under ``bench.out`` that the report and a later run need, relative to it: results, encoders."""
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
    encoder_files = []
    for run_dir in sorted(encoders):
        encoder = run_dir / "encoder"
        if encoder.is_dir():
            encoder_files += [f.relative_to(bench.out) for f in encoder.iterdir() if f.is_file()]
    return sorted(set(files)), sorted(encoder_files)


def save_results(bench: Benchmark, archive: str | Path) -> int:
    """Write the finished results of ``bench`` to ``archive`` (a .tar.gz) and the encoders they still need to
    its companion (``encoders_archive``); returns the number of cells saved."""
    archive = Path(archive)
    files, encoder_files = _finished_files(bench)
    cells = sum(f.name == "result.json" for f in files)
    companion = encoders_archive(archive)
    # The companion first: a results file never names encoders that are not there yet.
    if encoder_files:
        _write(companion, {"suite": bench.suite.name, "encoders_of": archive.name}, bench.out, encoder_files)
    else:
        companion.unlink(missing_ok=True)  # a stale companion would hand out encoders nothing needs
    manifest = {"suite": bench.suite.name, "cells": cells, "encoder_files": len(encoder_files)}
    _write(archive, manifest, bench.out, files)
    return cells


def _write(archive: Path, manifest: dict, root: Path, files: list[Path]) -> None:
    """A deterministic .tar.gz of ``files`` (relative to ``root``) after a ``suite.json`` manifest."""
    buf = io.BytesIO()
    with (
        gzip.GzipFile(fileobj=buf, mode="wb", mtime=0, filename="") as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        _add(tar, MANIFEST, json.dumps(manifest).encode(), mtime=0)
        for rel in files:
            path = root / rel
            _add(tar, rel.as_posix(), path.read_bytes(), mtime=int(path.stat().st_mtime))
    archive.parent.mkdir(parents=True, exist_ok=True)
    tmp = archive.with_name(archive.name + ".tmp")
    tmp.write_bytes(buf.getvalue())
    os.replace(tmp, archive)  # an archive is whole or the old one


def _add(tar: tarfile.TarFile, name: str, data: bytes, mtime: int) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), mtime, 0o644
    tar.addfile(info, io.BytesIO(data))


def load_results(bench: Benchmark, archive: str | Path) -> int:
    """Unpack ``archive`` (and its encoders' companion) into ``bench.out``; returns the number of cells taken.

    A cell that has a result here already keeps it (a local result is never replaced); an archived
    cell replaces a local one that is only begun. Transfer evaluations are added where missing.
    """
    archive = Path(archive)
    if not archive.is_file():
        raise UserError(f"results archive '{archive}' does not exist; check the path (--save-results writes one)")
    with _open(archive, bench) as (tar, members, manifest):
        known = {bench.cell_dir(c).relative_to(bench.out).as_posix() for c in bench.cells}
        archived = {_cell_of(n) for n in members if n.startswith("cells/") and n.endswith("/result.json")}
        # Cells this suite no longer has are left out; a local result is never replaced.
        taken = {c for c in archived & known if not (bench.out / c / "result.json").is_file()}
        companion = encoders_archive(archive)
        if manifest.get("encoder_files") and not companion.is_file():
            raise UserError(
                f"results archive '{archive}' keeps its {manifest['encoder_files']} encoder file(s) in '{companion}', "
                "which is missing; copy it beside the archive"
            )
        if companion.is_file():
            with _open(companion, bench) as (enc_tar, enc_members, _):
                _extract(enc_tar, enc_members, companion, bench, taken)
        _extract(tar, members, archive, bench, taken)
        for cell in sorted(taken):  # written last: a cell counts as done only once its config is in place
            tar.extract(members[f"{cell}/result.json"], bench.out, filter="data")
    return len(taken)


@contextmanager
def _open(archive: Path, bench: Benchmark) -> Iterator[tuple[tarfile.TarFile, dict[str, tarfile.TarInfo], dict]]:
    """An archive of ``bench``'s suite, its members and manifest; a damaged or foreign one is refused in one line."""
    try:
        with tarfile.open(archive, mode="r:gz") as tar:
            members = {m.name: m for m in tar.getmembers()}
            manifest = json.loads(tar.extractfile(members[MANIFEST]).read())  # type: ignore[union-attr]
            if manifest.get("suite") != bench.suite.name:
                raise UserError(
                    f"results archive '{archive}' holds suite '{manifest.get('suite')}', not "
                    f"'{bench.suite.name}'; load it into that suite"
                )
            yield tar, members, manifest
    except (tarfile.TarError, EOFError, OSError, KeyError, ValueError, gzip.BadGzipFile) as exc:
        raise UserError(
            f"cannot read results archive '{archive}' ({type(exc).__name__}: {exc}); it is damaged or not one "
            "that --save-results wrote: save it again from the machine that has the cells"
        ) from None


def _extract(
    tar: tarfile.TarFile, members: dict[str, tarfile.TarInfo], archive: Path, bench: Benchmark, taken: set[str]
) -> None:
    """Every member but the manifest and the results: files of ``taken`` cells, and transfer rows missing here."""
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
            continue  # the caller writes results last
        tar.extract(member, bench.out, filter="data")


def _cell_of(name: str) -> str:
    """``cells/<data set>/<objective>/<budget>/<seed>`` of a member under a cell's folder."""
    parts = PurePosixPath(name).parts
    return "/".join(parts[:5])
