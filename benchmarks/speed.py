"""Training speed and memory per domain, with PASS/MISS verdicts against the performance targets (issue 7).

    python benchmarks/speed.py                # every domain, every section (long: see docs/performance.md)
    python benchmarks/speed.py --domains images --sections steps,pipeline,lightly
    python benchmarks/speed.py --quick        # smoke run (a few minutes); its numbers are not for the docs
    python benchmarks/speed.py --profile      # where one training step's time goes
    python benchmarks/speed.py --repeats 5 --steps 40 --threads 2 train.batch_size=64   # extra config overrides

What is measured, per domain (each domain supplies a function returning its real config):

a. trainer overhead: the real ``Trainer`` against a bare PyTorch loop (``speedlib/bare_loop.py``: the
   trainer's step on the same objective API, so the same domain data, views, encoder, heads, loss,
   batch size and optimizer; no Accelerate, no scheduler, no metrics, no checkpoints);
b. objective cost: SimSiam (2 views), GSG with 4 views and GSG with 2 views, in the bare loop;
c. the data pipeline alone (DataLoader + collate + ``make_views`` for the objective's views) against
   a full training step, for every built-in data set of the domain;
d. ``train.compile=true`` against the plain trainer (steady state; the warm-up is reported apart);
e. kNN evaluation on a 60,000-row bank with 10,000 queries (``benchmarks/knn_speed.py``) and the
   wall time of ``gsg --help``.
f. images only: lightly's SimSiam against ours on the same images and backbone
   (``benchmarks/lightly_compare.py``, run with a Python that has lightly; see its docstring).

How: speeds are samples per second over ``--steps`` steps after a warm-up, measured in this one
process with the repetitions interleaved (A, B, C, A, B, C, ...; the order reversed on odd
repetitions), and printed as medians with the range; ratios are medians of the per-repetition
ratios, because absolute times drift on a shared machine. The trainer is timed between two of its
optimizer steps through ``trainer.step_callbacks``, so building it and its final checkpoint are
outside the window (both are reported apart). Peak memory comes from separate short runs, each in a
fresh child process that runs only that one measurement: its peak resident set size (``VmHWM`` from
``/proc/self/status``: the whole process, Python, torch and the data included), next to an "idle"
child that imports the same libraries, loads the data and builds the model but takes no step. On a
GPU the child also reports ``torch.cuda.max_memory_allocated``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import torch
from speedlib.bench_domains import DOMAINS, DomainBench
from speedlib.external import LIGHTLY_VENV, section_knn_and_cli, section_lightly
from speedlib.memory_runs import MemoryRuns, child_main
from speedlib.profile_step import run_profile
from speedlib.sections import section_compile, section_pipeline, section_steps
from speedlib.timing import Verdicts

from gsg_multimodal.provenance import cpu_name, gpu_name

SECTIONS = ("steps", "pipeline", "compile", "knn", "lightly")


def machine_lines(args: argparse.Namespace) -> list[str]:
    return [
        f"date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"machine: {cpu_name()}, {os.cpu_count()} logical CPUs, {gpu_name()}; {platform.platform()}",
        f"python {platform.python_version()}, torch {torch.__version__}, "
        f"torch threads {torch.get_num_threads()} (torch.set_num_threads({args.threads}), "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')})",
        f"command: python benchmarks/speed.py {' '.join(sys.argv[1:])}",
    ]


def with_steps(args: argparse.Namespace, bench: DomainBench, given: int | None) -> argparse.Namespace:
    """``args`` with ``steps`` set for this domain: --steps if given, else 4 in --quick, else the domain's."""
    return argparse.Namespace(**{**vars(args), "steps": given or (4 if args.quick else bench.steps)})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("overrides", nargs="*", help="config overrides applied to every run, e.g. train.batch_size=64")
    parser.add_argument("--quick", action="store_true", help="smoke run (few steps, no memory)")
    parser.add_argument("--profile", action="store_true", help="only the per-part step profile")
    parser.add_argument("--repeats", type=int, default=None, help="interleaved repetitions (default 3; --quick 1)")
    parser.add_argument(
        "--steps",
        type=int,
        default=None,
        help="timed steps per repetition (default: the domain's, 30 or fewer; --quick 4)",
    )
    parser.add_argument("--warmup", type=int, default=None, help="untimed steps first (default 5; --quick 2)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (and OMP_NUM_THREADS of children)")
    parser.add_argument("--knn-repeats", type=int, default=2, help="knn_predict calls per size (best is reported)")
    parser.add_argument("--domains", default=",".join(DOMAINS), help=f"comma-separated, from: {', '.join(DOMAINS)}")
    parser.add_argument(
        "--sections",
        default=",".join(SECTIONS),
        help=f"comma-separated, from: {', '.join(SECTIONS)} (steps = a and b, pipeline = c, compile = d, knn = e)",
    )
    parser.add_argument("--no-memory", action="store_true", help="skip the child processes that measure memory")
    parser.add_argument(
        "--lightly-python", help=f"a Python that can import lightly (default: this one, or {LIGHTLY_VENV})"
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.repeats = args.repeats or (1 if args.quick else 3)
    steps_given = args.steps
    args.warmup = args.warmup if args.warmup is not None else (2 if args.quick else 5)
    args.warmup = max(args.warmup, 1)

    os.environ["OMP_NUM_THREADS"] = str(args.threads)  # for the children; this process sets torch's below
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    torch.set_num_threads(args.threads)
    if args.child:
        child_main(json.loads(args.child))
        return
    env = dict(os.environ)

    for line in machine_lines(args):
        print(line)
    selected = [d.strip() for d in args.domains.split(",") if d.strip()]
    unknown = [d for d in selected if d not in DOMAINS]
    if unknown:
        parser.error(f"unknown domain(s) {unknown}; choose from {', '.join(DOMAINS)}")
    sections = [d.strip() for d in args.sections.split(",") if d.strip()]
    if any(s not in SECTIONS for s in sections):
        parser.error(f"unknown section(s) in {sections}; choose from {', '.join(SECTIONS)}")
    started = time.perf_counter()
    if args.profile:
        for name in selected:
            run_profile(DOMAINS[name], with_steps(args, DOMAINS[name], steps_given))
        print(f"\ntotal wall time {time.perf_counter() - started:.0f} s")
        return

    verdict = Verdicts()
    mem = MemoryRuns(args, env)
    with tempfile.TemporaryDirectory(prefix="gsg-speed-") as tmp:
        work = Path(tmp)
        # A fresh compile cache, so the compile warm-up measured here is a cold one.
        os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(work / "inductor-cache"))
        env = mem.env = dict(os.environ)
        for name in selected:
            bench = DOMAINS[name]
            dargs = with_steps(args, bench, steps_given)
            if "steps" in sections:
                section_steps(bench, dargs, mem, work, verdict)
            if "pipeline" in sections:
                section_pipeline(bench, dargs, mem, verdict)
            if "compile" in sections:
                section_compile(bench, dargs, mem, work, verdict)
        if "knn" in sections:
            section_knn_and_cli(args, env, verdict)
        if "lightly" in sections and "images" in selected:
            section_lightly(args, env, verdict)
    print(f"\n## verdicts (total wall time {time.perf_counter() - started:.0f} s)\n")
    for line in verdict.lines:
        print(line)


if __name__ == "__main__":
    main()
