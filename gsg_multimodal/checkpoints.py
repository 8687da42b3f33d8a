"""Checkpoint folders: atomic writes, keep-last-K, and finding the newest complete one.

A checkpoint is written under ``checkpoints/.tmp-step-N`` and renamed to
``checkpoints/step-N`` only once every file is in place, so a crash mid-write leaves the
previous checkpoint untouched. Old checkpoints are pruned only after the new one exists.
"""

from __future__ import annotations

import json
import os
import shutil
import warnings
from pathlib import Path
from typing import Any

STATE_FILE = "trainer_state.json"


def checkpoint_root(run_dir: str | Path) -> Path:
    return Path(run_dir) / "checkpoints"


def temp_dir(run_dir: str | Path, step: int) -> Path:
    return checkpoint_root(run_dir) / f".tmp-step-{step:09d}"


def final_dir(run_dir: str | Path, step: int) -> Path:
    return checkpoint_root(run_dir) / f"step-{step:09d}"


def publish(tmp: Path, final: Path, keep: int) -> None:
    """Rename a finished temp checkpoint into place, then prune all but the newest ``keep``."""
    if final.exists():  # the same step saved again (e.g. end of run right after a periodic save)
        shutil.rmtree(final)
    os.replace(tmp, final)
    done = complete_checkpoints(final.parent)
    for old in done[: max(len(done) - max(keep, 1), 0)]:
        shutil.rmtree(old, ignore_errors=True)


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
    """The newest checkpoint whose state file reads back; damaged ones are skipped with a warning."""
    for path in reversed(complete_checkpoints(checkpoint_root(run_dir))):
        if read_state(path) is not None and (path / "model.safetensors").is_file():
            return path
        warnings.warn(f"checkpoint '{path}' is incomplete or damaged; falling back to an older one", stacklevel=2)
    return None
