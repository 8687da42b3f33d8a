"""Sections (e) and (f) of ``speed.py``, which run other scripts: kNN and CLI start-up, and lightly's SimSiam."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import torch

from .bench_domains import ROOT
from .memory_runs import PEAK_WRAPPER, run_process
from .timing import Verdicts, median, spread, table

LIGHTLY_VENV = Path("/tmp/lightly-venv/bin/python")  # where lightly_compare.py's docstring installs it


def section_knn_and_cli(args: argparse.Namespace, env: dict[str, str], verdict: Verdicts) -> None:
    """(e) kNN evaluation at 60,000 x 10,000 (benchmarks/knn_speed.py) and the wall time of ``gsg --help``."""
    print("\n## (e) kNN evaluation and CLI start-up\n")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    rows = []
    knn = [sys.executable, "-c", PEAK_WRAPPER, str(ROOT / "benchmarks" / "knn_speed.py")]
    knn += ["--threads", str(args.threads), "--device", device]
    if args.quick:
        runs = [("6,000 x 1,000 x 512 (--quick size)", ["--bank", "6000", "--queries", "1000", "--repeats", "1"])]
    else:
        runs = [
            ("60,000 x 10,000 x 512 (knn_speed.py default)", ["--repeats", str(args.knn_repeats)]),
            ("60,000 x 10,000 x 128 (this encoder's width)", ["--dim", "128", "--repeats", str(args.knn_repeats)]),
        ]
    seconds = {}
    for label, extra in runs:
        text, wall, code = run_process([*knn, *extra], env)
        found = re.findall(r": ([0-9.]+) s$", text, flags=re.MULTILINE)
        peak = re.findall(r"^PEAK_RSS_MIB ([0-9.]+)$", text, flags=re.MULTILINE)
        if code != 0 or not found:
            rows.append([label, f"failed: {text.strip().splitlines()[-1:]}", "", ""])
            continue
        seconds[label] = float(found[-1])
        rows.append([label, f"{seconds[label]:.2f}", f"{wall:.1f}", peak[-1] if peak else "not measured"])
    print(
        f"knn_predict, k=20, chunk 4096, {args.threads} threads, {device}; time is knn_speed.py's own "
        f"(best of {1 if args.quick else args.knn_repeats} calls after a small warm-up call); "
        "process wall time includes start-up and making the random features.\n"
    )
    print(table(["bank x queries x dim", "knn_predict s", "process wall s", "process peak RSS MiB"], rows))
    gsg = Path(sys.executable).with_name("gsg")
    cmd = [str(gsg), "--help"] if gsg.exists() else [sys.executable, "-m", "gsg_multimodal", "--help"]
    n = 3 if args.quick else 7
    walls = []
    for _ in range(n):
        _, wall, code = run_process(cmd, env)
        walls.append(wall)
    shown = " ".join(Path(c).name if i == 0 else c for i, c in enumerate(cmd))
    print(f"\n`{shown}`: {spread(walls, '{:.3f}')} s wall, median (min-max) of {n} runs, exit code {code}.\n")
    full = "60,000 x 10,000 x 512 (knn_speed.py default)"
    if full in seconds:
        verdict(seconds[full] < 10, f"kNN 60,000 x 10,000 (512-d) = {seconds[full]:.2f} s (target < 10 s)")
    else:
        verdict(None, "kNN 60,000 x 10,000: not measured at full size (--quick)" if args.quick else "kNN failed")
    verdict(median(walls) < 1 and code == 0, f"gsg --help = {median(walls):.3f} s (target < 1 s)")


def lightly_python(args: argparse.Namespace) -> str | None:
    """An interpreter that can import lightly (a benchmark-only dependency), or None."""
    candidates = [args.lightly_python] if args.lightly_python else [sys.executable, str(LIGHTLY_VENV)]
    for py in candidates:
        if Path(py).exists() and run_process([py, "-c", "import lightly"])[2] == 0:
            return py
    return None


def section_lightly(args: argparse.Namespace, env: dict[str, str], verdict: Verdicts) -> None:
    """(f) lightly's SimSiam against ours on the same images and backbone (``benchmarks/lightly_compare.py``)."""
    print("\n## lightly's SimSiam against ours (images)\n")
    py = lightly_python(args)
    if py is None:
        print("lightly is not installed; see benchmarks/lightly_compare.py for the one-line setup, or --lightly-python")
        verdict(None, "lightly comparison: not measured (lightly not installed)")
        return
    steps, repeats = (2, 1) if args.quick else (5, max(args.repeats, 3))
    cmd = [py, str(ROOT / "benchmarks" / "lightly_compare.py"), "--threads", str(args.threads)]
    cmd += ["--steps", str(steps), "--repeats", str(repeats)] + (["--images", "1024"] if args.quick else [])
    text, wall, code = run_process(cmd, env)
    found = re.findall(r"ours SimSiam / lightly SimSiam: ([0-9.]+)x", text)
    print("```\n" + text.strip() + "\n```")
    print(f"\n({wall:.0f} s wall, {args.threads} torch threads)\n")
    if code != 0 or not found:
        verdict(None, "lightly comparison: failed (output above)")
        return
    ratio = float(found[-1])
    verdict(ratio >= 1.0, f"ours SimSiam / lightly SimSiam (images/s, same model) = {ratio:.2f}x (target >= 1)")
