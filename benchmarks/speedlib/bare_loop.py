"""The bare loop: what the trainer does in a step, on the same objective API, minus Accelerate.

Same bound domain, data, views, network, parameter groups, optimizer, gradient clipping and
``after_step`` (BYOL's EMA update) as ``gsg_multimodal.trainer.Trainer``; no Accelerate, no
scheduler, no metrics, no checkpoints, no gradient scaler. Used by ``speed.py``, ``aa_check.py``,
``image_pipeline.py`` and ``lightly_compare.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import torch

from .timing import rate


def run_device(cfg: Any) -> torch.device:
    """What Accelerate picks: the GPU when there is one and train.cpu is off."""
    return torch.device("cuda" if torch.cuda.is_available() and not cfg.train.cpu else "cpu")


def autocast_for(cfg: Any, device: torch.device) -> Callable[[], AbstractContextManager]:
    """The autocast Accelerate applies for ``train.mixed_precision`` (fp16 falls back to fp32 on the CPU)."""
    precision = cfg.train.mixed_precision
    if precision == "fp16" and device.type != "cuda":
        precision = "no"
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    if dtype is None:
        return nullcontext
    return lambda: torch.autocast(device.type, dtype=dtype)


def to_device(obj: Any, device: torch.device) -> Any:
    if torch.is_tensor(obj):
        return obj.to(device, non_blocking=True)
    if isinstance(obj, dict):
        return {k: to_device(v, device) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_device(v, device) for v in obj)
    return obj


class BareLoop:
    """Plain PyTorch around the pieces the trainer uses, and nothing else."""

    def __init__(self, cfg: Any, device: torch.device | None = None) -> None:
        from torch.utils.data import DataLoader

        from gsg_multimodal.model import build_optimizer
        from gsg_multimodal.objectives import build_objective
        from gsg_multimodal.runtime import load_bound

        self.cfg = cfg
        self.device = device or run_device(cfg)
        torch.manual_seed(cfg.seed)
        self.domain, self.data = load_bound(cfg)
        self.objective = build_objective(cfg, self.data)
        self.model = self.objective.build(self.domain.encoder()).to(self.device).train()
        self.extra_state = self.objective.attach(self.model, self.device)  # e.g. BYOL's EMA target
        self.optimizer = build_optimizer(self.objective.parameter_groups(self.model), cfg.optim, self.device)
        self.batch_size = cfg.train.batch_size
        self.loader = DataLoader(
            self.data.train if self.objective.needs_labels else self.data.pretrain,
            batch_size=cfg.train.batch_size,
            shuffle=True,
            drop_last=True,
            collate_fn=self.domain.collate,
            num_workers=cfg.train.num_workers,
            pin_memory=self.device.type == "cuda",
            persistent_workers=cfg.train.num_workers > 0,
            generator=torch.Generator().manual_seed(cfg.seed),
        )
        self.autocast = autocast_for(cfg, self.device)
        self.aug_rng = torch.Generator(device=self.device).manual_seed(cfg.seed + 1)
        self.pair_rng = torch.Generator().manual_seed(cfg.seed + 2)  # on the host, as in the trainer
        self.steps_done = 0
        self.total_steps = len(self.loader) * cfg.train.epochs  # what the EMA schedule runs over
        self.batches = self._batches()

    def _batches(self) -> Iterator[Any]:
        while True:
            for batch in self.loader:
                yield to_device(batch, self.device)

    def load(self) -> Any:
        """The loader alone: next batch (DataLoader + collate + the copy to the device)."""
        return next(self.batches)

    def views(self) -> Any:
        """The data pipeline alone: next batch, then the objective's views."""
        return self.objective.views(self.domain, next(self.batches), self.aug_rng)

    def step(self) -> None:
        batch = next(self.batches)
        views = self.objective.views(self.domain, batch, self.aug_rng)
        with self.autocast():
            out = self.objective.compute(self.model, views, batch, self.pair_rng, self.autocast)
        out.loss.backward()
        if self.cfg.optim.grad_clip:  # part of the recipe (the text configs clip), so the trainer does it too
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.optim.grad_clip)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.objective.after_step(self.model, self.steps_done, self.total_steps)
        self.steps_done += 1

    def rate(self, fn: Callable[[], Any], n: int) -> float:
        """Samples per second over ``n`` calls of ``fn`` (``step``, ``views`` or ``load``)."""
        return rate(fn, n, self.batch_size, self.device)
