"""Encoders mapping series ``[N, C, L]`` (or a padded ``SeriesBatch``) to features ``[N, D]``.

``dilated_cnn`` is our own encoder after TS2Vec's (Yue et al. 2022); ``inception_time`` and
``resnet`` are tsai's InceptionTimePlus / ResNetPlus backbones. All share one wrapper that checks
the channel count and pools over time, so every encoder works for any length and returns
``[N, out_dim]``; ``encode_sequence`` gives the per-step features ``[N, T, D]`` before pooling.

Variable lengths. An input is either a plain tensor (every step valid) or a ``SeriesBatch``
(zero-padded ``x`` plus ``lengths``). ``dilated_cnn`` is *exact* under padding: it zeroes the
padded steps before every convolution (and a zero-padded "same" convolution reads zeros beyond a
series' end anyway), and pooling reads valid steps only, so each series of a padded batch gets
the features it gets when encoded alone. The tsai backbones pool over valid steps only too, but
their convolutions and BatchNorm run over the whole padded tensor, so the last steps of a shorter
series (one receptive field) see padding that was normalised away from zero: their features
depend slightly on what else is in the batch. Use them with ``views.length`` set (every series
resampled to one length) or ``eval.batch_size=1`` where that matters.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from gsg_multimodal.errors import UserError

from .series import SeriesBatch


@dataclass
class TimeSeriesEncoderConfig:
    """The ``encoder`` config section."""

    name: Literal["dilated_cnn", "inception_time", "resnet"] = "dilated_cnn"
    hidden: int = 64  # dilated_cnn width
    depth: int = 6  # dilated_cnn residual blocks (dilations 1, 2, ..., 2**(depth-1))
    kernel_size: int = 3
    out_dim: int = 128  # dilated_cnn feature width; tsai backbones have their own (4*nf and 2*nf)
    dropout: float = 0.0  # on the pooled features, like TS2Vec's representation dropout
    nf: int = 32  # tsai models' filter count
    # Over valid steps only. max is TS2Vec's; mean+max concatenates both (twice the width).
    pooling: Literal["max", "mean", "mean+max"] = "max"
    # dilated_cnn only: "batch" puts a BatchNorm after each convolution of a block (statistics over the
    # valid steps of the batch). TS2Vec's encoder has none; SimSiam and BYOL were built on backbones with it.
    norm: Literal["none", "batch"] = "none"

    def __post_init__(self) -> None:
        for key in ("hidden", "depth", "kernel_size", "out_dim", "nf"):
            if getattr(self, key) < 1:
                raise UserError(f"encoder.{key}={getattr(self, key)!r} must be at least 1; fix it in the config")
        if not 0 <= self.dropout < 1:
            raise UserError(f"encoder.dropout={self.dropout!r} must be in [0, 1); fix it in the config")
        if self.norm != "none" and self.name != "dilated_cnn":
            raise UserError(
                f"encoder.norm={self.norm!r} applies to dilated_cnn only ({self.name} has its own BatchNorm); "
                "remove it from the config"
            )


class _MaskedBatchNorm1d(nn.BatchNorm1d):
    """BatchNorm over batch and time whose training statistics count the valid steps only.

    Padding must neither shift a batch's statistics nor change what a series' own steps become,
    so the mean and variance are taken over the ``mask``'s steps; in eval mode it is the usual
    per-channel affine map with the running statistics.
    """

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:  # type: ignore[override]
        if mask is None or not self.training:
            return super().forward(x)
        count = mask.sum()
        mean = (x * mask).sum((0, 2)) / count
        var = (((x - mean[None, :, None]) * mask) ** 2).sum((0, 2)) / count
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked += 1
                m = self.momentum
                self.running_mean.mul_(1 - m).add_(m * mean)
                self.running_var.mul_(1 - m).add_(m * var * count / (count - 1).clamp(min=1))
        out = (x - mean[None, :, None]) * torch.rsqrt(var + self.eps)[None, :, None]
        return out * self.weight[None, :, None] + self.bias[None, :, None]


class _DilatedBlock(nn.Module):
    """TS2Vec's residual block: GELU -> dilated conv -> GELU -> dilated conv, plus a (projected) skip;
    with ``norm``, a BatchNorm after each convolution."""

    def __init__(self, c_in: int, c_out: int, kernel_size: int, dilation: int, norm: bool = False) -> None:
        super().__init__()
        self.conv1 = nn.Conv1d(c_in, c_out, kernel_size, padding="same", dilation=dilation)
        self.conv2 = nn.Conv1d(c_out, c_out, kernel_size, padding="same", dilation=dilation)
        self.skip = nn.Conv1d(c_in, c_out, 1) if c_in != c_out else nn.Identity()
        self.norm1 = _MaskedBatchNorm1d(c_out) if norm else None
        self.norm2 = _MaskedBatchNorm1d(c_out) if norm else None

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """``x`` is zero at padded steps; ``mask [N, 1, L]`` (float) keeps it so inside and at the output."""
        h = self.conv1(F.gelu(x))  # gelu(0) = 0: the padded input steps are still zero here
        if self.norm1 is not None:
            h = self.norm1(h, mask)
        h = F.gelu(h)
        if mask is not None:
            h = h * mask  # conv1's bias made the padded steps non-zero; conv2 must read zeros there
        h = self.conv2(h)
        if self.norm2 is not None:
            h = self.norm2(h, mask)
        out = self.skip(x) + h
        return out if mask is None else out * mask


class _MaskedSequential(nn.Sequential):
    """The dilated CNN's layers (same state-dict keys as a plain ``nn.Sequential``), padding kept at zero."""

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:  # type: ignore[override]
        proj, *blocks = self
        x = proj(x)
        if mask is not None:
            x = x * mask
        for block in blocks:
            x = block(x, mask)
        return x


def dilated_cnn(channels: int, cfg: TimeSeriesEncoderConfig) -> tuple[nn.Module, int]:
    """Body ``[N, C, L] -> [N, out_dim, L]``; doubling dilations give a receptive field of
    ``1 + 2 (kernel_size - 1) (2**depth - 1)`` steps (253 for depth 6) at constant cost per step."""
    widths = [cfg.hidden] * (cfg.depth - 1) + [cfg.out_dim]
    blocks = [nn.Conv1d(channels, cfg.hidden, 1)]  # TS2Vec's input projection, per time step
    norm = cfg.norm == "batch"
    blocks += [_DilatedBlock(cfg.hidden, c_out, cfg.kernel_size, 2**i, norm) for i, c_out in enumerate(widths)]
    return _MaskedSequential(*blocks), cfg.out_dim


def _tsai_backbone(channels: int, cfg: TimeSeriesEncoderConfig) -> tuple[nn.Module, int]:
    # Imported here: any tsai module takes ~8 s to import, and only these two runs need it.
    # Only the model modules: `tsai.all` fails with our pins (see shared/ENVIRONMENT.md).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # fastai's torch.jit.script deprecation, not ours
        if cfg.name == "inception_time":
            from tsai.models.InceptionTimePlus import InceptionTimePlus as arch
        else:
            from tsai.models.ResNetPlus import ResNetPlus as arch
    # The classification head (pooling + linear to c_out classes) is dropped: self-supervised
    # pretraining wants the features before it, and the projector/probes supply their own heads.
    model = arch(channels, 1, nf=cfg.nf)
    return model.backbone, model.head_nf


class TimeSeriesEncoder(nn.Module):
    """A convolutional body ``[N, C, L] -> [N, W, L]`` followed by global pooling over the valid steps."""

    def __init__(self, body: nn.Module, channels: int, width: int, pooling: str, dropout: float) -> None:
        super().__init__()
        self.body, self.in_channels, self.pooling = body, channels, pooling
        self.dropout = nn.Dropout(dropout)
        self.width = width
        self.sequence_dim = width  # encode_sequence's per-step width (the contract of sequence objectives)
        self.out_dim = width * (2 if pooling == "mean+max" else 1)

    def _run(self, x: torch.Tensor | SeriesBatch) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Body features ``[N, W, T]`` (zero at padded steps) and the valid-step mask ``[N, T]`` (None: all valid)."""
        batch = x if isinstance(x, SeriesBatch) else None
        t = batch.x if batch is not None else x
        if not isinstance(t, torch.Tensor) or t.ndim != 3 or t.shape[1] != self.in_channels:
            got = f"{t.shape[1]} channels" if isinstance(t, torch.Tensor) and t.ndim == 3 else f"shape {tuple(t.shape)}"
            raise UserError(
                f"input has {got} but the encoder was built for {self.in_channels} channels [N, C, L]; "
                "use data with that many channels or pretrain a new encoder on this data"
            )
        valid = None
        if batch is not None and bool((batch.lengths < t.shape[-1]).any()):
            valid = batch.mask()
        if isinstance(self.body, _MaskedSequential):
            m = None if valid is None else valid[:, None, :].to(t.dtype)
            return self.body(t if m is None else t * m, m), valid
        h = self.body(t)  # tsai: convolutions and BatchNorm see the padding (see the module docstring)
        if valid is not None and h.shape[-1] != t.shape[-1]:
            valid = None  # a body that changes the length: no step-wise mask to apply, pool over everything
        return (h if valid is None else h * valid[:, None, :].to(h.dtype)), valid

    def encode_sequence(self, x: torch.Tensor | SeriesBatch) -> torch.Tensor:
        """Per-step features ``[N, T, W]``, zero at padded steps (no pooling, no dropout)."""
        h, _ = self._run(x)
        return h.transpose(1, 2)

    def forward(self, x: torch.Tensor | SeriesBatch) -> torch.Tensor:
        h, valid = self._run(x)
        feats = []
        if self.pooling in ("mean", "mean+max"):
            if valid is None:
                feats.append(h.mean(2))
            else:  # padded steps are zero: their sum over valid steps / the valid count
                feats.append(h.sum(2) / valid.sum(1, keepdim=True).to(h.dtype))
        if self.pooling in ("max", "mean+max"):
            feats.append(h.amax(2) if valid is None else h.masked_fill(~valid[:, None, :], float("-inf")).amax(2))
        return self.dropout(feats[0] if len(feats) == 1 else torch.cat(feats, 1))


def build_encoder(cfg: TimeSeriesEncoderConfig, info: dict[str, Any]) -> TimeSeriesEncoder:
    """The configured encoder for series with ``info["channels"]`` channels; exposes ``out_dim``."""
    channels = int(info["channels"])
    body, width = dilated_cnn(channels, cfg) if cfg.name == "dilated_cnn" else _tsai_backbone(channels, cfg)
    return TimeSeriesEncoder(body, channels, width, cfg.pooling, cfg.dropout)
