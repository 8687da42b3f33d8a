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


def git_commit() -> str:
    """The short commit of the code that runs, with a note when the checkout has uncommitted changes."""
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True, cwd=REPO
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True, cwd=REPO
        )
        return sha.stdout.strip() + (" (with uncommitted changes)" if dirty.stdout.strip() else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
