"""The instance-level objectives: SimSiam, BYOL and their GSG forms, the GSG controls, SimCLR, supervised.

Each is a small class over the pure losses of ``losses.py`` (tested against per-sample transcriptions).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import nn

from ..errors import UserError
from ..losses import ContrastiveLoss, SiameseLoss, SupervisedLoss
from ..model import SiameseNetwork, SupervisedNetwork, TargetNetwork, ema_momentum
from .base import Autocast, Batch, Objective, StepOutput, predictor_groups, register_objective

if TYPE_CHECKING:
    from ..config import RunConfig
    from ..domain import DataSplits


# ---------------------------------------------------------------------------- the siamese family


class SiameseObjective(Objective):
    """Encoder -> projector -> predictor on every view; the loss regresses predictions onto targets.

    Subclasses choose where targets come from (``targets``) and whether GSG selects the pairs
    (``gsg``). SimSiam's targets are the online network's own projections.
    """

    gsg: ClassVar[bool] = False
    selection: ClassVar[str] = "guided"  # GSG: the closest cross pair; "random": a control without the guide
    partner: ClassVar[str] = "random"  # GSG: a random other sample; "hard": the nearest other sample

    def __init__(self, cfg: RunConfig, data: DataSplits) -> None:
        super().__init__(cfg, data)
        o = cfg.objective
        self.loss = SiameseLoss(
            gsg=self.gsg,
            gsg_views=o.gsg_views,
            derangement=o.pairing == "derangement",
            selection=self.selection,  # type: ignore[arg-type]
            partner=self.partner,  # type: ignore[arg-type]
        )

    @property
    def n_views(self) -> int:
        return self.loss.n_views

    @property
    def watched_dim(self) -> int:
        return self.cfg.model.projector_dim

    def build(self, encoder: nn.Module) -> nn.Module:
        return SiameseNetwork(encoder, self.cfg.model)

    def parameter_groups(self, network: nn.Module) -> list[dict]:
        return predictor_groups(network, self.cfg.model.fixed_predictor_lr)

    def targets(self, z: list[torch.Tensor], views: list[Any], autocast: Autocast) -> Any:
        return z

    def compute(
        self, network: nn.Module, views: Any, batch: Batch, generator: torch.Generator, autocast: Autocast
    ) -> StepOutput:
        z, p, pre_bn = network(views)
        out = self.loss(p, self.targets(z, views, autocast), generator if self.gsg else None)
        return StepOutput(out.loss, pre_bn, out.pairing_counts)


@register_objective("simsiam")
class SimSiam(SiameseObjective):
    """SimSiam: ``-1/2 [cos(p1, sg z2) + cos(p2, sg z1)]``."""


@register_objective("gsg")
class SimSiamGSG(SimSiam):
    """SimSiam with Guided Stop-Gradient: the closest cross-sample pair of views predicts its own siblings."""

    gsg = True


@register_objective("simsiam-nosg")
class SimSiamWithoutStopGradient(SimSiam):
    """Positive control for the collapse measures: SimSiam with the stop-gradient removed.

    ``-1/2 [cos(p1, z2) + cos(p2, z1)]`` with gradients through both sides collapses quickly
    (SimSiam paper, Fig. 2); a collapse metric that does not fire here cannot be trusted.
    """

    def compute(
        self, network: nn.Module, views: Any, batch: Batch, generator: torch.Generator, autocast: Autocast
    ) -> StepOutput:
        z, p, pre_bn = network(views)
        cos = torch.nn.functional.cosine_similarity
        loss = -0.5 * (cos(p[0].float(), z[1].float(), dim=-1) + cos(p[1].float(), z[0].float(), dim=-1))
        return StepOutput(loss.mean(), pre_bn)


@register_objective("gsg-random")
class SimSiamGSGRandomSelection(SimSiamGSG):
    """Control: GSG's views and partner, but the case chosen at random, not by distance.

    Without it a GSG gain cannot be told apart from "more views and a partner".
    """

    selection = "random"


@register_objective("gsg-hard")
class SimSiamGSGHardPartner(SimSiamGSG):
    """GSG whose partner is each sample's nearest other sample in the batch instead of a random one."""

    partner = "hard"


@register_objective("byol")
class BYOL(SiameseObjective):
    """BYOL: targets from an exponential moving average of the online encoder + projector."""

    def attach(self, network: nn.Module, device: torch.device) -> list[nn.Module]:
        self.target = TargetNetwork(network).to(device)
        return [self.target]

    def targets(self, z: list[torch.Tensor], views: list[Any], autocast: Autocast) -> Any:
        with torch.no_grad(), autocast():
            return self.target(views)

    def momentum(self, step: int, total_steps: int) -> float:
        o = self.cfg.objective
        return ema_momentum(o.momentum, step, total_steps, o.momentum_schedule)

    def after_step(self, network: nn.Module, step: int, total_steps: int) -> None:
        self.target.update(network, self.momentum(step, total_steps))

    def step_metrics(self, step: int, total_steps: int) -> dict[str, float]:
        return {"momentum": self.momentum(step - 1, total_steps)}


@register_objective("byol-gsg")
class BYOLGSG(BYOL):
    """BYOL with Guided Stop-Gradient: pairs are selected on the EMA target's projections."""

    gsg = True


# ---------------------------------------------------------------------------- references


@register_objective("simclr")
class SimCLR(Objective):
    """The explicit-negatives reference: InfoNCE on the projections of two views, no predictor."""

    n_views = 2

    def __init__(self, cfg: RunConfig, data: DataSplits) -> None:
        super().__init__(cfg, data)
        self.loss = ContrastiveLoss(cfg.objective.temperature)

    @property
    def watched_dim(self) -> int:
        return self.cfg.model.projector_dim

    def build(self, encoder: nn.Module) -> nn.Module:
        return SiameseNetwork(encoder, replace(self.cfg.model, predictor=False))

    def compute(
        self, network: nn.Module, views: Any, batch: Batch, generator: torch.Generator, autocast: Autocast
    ) -> StepOutput:
        z, _, pre_bn = network(views)
        return StepOutput(self.loss(z).loss, pre_bn)


@register_objective("supervised")
class Supervised(Objective):
    """The ceiling: the same encoder and views, trained with the labels (cross-entropy of a linear head)."""

    n_views = 2
    needs_labels = True

    def __init__(self, cfg: RunConfig, data: DataSplits) -> None:
        super().__init__(cfg, data)
        if data.train is None:
            raise UserError("objective.method=supervised needs a labelled train split; this data set has no labels")
        self.num_classes = len(data.label_names) if data.label_names else int(max(data.train["label"])) + 1
        self.loss = SupervisedLoss()
        self._width = 0

    @property
    def watched_dim(self) -> int:
        return self._width

    def build(self, encoder: nn.Module) -> nn.Module:
        self._width = encoder.out_dim
        return SupervisedNetwork(encoder, self.num_classes)

    def compute(
        self, network: nn.Module, views: Any, batch: Batch, generator: torch.Generator, autocast: Autocast
    ) -> StepOutput:
        h, logits = network(views)  # the monitor watches the encoder features
        return StepOutput(self.loss(logits, batch["label"]).loss, h[0].detach())
