"""Encoders mapping series ``[N, C, L]`` to features ``[N, D]``.

``dilated_cnn`` is our own small encoder after TS2Vec's (Yue et al. 2022); ``inception_time`` and
``resnet`` are tsai's InceptionTimePlus / ResNetPlus backbones. All share one wrapper that checks
the channel count and pools over time, so every encoder works for any length and returns
``[N, out_dim]``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from gsg_multimodal.errors import UserError


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
    pooling: Literal["mean", "mean+max"] = "mean"  # mean+max concatenates both: twice the width

    def __post_init__(self) -> None:
        for key in ("hidden", "depth", "kernel_size", "out_dim", "nf"):
            if getattr(self, key) < 1:
                raise UserError(f"encoder.{key}={getattr(self, key)!r} must be at least 1; fix it in the config")
        if not 0 <= self.dropout < 1:
            raise UserError(f"encoder.dropout={self.dropout!r} must be in [0, 1); fix it in the config")


class _DilatedBlock(nn.Module):
    """TS2Vec's residual block: GELU -> dilated conv -> GELU -> dilated conv, plus a (projected) skip."""

    def __init__(self, c_in: int, c_out: int, kernel_size: int, dilation: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv1d(c_in, c_out, kernel_size, padding="same", dilation=dilation)
        self.conv2 = nn.Conv1d(c_out, c_out, kernel_size, padding="same", dilation=dilation)
        self.skip = nn.Conv1d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.skip(x) + self.conv2(F.gelu(self.conv1(F.gelu(x))))


def dilated_cnn(channels: int, cfg: TimeSeriesEncoderConfig) -> tuple[nn.Module, int]:
    """Body ``[N, C, L] -> [N, out_dim, L]``; doubling dilations give a receptive field of
    ``1 + 2 (kernel_size - 1) (2**depth - 1)`` steps (253 for the defaults) at constant cost per step."""
    widths = [cfg.hidden] * (cfg.depth - 1) + [cfg.out_dim]
    blocks = [nn.Conv1d(channels, cfg.hidden, 1)]  # TS2Vec's input projection, per time step
    blocks += [_DilatedBlock(cfg.hidden, c_out, cfg.kernel_size, 2**i) for i, c_out in enumerate(widths)]
    return nn.Sequential(*blocks), cfg.out_dim


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
    """A convolutional body ``[N, C, L] -> [N, W, L]`` followed by global pooling over time."""

    def __init__(self, body: nn.Module, channels: int, width: int, pooling: str, dropout: float) -> None:
        super().__init__()
        self.body, self.in_channels, self.pooling = body, channels, pooling
        self.dropout = nn.Dropout(dropout)
        self.out_dim = width * (2 if pooling == "mean+max" else 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 3 or x.shape[1] != self.in_channels:
            got = f"{x.shape[1]} channels" if x.ndim == 3 else f"shape {tuple(x.shape)}"
            raise UserError(
                f"input has {got} but the encoder was built for {self.in_channels} channels [N, C, L]; "
                "use data with that many channels or pretrain a new encoder on this data"
            )
        h = self.body(x)
        feats = h.mean(2) if self.pooling == "mean" else torch.cat([h.mean(2), h.amax(2)], 1)
        return self.dropout(feats)


def build_encoder(cfg: TimeSeriesEncoderConfig, info: dict[str, Any]) -> TimeSeriesEncoder:
    """The configured encoder for series with ``info["channels"]`` channels; exposes ``out_dim``."""
    channels = int(info["channels"])
    body, width = dilated_cnn(channels, cfg) if cfg.name == "dilated_cnn" else _tsai_backbone(channels, cfg)
    return TimeSeriesEncoder(body, channels, width, cfg.pooling, cfg.dropout)
