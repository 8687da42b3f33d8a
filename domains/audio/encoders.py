"""Audio encoders: a BYOL-A style log-mel CNN, or the time-series domain's 1-D encoders on the raw waveform.

``byola_cnn`` follows BYOL-A's AudioNTT2020 encoder (Niizumi et al. 2021): ``blocks`` x (3x3 conv, batch
norm, ReLU, 2x2 max-pool) on the log-mel ``[N, 1, F, T]``, every frame's ``channels x F'`` values through a
two-layer MLP, then the max and the mean over time added together (``pooling: mean+max``) or the mean
alone. ``dilated_cnn`` / ``inception_time`` / ``resnet`` are ``gsg_domains.timeseries.encoders`` applied to the
waveform as a one-channel series ``[N, 1, samples]``, so the two domains' encoders can be compared and
their weights moved between them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn

from gsg_multimodal.errors import UserError

WAVEFORM_ENCODERS = ("dilated_cnn", "inception_time", "resnet")


@dataclass
class AudioEncoderConfig:
    """The ``encoder`` section. ``byola_cnn`` reads log-mels; the others read waveforms."""

    name: Literal["byola_cnn", "dilated_cnn", "inception_time", "resnet"] = "byola_cnn"
    channels: int = 64  # byola_cnn conv width (BYOL-A: 64)
    blocks: int = 3  # byola_cnn conv blocks; each halves frequency and time
    out_dim: int = 512  # byola_cnn MLP width = feature width (BYOL-A: 512-2048); dilated_cnn's feature width
    dropout: float = 0.3  # byola_cnn: inside the MLP (BYOL-A: 0.3); waveform encoders: on the features
    pooling: Literal["mean+max", "mean"] = "mean+max"  # byola_cnn adds them; waveform encoders concatenate
    hidden: int = 32  # dilated_cnn width
    depth: int = 6  # dilated_cnn residual blocks
    kernel_size: int = 3  # dilated_cnn
    nf: int = 32  # tsai encoders' filter count

    def __post_init__(self) -> None:
        for key in ("channels", "blocks", "out_dim", "hidden", "depth", "kernel_size", "nf"):
            if getattr(self, key) < 1:
                raise UserError(f"encoder.{key}={getattr(self, key)!r} must be at least 1; fix it in the config")
        if not 0 <= self.dropout < 1:
            raise UserError(f"encoder.dropout={self.dropout!r} must be in [0, 1); fix it in the config")

    @property
    def waveform(self) -> bool:
        return self.name in WAVEFORM_ENCODERS


class LogMelCNN(nn.Module):
    """BYOL-A's AudioNTT2020 shape: conv blocks -> per-frame MLP -> mean (+ max) over time."""

    def __init__(self, n_mels: int, cfg: AudioEncoderConfig) -> None:
        super().__init__()
        if n_mels < 2**cfg.blocks:
            raise UserError(
                f"data.n_mels={n_mels} is too few for encoder.blocks={cfg.blocks} (each halves the mel axis); "
                f"use at least {2**cfg.blocks} mel bands or fewer blocks"
            )
        layers: list[nn.Module] = []
        for i in range(cfg.blocks):
            layers += [
                nn.Conv2d(1 if i == 0 else cfg.channels, cfg.channels, 3, padding=1),
                nn.BatchNorm2d(cfg.channels),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
            ]
        self.features = nn.Sequential(*layers)
        self.n_mels, self.min_frames, self.pooling = n_mels, 2**cfg.blocks, cfg.pooling
        flat = cfg.channels * (n_mels // 2**cfg.blocks)
        self.fc = nn.Sequential(
            nn.Linear(flat, cfg.out_dim),
            nn.ReLU(inplace=True),
            nn.Dropout(cfg.dropout),
            nn.Linear(cfg.out_dim, cfg.out_dim),
            nn.ReLU(inplace=True),
        )
        self.out_dim = cfg.out_dim

    def frame_features(self, x: torch.Tensor) -> torch.Tensor:
        """Per-frame features ``[N, T', out_dim]`` (T' = T / 2**blocks) of log-mels ``[N, 1, F, T]``."""
        if x.ndim != 4 or x.shape[1] != 1 or x.shape[2] != self.n_mels:
            raise UserError(
                f"input has shape {tuple(x.shape)} but the encoder reads log-mels [N, 1, {self.n_mels}, frames]; "
                "use the same front end (data.n_mels) as the pretraining run"
            )
        if x.shape[3] < self.min_frames:
            raise UserError(
                f"input has {x.shape[3]} frames, fewer than the {self.min_frames} the encoder's pooling needs; "
                "lengthen views.crop_seconds"
            )
        h = self.features(x)  # [N, C, F', T']
        h = h.permute(0, 3, 1, 2).flatten(2)  # [N, T', C * F']: each frame's whole spectrum-of-channels
        return self.fc(h)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.frame_features(x)
        return h.mean(1) + h.amax(1) if self.pooling == "mean+max" else h.mean(1)


def build_encoder(cfg: AudioEncoderConfig, info: dict[str, Any]) -> nn.Module:
    """The configured encoder for data described by ``info``; exposes ``out_dim``."""
    if not cfg.waveform:
        return LogMelCNN(int(info["n_mels"]), cfg)
    from gsg_domains.timeseries.encoders import TimeSeriesEncoderConfig
    from gsg_domains.timeseries.encoders import build_encoder as build_series_encoder

    series_cfg = TimeSeriesEncoderConfig(
        name=cfg.name,
        hidden=cfg.hidden,
        depth=cfg.depth,
        kernel_size=cfg.kernel_size,
        out_dim=cfg.out_dim,
        dropout=cfg.dropout,
        nf=cfg.nf,
        pooling=cfg.pooling,
    )
    return build_series_encoder(series_cfg, {"channels": 1})
