"""Sections (a)-(d) of ``speed.py``: trainer overhead, objective cost, data pipeline, torch.compile."""

from __future__ import annotations

import argparse
from pathlib import Path

from .bare_loop import BareLoop, run_device
from .bench_domains import DomainBench, variant_overrides
from .memory_runs import MemoryRuns
from .timing import Verdicts, interleaved, median, ratios, spread, table
from .trainer_run import run_trainer

STEP_LABELS = {
    "bare gsg": "bare loop, SimSiam+GSG 4 views",
    "trainer gsg": "Trainer, SimSiam+GSG 4 views",
    "bare simsiam": "bare loop, SimSiam 2 views",
    "bare gsg2": "bare loop, SimSiam+GSG 2 views",
}
# Ratio of times per step, i.e. rate of the first run / rate of the second: (runs, target, test of the median).
STEP_RATIOS = {
    "trainer / bare (time per step, GSG 4 views)": (("bare gsg", "trainer gsg"), "<= 1.05", lambda r: r <= 1.05),
    "GSG 4 views / SimSiam (time per step)": (
        ("bare simsiam", "bare gsg"),
        "about 2 (1.5-2.5)",
        lambda r: 1.5 <= r <= 2.5,
    ),
    "GSG 2 views / SimSiam (time per step)": (("bare simsiam", "bare gsg2"), "<= 1.05", lambda r: r <= 1.05),
}


def section_steps(bench: DomainBench, args: argparse.Namespace, mem: MemoryRuns, work: Path, verdict: Verdicts) -> None:
    """(a) trainer vs bare loop and (b) objective cost, interleaved in one set of repetitions."""
    cfg0 = bench.config(args.overrides)
    print(f"\n## {bench.name}: (a) trainer overhead and (b) objective cost\n")
    print(f"Config: {bench.describe}; overrides: {args.overrides or 'none'}; device {run_device(cfg0)}.")
    loops = {n: BareLoop(bench.config([*variant_overrides(n), *args.overrides])) for n in ("gsg", "simsiam", "gsg2")}
    for loop in loops.values():
        for _ in range(args.warmup):
            loop.step()
    extras: list[dict] = []

    def trainer_rate(variant: str) -> float:
        r = run_trainer(bench, [*variant_overrides(variant), *args.overrides], args.warmup, args.steps, 1, work)
        extras.append(r)
        return r["rates"][0]

    def job(key: str):  # noqa: ANN202  (a zero-argument measurement)
        kind, variant = key.split()
        if kind == "trainer":
            return lambda: trainer_rate(variant)
        return lambda: loops[variant].rate(loops[variant].step, args.steps)

    rates = interleaved({key: job(key) for key in STEP_LABELS}, args.repeats)
    bs = cfg0.train.batch_size
    for key in STEP_LABELS:
        kind, variant = key.split()
        mem.run(key, bench.name, kind, [*variant_overrides(variant), *args.overrides])
    mem.run("idle", bench.name, "idle", [*variant_overrides("gsg"), *args.overrides])
    rows = [
        [label, spread(rates[key]), f"{1000 * bs / median(rates[key]):.0f}", mem.cell(key), mem.delta(key, "idle")]
        for key, label in STEP_LABELS.items()
    ]
    rows.append(["idle child (imports, data, model; no step)", "-", "-", mem.cell("idle"), "+0"])
    print(
        f"\nSpeed: median (min-max) over {args.repeats} repetitions of {args.steps} steps after {args.warmup} "
        f"warm-up steps, batch {bs}. Memory: peak RSS of a fresh child process running 2 + 5 steps of only that.\n"
    )
    print(table(["run", "samples/s", "ms/step", "peak RSS MiB", "vs idle MiB"], rows))
    per_rep = {k: ratios(rates[top], rates[bottom]) for k, ((top, bottom), _, _) in STEP_RATIOS.items()}
    print()
    print(
        table(
            ["ratio", "median (min-max)", "target"],
            [[k, spread(v, "{:.3f}"), STEP_RATIOS[k][1]] for k, v in per_rep.items()],
        )
    )
    print(
        "\nTrainer extras, median over repetitions (outside the timed windows): "
        f"Trainer(cfg) {median([e['construct_s'] for e in extras]):.2f} s; "
        f"train() to the end of step 1 {median([e['first_step_s'] for e in extras]):.2f} s; "
        f"one more step + final log row + final checkpoint {median([e['tail_s'] for e in extras]):.2f} s.\n"
    )
    for k, v in per_rep.items():
        _, target, ok = STEP_RATIOS[k]
        verdict(ok(median(v)), f"{bench.name} {k} = {median(v):.3f} (target {target})")


def section_pipeline(bench: DomainBench, args: argparse.Namespace, mem: MemoryRuns, verdict: Verdicts) -> None:
    """(c) DataLoader + collate + views alone against a full (bare-loop) training step, per data set."""
    print(f"\n## {bench.name}: (c) data pipeline alone vs a full training step\n")
    datasets = bench.datasets()
    step_n = max(args.steps // 2, 3)
    loops: dict[str, BareLoop] = {}
    for name, sel in datasets.items():
        loops[name] = BareLoop(bench.config([*sel, *args.overrides]))
        for _ in range(args.warmup):
            loops[name].step()
    jobs = {}
    for name, loop in loops.items():
        jobs[f"pipe {name}"] = lambda loop=loop: loop.rate(loop.views, args.steps)
        jobs[f"step {name}"] = lambda loop=loop: loop.rate(loop.step, step_n)
    rates = interleaved(jobs, args.repeats)
    for name, sel in datasets.items():
        mem.run(f"pipe {name}", bench.name, "pipeline", [*sel, *args.overrides])
        mem.run(f"step {name}", bench.name, "bare", [*sel, *args.overrides])
    rows = []
    per_set = {}
    for name, loop in loops.items():
        pipe, step = rates[f"pipe {name}"], rates[f"step {name}"]
        per_set[name] = ratios(pipe, step)
        rows.append(
            [
                name,
                len(loop.data.pretrain),
                bench.shape(loop.data.info),
                loop.objective.n_views,
                spread(pipe),
                spread(step),
                spread(per_set[name], "{:.1f}"),
                mem.cell(f"pipe {name}"),
                mem.cell(f"step {name}"),
            ]
        )
    cfg0 = bench.config(args.overrides)
    method = cfg0.objective.method
    n_views = next(iter(loops.values())).objective.n_views
    print(
        f"Objective {'GSG' if method == 'gsg' else method} ({n_views} "
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
    for name, r in per_set.items():
        verdict(median(r) >= 3, f"{bench.name} {name} pipeline is {median(r):.1f}x faster than a step (target >= 3)")


def section_compile(
    bench: DomainBench, args: argparse.Namespace, mem: MemoryRuns, work: Path, verdict: Verdicts
) -> None:
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
