"""Where a number came from: the machine, the code (version, commit, uncommitted changes) and the libraries."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path

# The repository this package is imported from (an editable install or a checkout); a wheel has none.
REPO = Path(__file__).resolve().parents[1]


def cpu_name() -> str:
    """The CPU model as Linux names it in ``/proc/cpuinfo`` (``platform.processor()`` is often empty)."""
    cpuinfo = Path("/proc/cpuinfo")
    models = (
        [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines() if line.startswith("model name")]
        if cpuinfo.is_file()
        else []
    )
    return models[0] if models else (platform.processor() or platform.machine())


def gpu_name() -> str:
    import torch

    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"


def machine_summary() -> str:
    """CPU model, core count, GPU and torch version, in one line."""
    import torch

    return f"{cpu_name()}, {os.cpu_count()} CPU cores, {gpu_name()}, torch {torch.__version__}"


def git_state() -> tuple[str | None, bool | None]:
    """(short commit, uncommitted changes to tracked files?) of the checkout this package runs from, or Nones."""
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True, cwd=REPO
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True, cwd=REPO
        )
        return sha.stdout.strip(), bool(dirty.stdout.strip())
    except (OSError, subprocess.CalledProcessError):
        return None, None


def git_commit() -> str:
    """The short commit of the code that runs, with a note when the checkout has uncommitted changes."""
    sha, dirty = git_state()
    if sha is None:
        return "unknown (not a git checkout)"
    return sha + (" (with uncommitted changes)" if dirty else "")


def code_fingerprint() -> dict[str, str | bool | None]:
    """What a result records about the code that produced it: package version, git commit, dirty flag."""
    from . import __version__

    sha, dirty = git_state()
    return {"version": __version__, "commit": sha, "dirty": dirty}


def describe_code(code: dict | None) -> str:
    """One fingerprint in words, e.g. ``0.1.0 @ 67de170 (with uncommitted changes)``."""
    if not code:
        return "not recorded (cell run before fingerprints were kept)"
    if code.get("commit") is None:
        return f"{code.get('version')} (not a git checkout)"
    return f"{code.get('version')} @ {code['commit']}" + (" (with uncommitted changes)" if code.get("dirty") else "")
