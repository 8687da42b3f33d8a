"""Training speed and memory per domain, with PASS/MISS verdicts against the performance targets (issue 7).

    python benchmarks/speed.py                # every domain, every section (long: see docs/performance.md)
    python benchmarks/speed.py --domains images --sections steps,pipeline,lightly
    python benchmarks/speed.py --quick        # smoke run (a few minutes); its numbers are not for the docs
    python benchmarks/speed.py --profile      # where one training step's time goes
    python benchmarks/speed.py --repeats 5 --steps 40 --threads 2 train.batch_size=64   # extra config overrides

What is measured, per domain (each domain supplies a function returning its real config):

a. trainer overhead: the real ``Trainer`` against a bare PyTorch loop (same domain data, views and
   encoder, same ``SiameseNetwork`` heads and ``SiameseLoss``, same batch size and optimizer;
   no Accelerate, no scheduler, no metrics, no checkpoints);
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
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
BIG = 10**9

# Applied to every run: no progress bar, no trackers, no online kNN, a checkpoint only when the run stops.
BENCH_OVERRIDES = [
    "train.progress_bar=false",
    "train.trackers=[none]",
    "monitor.knn_every=0",
    f"train.checkpoint_every={BIG}",
]

# ---------------------------------------------------------------- domains


@dataclass
class DomainBench:
    """What the benchmark needs from a domain: its real config, and the data sets for the pipeline test."""

    name: str
    config: Callable[[list[str]], Any]  # overrides -> RunConfig
    datasets: Callable[[], dict[str, list[str]]]  # label -> overrides selecting that data set
    describe: str  # one line for the report
    shape: Callable[[dict], str]  # data.info -> the raw input's shape, for the pipeline table
    steps: int = 30  # timed steps per repetition unless --steps says otherwise (fewer where a step takes seconds)


def domain_config(name: str) -> Callable[[list[str]], Any]:
    """Overrides -> the RunConfig of ``configs/<name>`` with the benchmark's fixed overrides."""

    def build(overrides: list[str]) -> Any:
        from gsg_multimodal.config import load_config

        return load_config(ROOT / "configs" / name, [*BENCH_OVERRIDES, *overrides])

    return build


def timeseries_datasets() -> dict[str, list[str]]:
    from domains.timeseries.data import BUILTIN_DATASETS

    # Every built-in set loads in well under 2 s. The encoder, heads and views.length (192) stay those of
    # the ACSF1 config, so the step costs about the same everywhere and the pipeline's cost varies.
    return {name: [f"data.name={name}"] for name in BUILTIN_DATASETS}


def timeseries_shape(info: dict) -> str:
    lo, hi = info.get("min_length"), info.get("max_length")
    return f"{info.get('channels', '?')} x {hi if lo == hi else f'{lo}-{hi}'}"


def image_datasets() -> dict[str, list[str]]:
    # Both built-in sets at the Fashion-MNIST config's 10,000-image cap (mnist5k has 4,000 training images).
    return {"fashion_mnist": ["data.name=fashion_mnist"], "mnist5k": ["data.name=mnist5k"]}


def text_datasets() -> dict[str, list[str]]:
    # The debates set has three parties as labels, not Rotten Tomatoes' fresh/rotten filter.
    return {
        "rotten_tomatoes": ["data.name=rotten_tomatoes"],
        "debates_2016": ["data.name=debates_2016", "data.labels=null"],
    }


# The waveform variant of the drums data, as the cpu suite runs it (a 1-D dilated CNN on 4 kHz audio).
DRUMS_WAVE = [
    "encoder.name=dilated_cnn", "encoder.hidden=32", "encoder.depth=6", "encoder.out_dim=128",
    "data.sample_rate=4000", "data.n_mels=32", "data.f_max=1900", "views.crop_seconds=0.5",
]  # fmt: skip


def audio_datasets() -> dict[str, list[str]]:
    sets = {"drums (log-mel CNN)": ["data.name=drums"], "drums (4 kHz waveform, dilated CNN)": DRUMS_WAVE}
    # The spoken words are synthesised by a script, not shipped: measured when they have been made.
    if (ROOT / "data" / "spoken_words").is_dir():
        sets["spoken_words (synthetic, 16 kHz log-mel)"] = ["data.name=null", "data.path=data/spoken_words"]
    return sets


DOMAINS: dict[str, DomainBench] = {
    "timeseries": DomainBench(
        "timeseries",
        domain_config("acsf1_gsg.yaml"),
        timeseries_datasets,
        "configs/acsf1_gsg.yaml (ACSF1, dilated CNN hidden 32 depth 6, 128-d features, views of 192 steps, "
        "projector 256-256, predictor 64, batch 32, SGD)",
        timeseries_shape,
    ),
    "images": DomainBench(
        "images",
        domain_config("fmnist_gsg.yaml"),
        image_datasets,
        "configs/fmnist_gsg.yaml (Fashion-MNIST, first 10,000 training images, small CNN width 16 with "
        "channels_last, 128-d features, small_gray views, batch 256, SGD)",
        lambda info: f"{info['channels']} x {info['height']} x {info['width']}",
    ),
    "text": DomainBench(
        "text",
        domain_config("rt_gsg.yaml"),
        text_datasets,
        "configs/rt_gsg.yaml (Rotten Tomatoes, MiniLM-L6 fine-tuned, mean pooling, views of at most 40 tokens, "
        "projector 512-512, predictor 128, batch 32, AdamW)",
        lambda info: "text",  # the views' token limit is in the config line above
        steps=8,  # a MiniLM GSG step takes seconds on 2 cores
    ),
    "audio": DomainBench(
        "audio",
        domain_config("drums_gsg.yaml"),
        audio_datasets,
        "configs/drums_gsg.yaml (Hydrogen drum one-shots, 16 kHz log-mel, BYOL-A CNN, batch 64, SGD)",
        lambda info: f"clips at {int(info['sample_rate'])} Hz",
        steps=10,  # the waveform encoder's step takes seconds on 2 cores
    ),
}

LIGHTLY_VENV = Path("/tmp/lightly-venv/bin/python")  # where lightly_compare.py's docstring installs it

SECTIONS = ("steps", "pipeline", "compile", "knn", "lightly")

# ---------------------------------------------------------------- helpers


def variant_overrides(name: str) -> list[str]:
    from gsg_multimodal.cli import VARIANTS

    return list(VARIANTS[name])


def run_device(cfg: Any) -> torch.device:
    # What Accelerate picks: the GPU when there is one and train.cpu is off.
    return torch.device("cuda" if torch.cuda.is_available() and not cfg.train.cpu else "cpu")


def sync(device: torch.device | None = None) -> None:
    if torch.cuda.is_available() and (device is None or device.type == "cuda"):
        torch.cuda.synchronize()


def to_device(obj: Any, device: torch.device) -> Any:
    if torch.is_tensor(obj):
        return obj.to(device, non_blocking=True)
    if isinstance(obj, dict):
        return {k: to_device(v, device) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_device(v, device) for v in obj)
    return obj


def reset_accelerate() -> None:
    """Forget Accelerate's process-wide state, so the next Trainer starts as in a new process."""
    from accelerate.state import AcceleratorState, PartialState

    AcceleratorState._reset_state(reset_partial_state=True)
    PartialState._reset_state()


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def spread(xs: list[float], fmt: str = "{:.0f}") -> str:
    med = fmt.format(median(xs))
    return med if len(xs) < 2 else f"{med} ({fmt.format(min(xs))}-{fmt.format(max(xs))})"


def table(headers: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "| " + " | ".join("---" for _ in headers) + " |"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


VERDICTS: list[str] = []


def verdict(ok: bool | None, what: str) -> None:
    word = "n/a " if ok is None else ("PASS" if ok else "MISS")
    line = f"{word}  {what}"
    VERDICTS.append(line)
    print(line)


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


# Runs a script as __main__ and prints its own peak RSS at exit (for scripts this file does not own).
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
    """Run ``cmd``; return (output, wall seconds, exit code)."""
    with tempfile.TemporaryFile() as out:
        start = time.perf_counter()
        code = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT, check=False).returncode
        wall = time.perf_counter() - start
        out.seek(0)
        text = out.read().decode(errors="replace")
    return text, wall, code


# ---------------------------------------------------------------- the bare loop


class BareLoop:
    """Plain PyTorch around the same pieces the trainer uses, and nothing else."""

    def __init__(self, cfg: Any) -> None:
        from torch.utils.data import DataLoader

        from gsg_multimodal.model import SiameseNetwork, build_optimizer, parameter_groups
        from gsg_multimodal.losses import SiameseLoss
        from gsg_multimodal.trainer import build_domain

        self.cfg = cfg
        self.device = run_device(cfg)
        torch.manual_seed(cfg.seed)
        self.domain = build_domain(cfg)
        self.data = self.domain.load_data()
        self.model = SiameseNetwork(self.domain.build_encoder(self.data.info), cfg.model).to(self.device).train()
        groups = parameter_groups(self.model, cfg.model.fixed_predictor_lr)
        self.optimizer = build_optimizer(groups, cfg.optim, self.device)
        self.objective = SiameseLoss(
            gsg=cfg.objective.gsg, gsg_views=cfg.objective.gsg_views, derangement=cfg.objective.pairing == "derangement"
        )
        self.batch_size = cfg.train.batch_size
        self.loader = DataLoader(
            self.data.pretrain,
            batch_size=cfg.train.batch_size,
            shuffle=True,
            drop_last=True,
            collate_fn=self.domain.collate,
            num_workers=cfg.train.num_workers,
            pin_memory=self.device.type == "cuda",
            persistent_workers=cfg.train.num_workers > 0,
            generator=torch.Generator().manual_seed(cfg.seed),
        )
        self.aug_rng = torch.Generator(device=self.device).manual_seed(cfg.seed + 1)
        self.pair_rng = torch.Generator(device=self.device).manual_seed(cfg.seed + 2)
        self.batches = self._batches()

    def _batches(self) -> Iterator[Any]:
        while True:
            for batch in self.loader:
                yield to_device(batch, self.device)

    def views(self) -> list[Any]:
        """The data pipeline alone: next batch (DataLoader + collate), then the objective's views."""
        return self.domain.make_views(next(self.batches), self.objective.n_views, self.aug_rng)

    def step(self) -> None:
        views = self.views()
        z, p = self.model(views)
        out = self.objective(p, z, self.pair_rng)
        out.loss.backward()
        if self.cfg.optim.grad_clip:  # part of the recipe (the text configs clip), so the trainer does it too
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.optim.grad_clip)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)

    def rate(self, fn: Callable[[], Any], n: int) -> float:
        """Samples per second over ``n`` calls of ``fn``."""
        sync(self.device)
        start = time.perf_counter()
        for _ in range(n):
            fn()
        sync(self.device)
        return n * self.batch_size / (time.perf_counter() - start)


# ---------------------------------------------------------------- the trainer


def run_trainer(bench: DomainBench, overrides: list[str], warmup: int, steps: int, windows: int, work: Path) -> dict:
    """Run the real Trainer for ``warmup + windows * steps`` timed steps (plus one); samples/s per window."""
    from gsg_multimodal.trainer import Trainer

    total = warmup + windows * steps
    out = work / f"run-{time.monotonic_ns()}"
    # One step more than the last mark: the final log row and checkpoint fall outside every window.
    cfg = bench.config([*overrides, f"output_dir={out}", f"train.max_steps={total + 1}", f"train.epochs={BIG}"])
    marks: dict[int, float] = {}
    sync_at = {1, warmup, *(warmup + steps * k for k in range(1, windows + 1))}
    created = time.perf_counter()
    trainer = Trainer(cfg)
    device = trainer.accelerator.device

    def stamp(tr: Any) -> None:
        if tr.step in sync_at:
            sync(device)
            marks[tr.step] = time.perf_counter()

    trainer.step_callbacks.append(stamp)
    try:
        started = time.perf_counter()
        trainer.train()
        ended = time.perf_counter()
    finally:
        trainer.close()
        reset_accelerate()
    bs = cfg.train.batch_size * cfg.train.grad_accum
    bounds = [warmup + steps * k for k in range(windows + 1)]
    return {
        "rates": [steps * bs / (marks[b] - marks[a]) for a, b in zip(bounds, bounds[1:], strict=False)],
        "construct_s": started - created,  # Trainer(cfg): Accelerator, domain, data
        "first_step_s": marks[1] - started,  # run files, prepare(), the first step (and compilation)
        "warmup_steps_s": marks[warmup] - marks[1],  # steps 2..warmup
        "tail_s": ended - marks[total],  # one more step, the last log row, the final checkpoint
        "batch_size": bs,
    }


# ---------------------------------------------------------------- child processes (memory)


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
        cmd = [sys.executable, str(Path(__file__).resolve()), "--threads", str(self.args.threads)]
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


# ---------------------------------------------------------------- sections


def section_steps(bench: DomainBench, args: argparse.Namespace, mem: MemoryRuns, work: Path) -> None:
    """(a) trainer vs bare loop and (b) objective cost, interleaved in one set of repetitions."""
    cfg0 = bench.config(args.overrides)
    print(f"\n## {bench.name}: (a) trainer overhead and (b) objective cost\n")
    print(f"Config: {bench.describe}; overrides: {args.overrides or 'none'}; device {run_device(cfg0)}.")
    names = ["gsg", "simsiam", "gsg2"]
    loops = {n: BareLoop(bench.config([*variant_overrides(n), *args.overrides])) for n in names}
    for loop in loops.values():
        for _ in range(args.warmup):
            loop.step()
    rates: dict[str, list[float]] = defaultdict(list)
    extras: list[dict] = []
    jobs = ["bare gsg", "trainer gsg", "bare simsiam", "bare gsg2"]
    for rep in range(args.repeats):
        for key in jobs if rep % 2 == 0 else reversed(jobs):
            kind, variant = key.split()
            if kind == "trainer":
                r = run_trainer(bench, [*variant_overrides(variant), *args.overrides], args.warmup, args.steps, 1, work)
                rates[key].append(r["rates"][0])
                extras.append(r)
            else:
                rates[key].append(loops[variant].rate(loops[variant].step, args.steps))
    bs = cfg0.train.batch_size
    for key in jobs:
        kind, variant = key.split()
        mem.run(
            key, bench.name, "bare" if kind == "bare" else "trainer", [*variant_overrides(variant), *args.overrides]
        )
    mem.run("idle", bench.name, "idle", [*variant_overrides("gsg"), *args.overrides])
    labels = {
        "bare gsg": "bare loop, SimSiam+GSG 4 views",
        "trainer gsg": "Trainer, SimSiam+GSG 4 views",
        "bare simsiam": "bare loop, SimSiam 2 views",
        "bare gsg2": "bare loop, SimSiam+GSG 2 views",
    }
    rows = [
        [
            labels[key],
            spread(rates[key]),
            f"{1000 * bs / median(rates[key]):.0f}",
            mem.cell(key),
            mem.delta(key, "idle"),
        ]
        for key in jobs
    ]
    rows.append(["idle child (imports, data, model; no step)", "-", "-", mem.cell("idle"), "+0"])
    print(
        f"\nSpeed: median (min-max) over {args.repeats} repetitions of {args.steps} steps after {args.warmup} "
        f"warm-up steps, batch {bs}. Memory: peak RSS of a fresh child process running 2 + 5 steps of only that.\n"
    )
    print(table(["run", "samples/s", "ms/step", "peak RSS MiB", "vs idle MiB"], rows))
    per_rep = {
        "trainer / bare (time per step, GSG 4 views)": [
            b / t for b, t in zip(rates["bare gsg"], rates["trainer gsg"], strict=True)
        ],
        "GSG 4 views / SimSiam (time per step)": [
            s / g for s, g in zip(rates["bare simsiam"], rates["bare gsg"], strict=True)
        ],
        "GSG 2 views / SimSiam (time per step)": [
            s / g for s, g in zip(rates["bare simsiam"], rates["bare gsg2"], strict=True)
        ],
    }
    targets = {
        "trainer / bare (time per step, GSG 4 views)": ("<= 1.05", lambda r: r <= 1.05),
        "GSG 4 views / SimSiam (time per step)": ("about 2 (1.5-2.5)", lambda r: 1.5 <= r <= 2.5),
        "GSG 2 views / SimSiam (time per step)": ("<= 1.05", lambda r: r <= 1.05),
    }
    print()
    print(
        table(
            ["ratio", "median (min-max)", "target"],
            [[k, spread(v, "{:.3f}"), targets[k][0]] for k, v in per_rep.items()],
        )
    )
    print(
        "\nTrainer extras, median over repetitions (outside the timed windows): "
        f"Trainer(cfg) {median([e['construct_s'] for e in extras]):.2f} s; "
        f"train() to the end of step 1 {median([e['first_step_s'] for e in extras]):.2f} s; "
        f"one more step + final log row + final checkpoint {median([e['tail_s'] for e in extras]):.2f} s.\n"
    )
    for k, v in per_rep.items():
        verdict(targets[k][1](median(v)), f"{bench.name} {k} = {median(v):.3f} (target {targets[k][0]})")


def section_pipeline(bench: DomainBench, args: argparse.Namespace, mem: MemoryRuns) -> None:
    """(c) DataLoader + collate + views alone against a full (bare-loop) training step, per data set."""
    print(f"\n## {bench.name}: (c) data pipeline alone vs a full training step\n")
    datasets = bench.datasets()
    step_n = max(args.steps // 2, 3)
    loops: dict[str, BareLoop] = {}
    for name, sel in datasets.items():
        loops[name] = BareLoop(bench.config([*sel, *args.overrides]))
        for _ in range(args.warmup):
            loops[name].step()
    pipe: dict[str, list[float]] = defaultdict(list)
    step: dict[str, list[float]] = defaultdict(list)
    for rep in range(args.repeats):
        for name in datasets if rep % 2 == 0 else reversed(list(datasets)):
            loop = loops[name]
            pipe[name].append(loop.rate(loop.views, args.steps))
            step[name].append(loop.rate(loop.step, step_n))
    for name, sel in datasets.items():
        mem.run(f"pipe {name}", bench.name, "pipeline", [*sel, *args.overrides])
        mem.run(f"step {name}", bench.name, "bare", [*sel, *args.overrides])
    rows = []
    ratios = {}
    for name in datasets:
        loop = loops[name]
        ratios[name] = [p / s for p, s in zip(pipe[name], step[name], strict=True)]
        rows.append(
            [
                name,
                len(loop.data.pretrain),
                bench.shape(loop.data.info),
                loop.objective.n_views,
                spread(pipe[name]),
                spread(step[name]),
                spread(ratios[name], "{:.1f}"),
                mem.cell(f"pipe {name}"),
                mem.cell(f"step {name}"),
            ]
        )
    cfg0 = bench.config(args.overrides)
    print(
        f"Objective {'GSG' if cfg0.objective.gsg else cfg0.objective.method} ({cfg0.objective.n_views} "
        f"views), batch {cfg0.train.batch_size}, num_workers {cfg0.train.num_workers}; pipeline: {args.steps} "
        f"batches, step: {step_n} bare-loop steps, {args.repeats} repetitions. Peak RSS: fresh child, 2 + 5 "
        "batches/steps.\n"
    )
    print(
        table(
            [
                "data set",
                "samples",
                "raw input",
                "views",
                "pipeline samples/s",
                "step samples/s",
                "pipeline / step",
                "pipeline peak RSS MiB",
                "step peak RSS MiB",
            ],
            rows,
        )
    )
    print()
    for name, r in ratios.items():
        verdict(median(r) >= 3, f"{bench.name} {name} pipeline is {median(r):.1f}x faster than a step (target >= 3)")


def section_compile(bench: DomainBench, args: argparse.Namespace, mem: MemoryRuns, work: Path) -> None:
    """(d) train.compile=true against the plain trainer."""
    print(f"\n## {bench.name}: (d) torch.compile (train.compile=true), in the Trainer\n")
    if args.quick:
        print("skipped in --quick (compilation alone takes minutes on 2 cores)")
        verdict(None, f"{bench.name} torch.compile: not measured (--quick)")
        return
    warm = max(args.warmup, 5)
    base = [*variant_overrides("gsg"), *args.overrides]
    results: dict[str, dict] = {}
    errors: dict[str, str] = {}
    for label, extra in (("eager", []), ("compiled", ["train.compile=true"])):
        try:
            results[label] = run_trainer(bench, [*base, *extra], warm, args.steps, args.repeats, work)
        except Exception as exc:  # noqa: BLE001  (report whatever compilation raises)
            text = str(exc).strip().splitlines()
            errors[label] = f"{type(exc).__name__}: {text[0] if text else ''}"[:300]
    mem.run("trainer compiled", bench.name, "trainer", [*base, "train.compile=true"], warmup=warm)
    mem.run("trainer eager", bench.name, "trainer", base, warmup=warm)
    rows = []
    for label in ("eager", "compiled"):
        if label in errors:
            rows.append([label, f"failed: {errors[label]}", "", "", ""])
            continue
        r = results[label]
        rows.append(
            [
                label,
                spread(r["rates"]),
                f"{r['first_step_s']:.1f}",
                f"{r['warmup_steps_s']:.1f}",
                mem.cell(f"trainer {label}"),
            ]
        )
    print(
        f"SimSiam+GSG 4 views. Speed: median (min-max) of {args.repeats} consecutive windows of {args.steps} "
        f"steps after {warm} warm-up steps, one run each (eager first). First step: train() start to the end "
        f"of step 1 (includes prepare() and, compiled, the compilation). Peak RSS: fresh child, {warm} + 5 steps "
        "(the compiled child finds the compiled code in the on-disk cache this run filled).\n"
    )
    print(table(["trainer", "samples/s", "first step s", f"steps 2-{warm} s", "peak RSS MiB"], rows))
    print()
    if errors:
        verdict(None, f"{bench.name} torch.compile: failed ({'; '.join(f'{k}: {v}' for k, v in errors.items())})")
        return
    speedup = median(results["compiled"]["rates"]) / median(results["eager"]["rates"])
    extra = results["compiled"]["first_step_s"] - results["eager"]["first_step_s"]
    verdict(
        None,
        f"{bench.name} torch.compile: steady-state speed-up {speedup:.2f}x, warm-up +{extra:.0f} s (no target)",
    )


def section_knn_and_cli(args: argparse.Namespace, env: dict[str, str]) -> None:
    """(e) kNN evaluation at 60,000 x 10,000 (benchmarks/knn_speed.py) and the wall time of ``gsg --help``."""
    print("\n## (e) kNN evaluation and CLI start-up\n")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    rows = []
    knn = [
        sys.executable,
        "-c",
        PEAK_WRAPPER,
        str(ROOT / "benchmarks" / "knn_speed.py"),
        "--threads",
        str(args.threads),
    ]
    knn += ["--device", device]
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


def section_lightly(args: argparse.Namespace, env: dict[str, str]) -> None:
    """lightly's SimSiam against ours on the same images and backbone (``benchmarks/lightly_compare.py``)."""
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


# ---------------------------------------------------------------- profile


class NoReduce:
    """Stands in for the Accelerator in ``StepMonitor.flush`` (one process: the mean is the value)."""

    def reduce(self, tensor: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
        return tensor


def profiled_step(loop: BareLoop, monitor: Any, times: dict[str, float], step: int, log_every: int) -> None:
    """One bare-loop step, with each part timed.

    The autograd graph is cut at the encoder's features, the projections and the predictions
    (``detach().requires_grad_()``), and the backward pass is run in four calls, one per part, handing
    each part's input gradients to the next: the same arithmetic as one ``loss.backward()``, timed per part.
    The GSG objective is the same functions ``SiameseLoss`` calls, timed in two pieces.
    """
    from gsg_multimodal.losses import PAIRINGS, draw_pairing, gsg_loss_per_sample, select_pairing, symmetric_loss

    dev = loop.device

    @contextmanager
    def part(name: str) -> Iterator[None]:
        sync(dev)
        start = time.perf_counter()
        yield
        sync(dev)
        times[name] += time.perf_counter() - start

    def cut(xs: list[torch.Tensor]) -> list[torch.Tensor]:
        return [x.detach().requires_grad_() for x in xs]

    def backward(outputs: list[torch.Tensor], leaves: list[torch.Tensor]) -> None:
        pairs = [(o, leaf.grad) for o, leaf in zip(outputs, leaves, strict=True) if leaf.grad is not None]
        torch.autograd.backward([o for o, _ in pairs], [g for _, g in pairs])

    m, obj = loop.model, loop.objective
    with part("data: DataLoader + collate"):
        batch = next(loop.batches)
    with part("augmentation: make_views"):
        views = loop.domain.make_views(batch, obj.n_views, loop.aug_rng)
    with part("encoder forward"):
        h = [m.encoder(v) for v in views]
    hc = cut(h)
    with part("projector forward"):
        z = [m.projector(x) for x in hc]
    zc = cut(z)
    with part("predictor forward"):
        p = [m.predictor(x) for x in zc]
    pc = cut(p)
    counts = None
    if obj.gsg:
        with part("GSG pairing + selection (no grad)"):
            r = draw_pairing(pc[0].shape[0], loop.pair_rng, obj.derangement)
            i21, i22 = (2, 3) if obj.gsg_views == 4 else (0, 1)
            pv = {"11": pc[0], "12": pc[1], "21": pc[i21][r], "22": pc[i22][r]}
            tv = {"11": zc[0], "12": zc[1], "21": zc[i21][r], "22": zc[i22][r]}
            choice = select_pairing(tv["11"], tv["12"], tv["21"], tv["22"])
        with part("loss forward"):
            loss = gsg_loss_per_sample(pv, tv, choice).mean()
            counts = torch.zeros(len(PAIRINGS), dtype=torch.long, device=choice.device)
            counts.scatter_add_(0, choice, torch.ones_like(choice))
    else:
        with part("loss forward"):
            loss = symmetric_loss(pc[0], pc[1], zc[0], zc[1]).mean()
    with part("loss backward"):
        loss.backward()
    with part("predictor backward"):
        backward(p, pc)
    with part("projector backward"):
        backward(z, zc)
    with part("encoder backward"):
        backward(h, hc)
    with part("optimizer step + zero_grad"):
        loop.optimizer.step()
        loop.optimizer.zero_grad(set_to_none=True)
    with part("monitor: per-step metrics (on device)"):
        monitor.add(loss.detach(), z[0].detach(), counts, step)
    if step % log_every == 0:
        with part(f"monitor: read-back every {log_every} steps"):
            monitor.flush(NoReduce())


def run_profile(bench: DomainBench, args: argparse.Namespace) -> None:
    from gsg_multimodal.monitors import StepMonitor

    cfg0 = bench.config(args.overrides)
    steps = args.steps
    print(f"\n## {bench.name}: step profile (bare loop, {run_device(cfg0)})\n")
    print(f"Config: {bench.describe}; overrides: {args.overrides or 'none'}.")
    columns: dict[str, dict[str, float]] = {}
    plain: dict[str, float] = {}
    top_ops = ""
    order: list[str] = []
    for variant in ("gsg", "simsiam"):
        cfg = bench.config([*variant_overrides(variant), *args.overrides])
        loop = BareLoop(cfg)
        monitor = StepMonitor(loop.device, collapse_below=0.0)
        for _ in range(args.warmup):
            loop.step()
        times: dict[str, float] = defaultdict(float)
        plain_ms = []
        for rep in range(args.repeats):  # interleave plain and profiled steps
            plain_ms.append(1000 * loop.batch_size / loop.rate(loop.step, steps))
            for i in range(steps):
                profiled_step(loop, monitor, times, rep * steps + i + 1, cfg.train.log_every)
        n = args.repeats * steps
        columns[variant] = {k: 1000 * v / n for k, v in times.items()}
        plain[variant] = median(plain_ms)
        order += [k for k in times if k not in order]
        if variant == "gsg":
            from torch.profiler import ProfilerActivity, profile

            activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if loop.device.type == "cuda" else [])
            with profile(activities=activities) as prof:
                for _ in range(3):
                    loop.step()
            top_ops = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15, max_name_column_width=40)
    rows = []
    for k in order:
        row = [k]
        for v in columns:
            ms = columns[v].get(k)
            total = sum(columns[v].values())
            row += ["-", "-"] if ms is None else [f"{ms:.1f}", f"{100 * ms / total:.1f} %"]
        rows.append(row)
    sums = ["sum of parts"]
    for v in columns:
        sums += [f"{sum(columns[v].values()):.1f}", "100 %"]
    rows.append(sums)
    plain_row = ["plain bare-loop step (median)"]
    for v in columns:
        plain_row += [f"{plain[v]:.1f}", ""]
    rows.append(plain_row)
    print(
        f"\nms per step, mean over {args.repeats} x {steps} profiled steps after {args.warmup} warm-up steps; the "
        "plain step is timed in the same process, interleaved with the profiled ones.\n"
    )
    print(table(["part", "GSG 4 views ms", "share", "SimSiam ms", "share"], rows))
    print(f"\ntorch.profiler, 3 plain GSG steps, top ops by self CPU time:\n\n```\n{top_ops.strip()}\n```")


# ---------------------------------------------------------------- main


def machine_lines(args: argparse.Namespace) -> list[str]:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return [
        f"date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"machine: {cpu}, {os.cpu_count()} logical CPUs, {gpu}; {platform.platform()}",
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
                section_steps(bench, dargs, mem, work)
            if "pipeline" in sections:
                section_pipeline(bench, dargs, mem)
            if "compile" in sections:
                section_compile(bench, dargs, mem, work)
        if "knn" in sections:
            section_knn_and_cli(args, env)
        if "lightly" in sections and "images" in selected:
            section_lightly(args, env)
    print(f"\n## verdicts (total wall time {time.perf_counter() - started:.0f} s)\n")
    for line in VERDICTS:
        print(line)


if __name__ == "__main__":
    main()
