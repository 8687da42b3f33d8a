"""The real ``Trainer``, timed between two of its optimizer steps (building it and its last checkpoint fall outside)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from .bench_domains import BIG, DomainBench
from .timing import sync


def run_trainer(bench: DomainBench, overrides: list[str], warmup: int, steps: int, windows: int, work: Path) -> dict:
    """Run the real Trainer for ``warmup + windows * steps`` timed steps (plus one); samples/s per window."""
    from gsg_multimodal.runtime import reset_accelerate
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
