"""The log-mel front end: waveform ``[N, L]`` -> log-mel ``[N, n_mels, frames]`` with torchaudio."""

from __future__ import annotations

from typing import Protocol

import torch
from torch import nn


class MelSettings(Protocol):
    """The settings the front end reads (``AudioDataConfig`` has them), so this module needs no data code."""

    sample_rate: int
    n_fft: int
    hop_length: int
    f_min: float
    f_max: float | None
    n_mels: int


# BYOL-A's floor inside the log: float32 epsilon. Digital silence maps to log(eps) = -15.9,
# a constant, so silent clips and zero padding stay finite.
LOG_EPS = torch.finfo(torch.float32).eps


class LogMel(nn.Module):
    """torchaudio's ``MelSpectrogram`` (power 2, centred frames) followed by ``log(x + eps)``."""

    def __init__(self, cfg: MelSettings) -> None:
        super().__init__()
        import torchaudio

        self.hop_length = cfg.hop_length
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=cfg.sample_rate,
            n_fft=cfg.n_fft,
            win_length=cfg.n_fft,
            hop_length=cfg.hop_length,
            f_min=cfg.f_min,
            f_max=cfg.f_max,
            n_mels=cfg.n_mels,
            power=2.0,
            center=True,
        )

    def frames(self, samples: torch.Tensor | int) -> torch.Tensor | int:
        """Frames computed from ``samples`` samples (centred STFT: one more than the hops)."""
        return samples // self.hop_length + 1

    def power(self, wave: torch.Tensor) -> torch.Tensor:
        """Mel power ``[N, F, frames(L)]`` of ``[N, L]``; zeros appended first so that a clip's last frames
        see silence after it, not the reflection the centred STFT pads with: a clip's frames then do not
        depend on how long the other clips of its batch are."""
        half = self.mel.spectrogram.n_fft // 2
        return self.mel(torch.nn.functional.pad(wave.float(), (0, half)))[..., : wave.shape[-1] // self.hop_length + 1]

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        return (self.power(wave) + LOG_EPS).log()
