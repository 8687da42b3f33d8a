"""Where one bare-loop step's time goes: each part timed, the GSG loss rebuilt piecewise from ``losses``."""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch

from .bare_loop import BareLoop, run_device
from .bench_domains import DomainBench, variant_overrides
from .timing import median, sync, table


class NoReduce:
    """Stands in for the Accelerator in ``StepMonitor.flush`` (one process: the mean is the value)."""

    def reduce(self, tensor: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
        return tensor


def profiled_step(loop: BareLoop, monitor: Any, times: dict[str, float], step: int, log_every: int) -> None:
    """One bare-loop step of a SimSiam-family objective, with each part timed.

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

    m, loss_fn = loop.model, loop.objective.loss  # a SiameseObjective's network and SiameseLoss
    with part("data: DataLoader + collate"):
        batch = next(loop.batches)
    with part("augmentation: make_views"):
        views = loop.objective.views(loop.domain, batch, loop.aug_rng)
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
    if loss_fn.gsg:
        with part("GSG pairing + selection (no grad)"):
            r = draw_pairing(pc[0].shape[0], loop.pair_rng, loss_fn.derangement).to(dev, non_blocking=True)
            i21, i22 = (2, 3) if loss_fn.gsg_views == 4 else (0, 1)
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
