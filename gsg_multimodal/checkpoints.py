"""Checkpoint folders: atomic writes, keep-last-K, and finding the newest intact one of this run.

A checkpoint is written under ``checkpoints/.tmp-step-N``; once every file is in place a
manifest of their sizes and SHA-256 digests is written, and the folder is renamed to
``checkpoints/step-N``. A crash mid-write therefore leaves the previous checkpoint untouched,
old checkpoints are pruned only after the new one exists, and a checkpoint damaged later
(truncated, altered, missing or unlisted files) fails its manifest and is skipped with a warning.

Every checkpoint carries the id of the run that wrote it (``run.json`` in the run directory), so
a resume never loads another run's weights. A complete copy is never deleted before another
complete copy of a later step exists; the leftovers of an interrupted write are either finished
(a sealed copy whose rename was cut off) or deleted (an unsealed one).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import uuid
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import UserError

STATE_FILE = "trainer_state.json"
MANIFEST = "manifest.json"
RUN_FILE = "run.json"
STATE_KEYS = ("step", "epoch", "batch_in_epoch", "domain", "info", "num_processes")
# Test hook: ``GSG_KILL_AT=<point>:<step>`` makes the process SIGKILL itself when it reaches that point
# at that step, so tests interrupt a run at an exact moment instead of racing it with timers.
KILL_ENV = "GSG_KILL_AT"
_STEP_DIR = re.compile(r"^step-(\d+)$")


class SimulatedKill(BaseException):
    """Raised instead of SIGKILL when ``SIMULATE_KILL`` is set: lets tests kill a run many times in one process."""


SIMULATE_KILL = False


def kill_point(point: str, step: int) -> None:
    """SIGKILL this process if ``GSG_KILL_AT`` names this point and step (a test hook; off by default).

    Points: ``step`` (after an optimizer step and its metric row), ``knn`` (after an epoch's kNN row),
    ``saving`` (checkpoint files written to the temp folder, no trainer state yet), ``sealed`` (manifest
    written, not yet renamed), ``between-renames`` (a re-saved step: old copy moved aside, new one not yet
    in place), ``published`` (renamed, not yet pruned), ``export`` (final checkpoint done, encoder not yet
    written), ``overwrite`` (old run renamed aside, not yet deleted; step 0).
    """
    wanted = os.environ.get(KILL_ENV)
    if wanted and wanted == f"{point}:{step}":
        if SIMULATE_KILL:
            raise SimulatedKill(f"{point}:{step}")
        os.kill(os.getpid(), signal.SIGKILL)


def checkpoint_root(run_dir: str | Path) -> Path:
    return Path(run_dir) / "checkpoints"


def temp_dir(run_dir: str | Path, step: int) -> Path:
    return checkpoint_root(run_dir) / f".tmp-step-{step:09d}"


def final_dir(run_dir: str | Path, step: int) -> Path:
    return checkpoint_root(run_dir) / f"step-{step:09d}"


def step_of(path: Path) -> int:
    match = _STEP_DIR.match(path.name.split("-", 1)[-1] if path.name.startswith(".") else path.name)
    return int(match.group(1)) if match else -1


# ---------------------------------------------------------------- run identity


def new_run_id() -> str:
    return uuid.uuid4().hex[:16]


def write_run_id(run_dir: Path, run_id: str) -> None:
    tmp = run_dir / (RUN_FILE + ".tmp")
    tmp.write_text(json.dumps({"run_id": run_id}) + "\n")
    os.replace(tmp, run_dir / RUN_FILE)


def read_run_id(run_dir: Path) -> str | None:
    """The run's id, or ``None`` for runs made before run ids existed."""
    try:
        value = json.loads((run_dir / RUN_FILE).read_text()).get("run_id")
    except (OSError, json.JSONDecodeError, AttributeError):
        return None
    return value if isinstance(value, str) else None


def move_aside(run_dir: Path) -> Path:
    """Rename a whole run folder out of the way in one step (``--overwrite``); returns where it went."""
    aside = run_dir.with_name(f".{run_dir.name}.replaced-{new_run_id()[:8]}")
    os.replace(run_dir, aside)
    return aside


# ---------------------------------------------------------------- writing


def publish(tmp: Path, final: Path, keep: int) -> None:
    """Seal a finished temp checkpoint with its manifest, rename it into place, then prune old ones."""
    step = step_of(final)
    write_manifest(tmp)
    kill_point("sealed", step)
    if final.exists():  # the same step saved again: move the old copy aside before replacing it
        trash = final.with_name(f".old-{final.name}")
        shutil.rmtree(trash, ignore_errors=True)
        os.replace(final, trash)
        kill_point("between-renames", step)
        os.replace(tmp, final)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        os.replace(tmp, final)
    kill_point("published", step)
    prune(final.parent, keep)


def prune(root: Path, keep: int) -> None:
    """Delete all but the ``keep`` newest published checkpoints (by step number)."""
    done = complete_checkpoints(root)
    for old in done[: max(len(done) - max(keep, 1), 0)]:
        shutil.rmtree(old, ignore_errors=True)


def recover_partial(run_dir: str | Path, keep: int | None = None) -> list[str]:
    """Tidy the leftovers of interrupted saves, never losing a complete copy; returns what was done.

    - ``.old-step-N`` without ``step-N`` (killed between the two renames of a re-save): renamed back.
    - ``.tmp-step-N`` that is sealed (its manifest verifies) and has no ``step-N``: renamed into place.
    - everything else (unsealed temp folders, copies that also exist published): deleted.

    With ``keep``, the pruning that the interrupted save would have done is done too.
    """
    root = checkpoint_root(run_dir)
    notes: list[str] = []
    if not root.is_dir():
        return notes
    for leftover in sorted(root.glob(".*-step-*"), key=lambda p: (not p.name.startswith(".old-"), p.name)):
        if not leftover.is_dir():
            leftover.unlink(missing_ok=True)
            continue
        final = root / leftover.name.split("-", 1)[1]
        if not final.exists() and _STEP_DIR.match(final.name) and verify(leftover) is None:
            os.replace(leftover, final)
            notes.append(f"completed the interrupted save of {final.name}")
        else:
            shutil.rmtree(leftover, ignore_errors=True)
    if notes and keep is not None:
        prune(root, keep)
    return notes


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.name != MANIFEST)


def write_manifest(folder: Path) -> None:
    entries = {str(p.relative_to(folder)): {"size": p.stat().st_size, "sha256": _digest(p)} for p in _files(folder)}
    tmp = folder / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(entries, indent=1))
    os.replace(tmp, folder / MANIFEST)


def verify(folder: Path) -> str | None:
    """``None`` when the checkpoint is complete and every file matches its manifest, else what is wrong."""
    try:
        entries = json.loads((folder / MANIFEST).read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return "no readable manifest"
    if not isinstance(entries, dict) or not entries:
        return "its manifest is empty or malformed"
    for name, meta in entries.items():
        if not (isinstance(meta, dict) and isinstance(meta.get("size"), int) and isinstance(meta.get("sha256"), str)):
            return f"its manifest entry for {name} is malformed"
        path = folder / name
        if not path.is_file():
            return f"{name} is missing"
        if path.stat().st_size != meta["size"]:
            return f"{name} is truncated or resized"
        if _digest(path) != meta["sha256"]:
            return f"{name} does not match its checksum"
    unlisted = [str(p.relative_to(folder)) for p in _files(folder) if str(p.relative_to(folder)) not in entries]
    if unlisted:
        return f"{unlisted[0]} is not in its manifest"
    state = read_state(folder)
    if state is None:
        return f"its {STATE_FILE} is unreadable or incomplete"
    required = [STATE_FILE, *(f"generators_{r}.pt" for r in range(state["num_processes"]))]
    missing = [name for name in required if name not in entries]
    if not any(name.startswith("model") for name in entries):
        missing.append("model weights")
    if missing:
        return f"its manifest does not list {', '.join(missing)} (an incomplete checkpoint)"
    return None


def read_state(path: Path) -> dict[str, Any] | None:
    try:
        state = json.loads((path / STATE_FILE).read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return None
    if not isinstance(state, dict) or any(k not in state for k in STATE_KEYS):
        return None
    if not all(isinstance(state[k], int) and state[k] >= 0 for k in ("step", "epoch", "batch_in_epoch")):
        return None
    if not isinstance(state["num_processes"], int) or state["num_processes"] < 1:
        return None
    return state


def complete_checkpoints(root: Path) -> list[Path]:
    """Published checkpoints, oldest (lowest step) first."""
    if not root.is_dir():
        return []
    return sorted((p for p in root.iterdir() if p.is_dir() and _STEP_DIR.match(p.name)), key=step_of)


# ---------------------------------------------------------------- choosing where to resume


@dataclass
class ResumePoint:
    path: Path | None  # None: the run has no checkpoint at all
    skipped: list[str] = field(default_factory=list)  # "step-N: why", newest first


def find_resume_point(run_dir: str | Path, run_id: str | None, num_processes: int) -> ResumePoint:
    """The newest checkpoint of this run that is intact and usable by this launch.

    Damaged checkpoints are skipped with a warning naming each (an older intact one is used). A
    checkpoint of another run, or a ``checkpoints`` path that is not a folder, is refused; so is a
    run whose checkpoints are all damaged, or that was made by a different number of processes:
    never a silent start from the beginning.
    """
    root = checkpoint_root(run_dir)
    if root.exists() and not root.is_dir():
        raise UserError(
            f"--resume: '{root}' is not a folder, so the run's checkpoints are gone or were replaced; "
            "move it away and pass --overwrite to start the run again"
        )
    found = complete_checkpoints(root)
    result = ResumePoint(None)
    usable: list[tuple[Path, dict]] = []
    for path in reversed(found):
        problem = verify(path)
        if problem is not None:
            result.skipped.append(f"{path.name}: {problem}")
            continue
        usable.append((path, read_state(path) or {}))
    for path, state in usable:
        if state.get("run_id") != run_id:
            raise UserError(
                f"--resume: checkpoint '{path}' belongs to another run (id {state.get('run_id')}, this run is "
                f"{run_id}); move it out of '{root}', or pass --overwrite to start again"
            )
    for path, state in usable:
        if state["num_processes"] != num_processes:
            raise UserError(
                f"--resume: checkpoint '{path}' was made by {state['num_processes']} process(es), this launch has "
                f"{num_processes}; the step count and random streams depend on it. Resume with the same launch "
                f"(e.g. torchrun --nproc_per_node {state['num_processes']} ...)"
            )
    for note in result.skipped:
        warnings.warn(f"checkpoint '{root / note.split(':')[0]}' is damaged ({note.split(': ', 1)[1]}); "
                      "falling back to an older one", stacklevel=2)  # fmt: skip
    if usable:
        result.path = usable[0][0]
        return result
    if found:
        raise UserError(
            f"--resume: no intact checkpoint in '{root}' ({'; '.join(result.skipped)}); nothing was changed. "
            "Restore the files, or pass --overwrite to start the run again"
        )
    return result


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    """The newest checkpoint that passes its manifest (any run, any launch); damaged ones are skipped."""
    for path in reversed(complete_checkpoints(checkpoint_root(run_dir))):
        problem = verify(path)
        if problem is None:
            return path
        warnings.warn(f"checkpoint '{path}' is damaged ({problem}); falling back to an older one", stacklevel=2)
    return None
