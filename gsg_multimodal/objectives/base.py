"""The base of every objective, and the registry that maps ``objective.method`` to its class.

The trainer has a single path for all objectives. It asks the objective for its network
(``build``), for any extra state to checkpoint (``attach``: BYOL's EMA target), for the
optimizer's parameter groups, and each step for the inputs (``views``), the loss of a batch
(``compute``) and the work after the optimizer step (``after_step``). It never compares a
method name. Adding an objective is one subclass plus ``@register_objective("name")``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import torch
from torch import nn

from ..errors import UserError

if TYPE_CHECKING:
    from ..config import RunConfig
    from ..domain import DataSplits, Domain

Batch = dict[str, Any]  # a collated batch, as the domain's collate made it
Autocast = Callable[[], AbstractContextManager]  # the accelerator's mixed-precision context


@dataclass
class StepOutput:
    """What one step of an objective produces: the loss, and what the monitors watch."""

    loss: torch.Tensor
    watched: torch.Tensor  # [N, d] what the collapse monitor reads: first view's pre-BatchNorm projection
    pairing_counts: torch.Tensor | None = None  # [4] counts of each GSG case, for GSG objectives


class Objective(ABC):
    """A training objective over one domain encoder.

    ``cfg`` is the whole run config (the objective reads its ``objective`` and ``model``
    sections); ``data`` the loaded splits (the supervised ceiling reads its labels).
    """

    name: ClassVar[str]  # set by register_objective
    needs_labels: ClassVar[bool] = False  # True: trains on the labelled train split, not the pretraining rows

    def __init__(self, cfg: RunConfig, data: DataSplits) -> None:
        self.cfg = cfg
        self.data = data

    @property
    @abstractmethod
    def n_views(self) -> int:
        """Views encoded per sample per step (what "equal compute" counts)."""

    @abstractmethod
    def build(self, encoder: nn.Module) -> nn.Module:
        """The trainable network around ``encoder`` (it keeps ``encoder`` as ``.encoder``)."""

    @property
    @abstractmethod
    def watched_dim(self) -> int:
        """Width of ``StepOutput.watched`` (the collapse reference is ``1/sqrt(watched_dim)``)."""

    def attach(self, network: nn.Module, device: torch.device) -> list[nn.Module]:
        """Make state that lives beside the network (e.g. an EMA target); returned modules are checkpointed."""
        return []

    def parameter_groups(self, network: nn.Module) -> list[dict]:
        """Optimizer groups; a group flagged ``fixed_lr`` keeps its learning rate off the schedule."""
        return [{"params": list(network.parameters()), "fixed_lr": False}]

    def views(self, domain: Domain, batch: dict[str, Any], generator: torch.Generator) -> Any:
        """The inputs of one step: by default ``n_views`` independent augmentations of the batch."""
        return domain.make_views(batch, self.n_views, generator)

    @abstractmethod
    def compute(
        self, network: nn.Module, views: Any, batch: Batch, generator: torch.Generator, autocast: Autocast
    ) -> StepOutput:
        """The loss of one batch. ``generator`` is the host generator for draws such as GSG's pairing."""

    def after_step(self, network: nn.Module, step: int, total_steps: int) -> None:
        """Work after each optimizer step (``step`` counts completed steps before this one)."""
        return None

    def step_metrics(self, step: int, total_steps: int) -> dict[str, float]:
        """Extra values for the metric row logged after ``step`` steps."""
        return {}


def predictor_groups(network: nn.Module, fixed_predictor_lr: bool) -> list[dict]:
    """Two groups: everything but ``network.predictor``, and the predictor (SimSiam: optionally a fixed lr)."""
    predictor = list(network.predictor.parameters())
    ids = {id(p) for p in predictor}
    groups = [{"params": [p for p in network.parameters() if id(p) not in ids], "fixed_lr": False}]
    if predictor:
        groups.append({"params": predictor, "fixed_lr": fixed_predictor_lr})
    return groups


_REGISTRY: dict[str, type[Objective]] = {}
ObjectiveClass = TypeVar("ObjectiveClass", bound=type[Objective])


def register_objective(name: str) -> Callable[[ObjectiveClass], ObjectiveClass]:
    """Class decorator: make ``objective.method=name`` build this objective."""

    def add(cls: ObjectiveClass) -> ObjectiveClass:
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"objective '{name}' is registered already (by {_REGISTRY[name].__qualname__})")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return add


def objective_names() -> list[str]:
    return list(_REGISTRY)


def get_objective(name: str) -> type[Objective]:
    if name not in _REGISTRY:
        raise UserError(f"unknown objective.method '{name}'; choose from {', '.join(_REGISTRY)}")
    return _REGISTRY[name]


def build_objective(cfg: RunConfig, data: DataSplits) -> Objective:
    return get_objective(cfg.objective.method)(cfg, data)
