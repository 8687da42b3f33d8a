"""Shared set-up for every command that runs a model: the Accelerator and the bound domain plug-in."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from .config import RunConfig
from .domain import DataSplits, Domain
from .errors import UserError


def build_domain(cfg: RunConfig) -> Domain:
    """The configured domain plug-in, not yet bound to data (see ``load_bound``)."""
    from .registry import get_domain

    return get_domain(cfg.domain)(cfg.data, cfg.views, cfg.encoder)


def load_bound(cfg: RunConfig, accelerator: Any | None = None) -> tuple[Domain, DataSplits]:
    """The domain with its data read and its ``info`` bound: ready for views, eval inputs and encoders."""
    domain = build_domain(cfg)
    if accelerator is None:
        data = domain.load_data()
    else:
        with accelerator.main_process_first():  # the first process fills any cache; the others read it
            data = domain.load_data()
    domain.bind(data.info)
    return domain, data


def make_accelerator(cfg: RunConfig, run_dir: Path, with_trackers: bool) -> Any:
    from accelerate import Accelerator
    from accelerate.utils import DataLoaderConfiguration, ProjectConfiguration

    precision = cfg.train.mixed_precision
    if precision == "fp16" and not torch.cuda.is_available():
        precision = "no"  # fp16 autocast needs a GPU; on CPU run in full precision
    trackers = []
    if with_trackers:
        for name in cfg.train.trackers:
            if name == "auto":
                from accelerate.utils import is_tensorboard_available

                trackers += ["tensorboard"] if is_tensorboard_available() else []
            elif name != "none":
                trackers.append(name)
    accelerator = Accelerator(
        cpu=cfg.train.cpu,
        mixed_precision=precision,
        gradient_accumulation_steps=cfg.train.grad_accum,
        log_with=trackers or None,
        project_config=ProjectConfiguration(project_dir=str(run_dir), logging_dir=str(run_dir / "tensorboard")),
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True, data_seed=cfg.seed),
    )
    check_really_distributed(accelerator)
    return accelerator


def check_really_distributed(accelerator: Any) -> None:
    """Refuse processes that were launched together but cannot talk to each other.

    ``accelerate launch --multi_gpu`` on a machine without GPUs starts N processes that each
    believe they are alone: N independent trainings writing to one place.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and accelerator.num_processes != world:
        raise UserError(
            f"{world} processes were launched but they are not connected ({accelerator.distributed_type} in each); "
            "without GPUs use 'torchrun --nproc_per_node N -m gsg_multimodal pretrain ...' for a real multi-CPU run"
        )


def reset_accelerate() -> None:
    """Forget Accelerate's process-wide state, so the next Accelerator starts as in a new process."""
    from accelerate.state import AcceleratorState, PartialState

    AcceleratorState._reset_state(reset_partial_state=True)
    PartialState._reset_state()
