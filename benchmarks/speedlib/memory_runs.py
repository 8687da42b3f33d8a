"""Peak memory of one measurement, each in a fresh child process (``speed.py --child``), and running other scripts.

The child's peak resident set size is ``VmHWM`` from ``/proc/self/status`` (the whole process: Python,
torch and the data included), next to an "idle" child that imports the same libraries, loads the data
and builds the model but takes no step. On a GPU the child also reports ``torch.cuda.max_memory_allocated``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from .bare_loop import BareLoop
from .bench_domains import DOMAINS, ROOT
from .trainer_run import run_trainer

SPEED = ROOT / "benchmarks" / "speed.py"  # the entry point that runs a child with --child

# Runs a script as __main__ and prints its own peak RSS at exit (for scripts this package does not own).
PEAK_WRAPPER = """
import runpy, sys
sys.argv = sys.argv[1:]
try:
    runpy.run_path(sys.argv[0], run_name="__main__")
finally:
    status = open("/proc/self/status").read().split("VmHWM:")[1].split()[0]
    print(f"PEAK_RSS_MIB {int(status) / 1024:.1f}")
"""


def run_process(cmd: list[str], env: dict[str, str] | None = None) -> tuple[str, float, int]:
    """Run ``cmd`` in the repository root; return (output, wall seconds, exit code)."""
    with tempfile.TemporaryFile() as out:
        start = time.perf_counter()
        code = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT, check=False).returncode
        wall = time.perf_counter() - start
        out.seek(0)
        text = out.read().decode(errors="replace")
    return text, wall, code


def own_peak_rss_mib() -> float:
    """This process's peak resident set size since it started its program (``VmHWM``), in MiB.

    Not ``ru_maxrss``: Linux carries the parent's RSS at fork into a child's ``ru_maxrss`` across
    ``exec``, so a child started from this (large) process would report at least the parent's size.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # not Linux: the best there is


def child_main(spec: dict) -> None:
    """One measurement in a fresh process; the parent reads this process's peak RSS."""
    import accelerate  # noqa: F401  (imported by every kind, so the "idle" baseline holds the same libraries)

    bench = DOMAINS[spec["domain"]]
    warmup, steps = spec["warmup"], spec["steps"]
    result: dict[str, Any] = {}
    if spec["kind"] == "trainer":
        with tempfile.TemporaryDirectory() as work:
            r = run_trainer(bench, spec["overrides"], warmup, steps, 1, Path(work))
        result["samples_per_s"] = r["rates"][0]
        result["first_step_s"] = r["first_step_s"]
    else:
        loop = BareLoop(bench.config(spec["overrides"]))
        fn = {"bare": loop.step, "pipeline": loop.views, "idle": None}[spec["kind"]]
        if fn is not None:
            for _ in range(warmup):
                fn()
            result["samples_per_s"] = loop.rate(fn, steps)
    result["peak_rss_mib"] = own_peak_rss_mib()
    if torch.cuda.is_available():
        result["cuda_peak_mib"] = torch.cuda.max_memory_allocated() / 2**20
    print("RESULT " + json.dumps(result))


class MemoryRuns:
    """Runs children and keeps their peak memory, printed next to the speed tables."""

    def __init__(self, args: argparse.Namespace, env: dict[str, str]) -> None:
        self.args, self.env = args, env
        self.peak: dict[str, float] = {}
        self.cuda: dict[str, float] = {}
        self.errors: dict[str, str] = {}

    def run(self, key: str, domain: str, kind: str, overrides: list[str], warmup: int = 2, steps: int = 5) -> None:
        if self.args.quick or self.args.no_memory:
            return
        spec = {"domain": domain, "kind": kind, "overrides": overrides, "warmup": warmup, "steps": steps}
        cmd = [sys.executable, str(SPEED), "--threads", str(self.args.threads)]
        text, _, code = run_process([*cmd, "--child", json.dumps(spec)], self.env)
        found = [line for line in text.splitlines() if line.startswith("RESULT ")]
        if code != 0 or not found:
            self.errors[key] = (text.strip().splitlines() or ["no output"])[-1][:200]
            return
        result = json.loads(found[-1][len("RESULT ") :])
        self.peak[key] = result["peak_rss_mib"]
        if "cuda_peak_mib" in result:
            self.cuda[key] = result["cuda_peak_mib"]

    def cell(self, key: str) -> str:
        if key in self.errors:
            return f"failed: {self.errors[key]}"
        if key not in self.peak:
            return "not measured"
        text = f"{self.peak[key]:.0f}"
        if key in self.cuda:
            text += f" (CUDA {self.cuda[key]:.0f})"
        return text

    def delta(self, key: str, base: str) -> str:
        if key in self.peak and base in self.peak:
            return f"{self.peak[key] - self.peak[base]:+.0f}"
        return "not measured"
