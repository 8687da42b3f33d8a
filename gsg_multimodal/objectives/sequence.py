"""Position-level objectives on views that share an aligned segment (``Domain.make_sequence_views``).

- ``ts2vec``: TS2Vec's hierarchical contrastive loss (Yue et al., AAAI 2022) on the encoder's per-position
  features of the shared segment: the explicit-negatives reference for sequence data, as SimCLR is for
  images. No heads, as in TS2Vec.
- ``gsg-temporal``: Guided Stop-Gradient applied per position at every scale of the same max-pool pyramid
  (``sequence_losses.temporal_gsg_loss``), with a per-position projector and predictor. The partner of a
  (sample, position) is another sample at the same position (``objective.temporal_partner=series``: the
  instance contrast at every scale; at the top scale, instance-level GSG on the pooled segment), the same
  sample at a distant position (``time``), or both (the default, like TS2Vec's two terms).
- ``gsg-segment``: instance-level SimSiam + GSG whose views share an aligned segment, each view's
  features pooled over that segment only. ``gsg`` pools each independent crop over all of it, so two views
  of one series may share little of it; here every view of a series describes the same stretch of it,
  seen in its own context and with its own value augmentations, as TS2Vec's instance contrast does.

The encoder must offer ``encode_sequence(x) -> [N, T, sequence_dim]`` (positions last but one, zero at
padding) and ``sequence_dim``; the time-series encoders do.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from ..domain import SequenceViews
from ..errors import UserError
from ..model import SiameseNetwork, SiameseOutput, prediction_mlp, projection_mlp
from ..sequence_losses import maxpool_pyramid, temporal_gsg_loss, ts2vec_loss
from .base import Autocast, Batch, Objective, StepOutput, predictor_groups, register_objective
from .siamese import SimSiamGSG

if TYPE_CHECKING:
    from ..config import RunConfig
    from ..domain import DataSplits, Domain


def _sequence_dim(encoder: nn.Module) -> int:
    width = getattr(encoder, "sequence_dim", None)
    if not callable(getattr(encoder, "encode_sequence", None)) or not isinstance(width, int):
        raise UserError(
            "this objective needs an encoder with encode_sequence() and sequence_dim (per-position features); "
            "the time-series encoders have them: use domain timeseries, or an instance-level objective"
        )
    return width


def _segments(encoder: nn.Module, views: SequenceViews) -> list[torch.Tensor]:
    """Each view's per-position features over the shared segment: ``[N, L, D]``, aligned across views."""
    return [
        encoder.encode_sequence(v)[:, start : start + length]
        for v, (start, length) in zip(views.views, views.overlap, strict=True)
    ]


def pool_segment(segment: torch.Tensor, pooling: str) -> torch.Tensor:
    """``[N, L, D]`` -> ``[N, D]`` (or ``[N, 2D]`` for ``mean+max``), pooled as the encoder pools a whole series."""
    feats = []
    if pooling in ("mean", "mean+max"):
        feats.append(segment.mean(1))
    if pooling in ("max", "mean+max"):
        feats.append(segment.amax(1))
    if not feats:  # the encoder config admits only the three above; this guards direct callers
        raise ValueError(f"unknown pooling '{pooling}'; use mean, max or mean+max")
    return feats[0] if len(feats) == 1 else torch.cat(feats, 1)


class _SegmentSiamese(SiameseNetwork):
    """The siamese network with each view's instance feature pooled over the shared segment only."""

    def forward(self, views: SequenceViews) -> SiameseOutput:  # type: ignore[override]
        pooling = getattr(self.encoder, "pooling", "max")
        return self.heads([pool_segment(seg, pooling) for seg in _segments(self.encoder, views)])


class _SegmentEncoder(nn.Module):
    """TS2Vec's network: the encoder alone, returning the aligned segments (through ``forward`` for DDP)."""

    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder

    def forward(self, views: SequenceViews) -> list[torch.Tensor]:
        return _segments(self.encoder, views)


class _PositionHeads(nn.Module):
    """Encoder, then a projector per position and a predictor per position at every pyramid scale.

    ``forward`` returns ``(p, t_online, pre_bn)``: ``p[v][s] = h(maxpool^s(z_v))``, ``t_online[v] = z_v``
    (``[N, L, d]``) and the first view's pre-BatchNorm projection max-pooled over positions (watched).
    BatchNorm in the heads normalises over all ``N * L`` positions of a batch.
    """

    def __init__(self, encoder: nn.Module, width: int, model_cfg: Any) -> None:
        super().__init__()
        self.encoder = encoder
        self.projector = projection_mlp(
            width, model_cfg.projector_hidden, model_cfg.projector_dim, model_cfg.projector_layers
        )
        width_z, hidden = model_cfg.projector_dim, model_cfg.predictor_hidden
        self.predictor = prediction_mlp(width_z, hidden) if model_cfg.predictor else nn.Identity()

    def project(self, seg: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n, length, width = seg.shape
        h = self.projector[:-1](seg.reshape(n * length, width))
        z = self.projector[-1](h)
        return z.reshape(n, length, -1), h.reshape(n, length, -1)

    def predict(self, z: torch.Tensor) -> torch.Tensor:
        n, length, d = z.shape
        return self.predictor(z.reshape(n * length, d)).reshape(n, length, -1)

    def forward(self, views: SequenceViews) -> tuple[list[list[torch.Tensor]], list[torch.Tensor], torch.Tensor]:
        projected = [self.project(seg) for seg in _segments(self.encoder, views)]
        z = [zi for zi, _ in projected]
        p = [[self.predict(level) for level in maxpool_pyramid(zi)] for zi in z]
        return p, z, projected[0][1].detach().amax(1)


@register_objective("ts2vec")
class TS2Vec(Objective):
    """TS2Vec's hierarchical contrastive loss (instance-wise + temporal, every scale), explicit negatives."""

    n_views = 2

    def __init__(self, cfg: RunConfig, data: DataSplits) -> None:
        super().__init__(cfg, data)
        self._width = 0

    @property
    def watched_dim(self) -> int:
        return self._width

    def build(self, encoder: nn.Module) -> nn.Module:
        self._width = _sequence_dim(encoder)
        return _SegmentEncoder(encoder)

    def views(self, domain: Domain, batch: dict[str, Any], generator: torch.Generator) -> SequenceViews:
        return domain.make_sequence_views(batch, self.n_views, generator)

    def compute(
        self, network: nn.Module, views: Any, batch: Batch, generator: torch.Generator, autocast: Autocast
    ) -> StepOutput:
        z1, z2 = network(views)
        out = ts2vec_loss(z1, z2, alpha=self.cfg.objective.ts2vec_alpha)
        return StepOutput(out.loss, z1.detach().amax(1))


@register_objective("gsg-temporal")
class TemporalGSG(Objective):
    """SimSiam + GSG at position level: the closest cross pair of each (sample, position) predicts its siblings."""

    n_views = 2

    @property
    def watched_dim(self) -> int:
        return self.cfg.model.projector_dim

    def build(self, encoder: nn.Module) -> nn.Module:
        return _PositionHeads(encoder, _sequence_dim(encoder), self.cfg.model)

    def parameter_groups(self, network: nn.Module) -> list[dict]:
        return predictor_groups(network, self.cfg.model.fixed_predictor_lr)

    def views(self, domain: Domain, batch: dict[str, Any], generator: torch.Generator) -> SequenceViews:
        return domain.make_sequence_views(batch, self.n_views, generator)

    def compute(
        self, network: nn.Module, views: Any, batch: Batch, generator: torch.Generator, autocast: Autocast
    ) -> StepOutput:
        p, z, watched = network(views)
        t = [maxpool_pyramid(zi) for zi in z]  # SimSiam: the online projections are the targets
        o = self.cfg.objective
        out = temporal_gsg_loss(
            p, t, mode=o.temporal_partner, generator=generator, derangement=o.pairing == "derangement"
        )
        return StepOutput(out.loss, watched, out.pairing_counts)


@register_objective("gsg-segment")
class SegmentGSG(SimSiamGSG):
    """SimSiam + GSG on views sharing an aligned segment, each view pooled over that segment (instance level).

    Loss, pairing and selection are ``gsg``'s (``objective.gsg_views`` 4 or 2); only the views and the
    pooling differ: with 4 views, ``v1, v2`` (image 1) and ``v3, v4`` (its partner's image 2) are four
    crops of each series around one shared segment.
    """

    def build(self, encoder: nn.Module) -> nn.Module:
        _sequence_dim(encoder)
        return _SegmentSiamese(encoder, self.cfg.model)

    def views(self, domain: Domain, batch: dict[str, Any], generator: torch.Generator) -> SequenceViews:
        return domain.make_sequence_views(batch, self.n_views, generator)
