"""Checkpoint folders: atomic writes, keep-last-K, and finding the newest intact one.

A checkpoint is written under ``checkpoints/.tmp-step-N``; once every file is in place a
manifest of their sizes and SHA-256 digests is written, and the folder is renamed to
``checkpoints/step-N``. A crash mid-write therefore leaves the previous checkpoint untouched,
old checkpoints are pruned only after the new one exists, and a checkpoint damaged later
(truncated or altered files) fails its manifest and is skipped with a warning.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import warnings
from pathlib import Path
from typing import Any

STATE_FILE = "trainer_state.json"
MANIFEST = "manifest.json"


def checkpoint_root(run_dir: str | Path) -> Path:
    return Path(run_dir) / "checkpoints"


def temp_dir(run_dir: str | Path, step: int) -> Path:
    return checkpoint_root(run_dir) / f".tmp-step-{step:09d}"


def final_dir(run_dir: str | Path, step: int) -> Path:
    return checkpoint_root(run_dir) / f"step-{step:09d}"


def publish(tmp: Path, final: Path, keep: int) -> None:
    """Seal a finished temp checkpoint with its manifest, rename it into place, then prune old ones."""
    write_manifest(tmp)
    if final.exists():  # the same step saved again: move the old copy aside before replacing it
        trash = final.with_name(f".old-{final.name}")
        shutil.rmtree(trash, ignore_errors=True)
        os.replace(final, trash)
        os.replace(tmp, final)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        os.replace(tmp, final)
    done = complete_checkpoints(final.parent)
    for old in done[: max(len(done) - max(keep, 1), 0)]:
        shutil.rmtree(old, ignore_errors=True)


def remove_partial(run_dir: str | Path) -> None:
    """Delete leftovers of interrupted saves (temp folders); published checkpoints are kept."""
    root = checkpoint_root(run_dir)
    for leftover in root.glob(".*-step-*") if root.is_dir() else []:
        shutil.rmtree(leftover, ignore_errors=True)


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_manifest(folder: Path) -> None:
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.name != MANIFEST)
    entries = {str(p.relative_to(folder)): {"size": p.stat().st_size, "sha256": _digest(p)} for p in files}
    tmp = folder / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(entries, indent=1))
    os.replace(tmp, folder / MANIFEST)


def verify(folder: Path) -> str | None:
    """``None`` when every file of the checkpoint matches its manifest, else what is wrong."""
    try:
        entries = json.loads((folder / MANIFEST).read_text())
    except (OSError, json.JSONDecodeError):
        return "no readable manifest"
    for name, meta in entries.items():
        path = folder / name
        if not path.is_file():
            return f"{name} is missing"
        if path.stat().st_size != meta["size"]:
            return f"{name} is truncated or resized"
        if _digest(path) != meta["sha256"]:
            return f"{name} does not match its checksum"
    return None


def read_state(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads((path / STATE_FILE).read_text())
    except (OSError, json.JSONDecodeError):
        return None


def complete_checkpoints(root: Path) -> list[Path]:
    """Published checkpoints, oldest first."""
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith("step-"))


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    """The newest checkpoint that passes its manifest; damaged ones are skipped with a warning."""
    for path in reversed(complete_checkpoints(checkpoint_root(run_dir))):
        problem = verify(path) or (None if read_state(path) is not None else "its trainer state is unreadable")
        if problem is None:
            return path
        warnings.warn(f"checkpoint '{path}' is damaged ({problem}); falling back to an older one", stacklevel=2)
    return None
