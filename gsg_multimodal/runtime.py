"""Shared set-up for every command that runs a model: the Accelerator and the bound domain plug-in."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from .config import RunConfig
from .domain import DataSplits, Domain
from .errors import UserError

CACHE_DIR = "cache"  # inside a run folder: what the domain derived from the data (Domain.cache_dir)


def build_domain(cfg: RunConfig) -> Domain:
    """The configured domain plug-in, not yet bound to data (see ``load_bound``)."""
    from .registry import get_domain

    return get_domain(cfg.domain)(cfg.data, cfg.views, cfg.encoder)


def load_bound(
    cfg: RunConfig, accelerator: Any | None = None, cache_dir: Path | None = None
) -> tuple[Domain, DataSplits]:
    """The domain with its data read and its ``info`` bound: ready for views, eval inputs and encoders.

    ``cache_dir``: a folder of the run the domain may keep derived data in (``Domain.cache_dir``).
    """
    domain = build_domain(cfg)
    domain.cache_dir = cache_dir
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

    precision = resolve_precision(cfg.train.mixed_precision)
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


def _config_default_precision() -> Any:
    import dataclasses

    from .config import TrainConfig

    return next(f.default for f in dataclasses.fields(TrainConfig) if f.name == "mixed_precision")


def resolve_precision(configured: str | None) -> str | None:
    """The ``mixed_precision`` to hand to ``Accelerator``; ``None`` lets the launcher decide.

    The launcher's choice (``accelerate launch --mixed_precision``, ``accelerate config``; both reach the
    process as ``ACCELERATE_MIXED_PRECISION``) wins unless the run's config sets the key itself. A value
    equal to the config's dataclass default counts as "not set": until ``train.mixed_precision`` defaults
    to ``None`` that is ``"no"``, so only ``fp16``/``bf16`` in a config override the launcher.
    fp16 autocast needs a GPU: on a machine without CUDA it falls back to full precision.
    """
    if configured is None or configured == _config_default_precision():
        configured = None
        launcher = os.environ.get("ACCELERATE_MIXED_PRECISION")
        if launcher is None:
            return "no"  # nothing chosen anywhere: full precision (Accelerate's own default)
        precision = launcher.lower()
    else:
        precision = configured
    if precision == "fp16" and not torch.cuda.is_available():
        return "no"  # fp16 autocast needs a GPU; on CPU run in full precision
    return precision if configured is not None else None  # None: Accelerate reads the launcher's value itself


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
