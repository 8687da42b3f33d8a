"""Audio views in the spirit of BYOL-A (Niizumi et al. 2021) and SpecAugment (Park et al. 2019).

A view of a clip: a random window of ``crop_seconds`` (shifted up to ``shift_seconds`` past either
edge, silence filling the gap), a random gain, optional noise at a random SNR, then the normalised
log-mel, log-mixup-exp with another clip of the batch, a random resized crop of the log-mel and
frequency / time masks. The waveform encoders get the same waveform steps, with a plain linear
mix instead of log-mixup-exp. Everything is vectorised over the batch on its device, and every
random number comes from the caller's ``torch.Generator``; torchaudio's ``FrequencyMasking`` /
``TimeMasking`` and ``mask_along_axis_iid`` draw from the global RNG, so the masks are written here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from gsg_multimodal.errors import UserError


@dataclass
class AudioViewsConfig:
    """The ``views`` section; each ``*_p`` is a per-sample probability."""

    crop_seconds: float = 1.0  # every view and eval input is this long (shorter clips are padded with silence)
    shift_seconds: float = 0.1
    gain_db: float = 6.0  # uniform in [-gain_db, +gain_db]
    noise_p: float = 0.3
    noise_snr_db: tuple[float, float] = (10.0, 40.0)
    mixup_p: float = 1.0
    mixup_ratio: float = 0.4  # BYOL-A: the other clip's weight ~ U(0, 0.4)
    rrc_p: float = 1.0
    rrc_canvas: tuple[float, float] = (1.0, 1.5)  # BYOL-A's virtual crop: (frequency, time) canvas / input
    rrc_scale: tuple[float, float] = (0.6, 1.5)  # crop size / input size, drawn per axis
    freq_mask_p: float = 0.5
    freq_mask_bins: int = 8  # SpecAugment's F: width ~ U{1..F}
    time_mask_p: float = 0.5
    time_mask_frames: int = 10  # SpecAugment's T

    def __post_init__(self) -> None:
        self.noise_snr_db = tuple(self.noise_snr_db)
        self.rrc_canvas = tuple(self.rrc_canvas)
        self.rrc_scale = tuple(self.rrc_scale)

        def check(key: str, ok: bool, what: str) -> None:
            if not ok:
                raise UserError(f"views.{key}={getattr(self, key)!r} must be {what}; fix it in the config's views")

        check("crop_seconds", self.crop_seconds > 0, "positive")
        for key in ("shift_seconds", "gain_db", "mixup_ratio", "freq_mask_bins", "time_mask_frames"):
            check(key, getattr(self, key) >= 0, "at least 0")
        check("mixup_ratio", self.mixup_ratio < 1, "below 1")
        for key in ("noise_p", "mixup_p", "rrc_p", "freq_mask_p", "time_mask_p"):
            check(key, 0 <= getattr(self, key) <= 1, "between 0 and 1")
        lo, hi = (self.noise_snr_db + (None, None))[:2]
        check("noise_snr_db", len(self.noise_snr_db) == 2 and lo <= hi, "[min, max] in dB")
        check("rrc_canvas", len(self.rrc_canvas) == 2 and min(self.rrc_canvas) >= 1, "[freq, time], each >= 1")
        s = self.rrc_scale
        check("rrc_scale", len(s) == 2 and 0 < s[0] <= s[1], "[min, max] with 0 < min <= max")


def crop_samples(cfg: AudioViewsConfig, sample_rate: int) -> int:
    return max(1, int(round(cfg.crop_seconds * sample_rate)))


def collate_audio(rows: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
    """Rows -> ``{"x": [N, Lmax] zero-padded, "lengths": [N], "label": [N] if every row has one}``."""
    clips = [np.asarray(r["audio"], dtype=np.float32) for r in rows]
    lengths = np.array([len(c) for c in clips], dtype=np.int64)
    x = np.zeros((len(clips), max(1, int(lengths.max()))), dtype=np.float32)
    for i, c in enumerate(clips):
        x[i, : len(c)] = c
    batch = {"x": torch.from_numpy(x), "lengths": torch.from_numpy(lengths)}
    if all("label" in r for r in rows):
        batch["label"] = torch.tensor([r["label"] for r in rows], dtype=torch.int64)
    return batch


def window(x: torch.Tensor, lengths: torch.Tensor, start: torch.Tensor, size: int) -> torch.Tensor:
    """Samples ``start[i] .. start[i] + size`` of each clip ``[N, L]``; positions outside the clip are silence."""
    idx = start[:, None] + torch.arange(size, device=x.device)
    inside = (idx >= 0) & (idx < lengths[:, None])
    return x.gather(1, idx.clamp(0, x.shape[1] - 1)) * inside


def _uniform(n: int, lo: float, hi: float, g: torch.Generator, dev: torch.device) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=g, device=dev)


def _chance(n: int, p: float, g: torch.Generator, dev: torch.device) -> torch.Tensor:
    return torch.rand(n, generator=g, device=dev) < p


def random_waveform(
    x: torch.Tensor, lengths: torch.Tensor, cfg: AudioViewsConfig, size: int, sample_rate: int, g: torch.Generator
) -> torch.Tensor:
    """Random window (time shift), gain and noise: ``[N, L]`` -> ``[N, size]``."""
    n, dev = x.shape[0], x.device
    start = _window_start(lengths, size, int(round(cfg.shift_seconds * sample_rate)), g)
    w = window(x, lengths, start, size)
    if cfg.gain_db > 0:
        w = w * 10 ** (_uniform(n, -cfg.gain_db, cfg.gain_db, g, dev) / 20)[:, None]
    if cfg.noise_p > 0:
        # Noise relative to the window's own RMS, so a silent window stays silent (nothing to mask).
        rms = w.pow(2).mean(1).sqrt()
        snr = _uniform(n, *cfg.noise_snr_db, g, dev)
        level = rms / 10 ** (snr / 20) * _chance(n, cfg.noise_p, g, dev)
        w = w + level[:, None] * torch.randn(w.shape, generator=g, device=dev)
    return w


def _mix_partner(n: int, g: torch.Generator, dev: torch.device) -> torch.Tensor:
    """Another clip of the batch for each clip (a random rotation of a permutation: never itself when n > 1)."""
    perm = torch.randperm(n, generator=g, device=dev)
    partner = torch.empty_like(perm)
    partner[perm] = perm.roll(1)
    return partner


def _mix_weight(n: int, cfg: AudioViewsConfig, g: torch.Generator, dev: torch.device) -> torch.Tensor:
    return _uniform(n, 0.0, cfg.mixup_ratio, g, dev) * _chance(n, cfg.mixup_p, g, dev)


def log_mixup_exp(m: torch.Tensor, cfg: AudioViewsConfig, g: torch.Generator) -> torch.Tensor:
    """``log((1 - a) exp(m) + a exp(m_other))`` per clip, with ``a ~ U(0, mixup_ratio)`` (BYOL-A)."""
    n, dev = m.shape[0], m.device
    other = m[_mix_partner(n, g, dev)]
    a = _mix_weight(n, cfg, g, dev).view(n, *[1] * (m.ndim - 1))
    # logaddexp avoids exp overflow; a = 0 gives log(0) = -inf on the other side, i.e. m itself.
    return torch.logaddexp(m + torch.log1p(-a), other + a.log())


def random_resized_crop(m: torch.Tensor, cfg: AudioViewsConfig, g: torch.Generator) -> torch.Tensor:
    """BYOL-A's random resized crop of ``[N, 1, F, T]``: a crop of a canvas around the input, resized back.

    One ``affine_grid`` + ``grid_sample`` call does every sample's own crop (bilinear, where BYOL-A uses
    bicubic: cheaper and without overshoot); the canvas outside the input is 0, the normalised mean.
    """
    n, dev = m.shape[0], m.device
    if cfg.rrc_p == 0:
        return m
    theta = torch.zeros(n, 2, 3, device=dev)
    # grid_sample coordinates: x is time (last axis), y is frequency; the input spans [-1, 1].
    for row, canvas in ((0, cfg.rrc_canvas[1]), (1, cfg.rrc_canvas[0])):
        half = _uniform(n, *cfg.rrc_scale, g, dev).clamp(max=canvas)  # crop half-size in input half-sizes
        centre = _uniform(n, 0.0, 1.0, g, dev) * 2 * (canvas - half) - (canvas - half)
        theta[:, row, row] = half
        theta[:, row, 2] = centre
    chosen = _chance(n, cfg.rrc_p, g, dev)
    grid = F.affine_grid(theta, list(m.shape), align_corners=False)
    out = F.grid_sample(m, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return torch.where(chosen[:, None, None, None], out, m)  # the others exactly as they were


def _band_mask(n: int, size: int, max_width: int, p: float, g: torch.Generator, dev: torch.device) -> torch.Tensor:
    """One band of width ~ U{1..max_width} at a random place per chosen sample: bool ``[N, size]``."""
    width = 1 + (torch.rand(n, generator=g, device=dev) * min(max_width, size)).long()
    begin = (torch.rand(n, generator=g, device=dev) * (size - width + 1)).long()
    pos = torch.arange(size, device=dev)
    hit = (pos >= begin[:, None]) & (pos < (begin + width)[:, None])
    return hit & _chance(n, p, g, dev)[:, None]


def spec_masks(m: torch.Tensor, cfg: AudioViewsConfig, g: torch.Generator) -> torch.Tensor:
    """SpecAugment: one frequency band and one time span set to 0 (the normalised mean), each with its p."""
    n, _, f, t = m.shape
    if cfg.freq_mask_p > 0 and cfg.freq_mask_bins > 0:
        m = m.masked_fill(_band_mask(n, f, cfg.freq_mask_bins, cfg.freq_mask_p, g, m.device)[:, None, :, None], 0.0)
    if cfg.time_mask_p > 0 and cfg.time_mask_frames > 0:
        m = m.masked_fill(_band_mask(n, t, cfg.time_mask_frames, cfg.time_mask_p, g, m.device)[:, None, None, :], 0.0)
    return m


def _window_start(lengths: torch.Tensor, size: int, shift: int, g: torch.Generator) -> torch.Tensor:
    """Random window starts: anywhere inside a long clip widened by ``shift`` on both sides; a clip
    shorter than the window starts within ``shift`` of it (before or after), silence filling the rest."""
    hi = (lengths - size).clamp(min=0) + shift
    u = torch.rand(lengths.shape[0], generator=g, device=lengths.device)
    return (-shift + u * (hi + shift + 1)).floor().long().minimum(hi)


def random_logmel(
    power: torch.Tensor, frames: torch.Tensor, cfg: AudioViewsConfig, width: int, hop_s: float, g: torch.Generator
) -> torch.Tensor:
    """Random window (time shift), gain and noise on the mel power ``[N, F, T]`` of whole clips -> ``[N, F, width]``.

    Working on the batch's mel power, computed once, instead of one STFT per view: a gain is a factor on
    the power, and noise is a flat floor in mel power at a random SNR to the window's mean power (the
    expected power of added noise; its frame-to-frame fluctuation is left out). A silent window stays silent.
    """
    n, f, t = power.shape
    dev = power.device
    start = _window_start(frames, width, int(round(cfg.shift_seconds / hop_s)), g)
    idx = start[:, None] + torch.arange(width, device=dev)
    inside = (idx >= 0) & (idx < frames[:, None])
    p = power.gather(2, idx.clamp(0, t - 1)[:, None, :].expand(n, f, width)) * inside[:, None, :]
    if cfg.gain_db > 0:
        p = p * 10 ** (_uniform(n, -cfg.gain_db, cfg.gain_db, g, dev) / 10)[:, None, None]
    if cfg.noise_p > 0:
        snr = _uniform(n, *cfg.noise_snr_db, g, dev)
        level = p.mean((1, 2)) / 10 ** (snr / 10) * _chance(n, cfg.noise_p, g, dev)
        p = p + level[:, None, None]
    return p


class Views:
    """Makes views and eval inputs for one front end, normalisation and encoder input kind."""

    def __init__(self, cfg: AudioViewsConfig, data_cfg: Any, info: dict[str, Any], waveform: bool) -> None:
        self.cfg, self.data_cfg, self.waveform = cfg, data_cfg, waveform
        self.sample_rate = int(info["sample_rate"])
        self.size = crop_samples(cfg, self.sample_rate)
        self.width = frames_per_view(cfg, data_cfg)
        self.mean, self.std = float(info["logmel_mean"]), float(info["logmel_std"])
        self.wave_std = float(info["wave_std"])
        self._frontends: dict[torch.device, torch.nn.Module] = {}

    def mel_power(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Mel power ``[N, F, T]`` of every whole clip of the batch and each clip's frame count, on its device."""
        from .frontend import LogMel

        x = batch["x"].float()
        if x.device not in self._frontends:  # the mel filterbank is a buffer: one copy per device
            self._frontends[x.device] = LogMel(self.data_cfg).to(x.device)
        frontend = self._frontends[x.device]
        with torch.no_grad():
            power = frontend.power(x)
        return power, frontend.frames(batch["lengths"].to(x.device))

    def normalise(self, power: torch.Tensor) -> torch.Tensor:
        from .frontend import LOG_EPS

        return (((power + LOG_EPS).log() - self.mean) / self.std)[:, None]  # [N, 1, F, T]

    def make_views(self, batch: dict[str, torch.Tensor], n_views: int, g: torch.Generator) -> list[torch.Tensor]:
        if self.waveform:
            x = batch["x"].float()
            lengths = batch["lengths"].to(x.device)
            views = []
            for _ in range(n_views):
                w = random_waveform(x, lengths, self.cfg, self.size, self.sample_rate, g)
                other = w[_mix_partner(len(w), g, w.device)]
                a = _mix_weight(len(w), self.cfg, g, w.device)[:, None]
                views.append((((1 - a) * w + a * other) / self.wave_std)[:, None])
            return views
        power, frames = self.mel_power(batch)
        hop_s = self.data_cfg.hop_length / self.sample_rate
        views = []
        for _ in range(n_views):
            m = self.normalise(random_logmel(power, frames, self.cfg, self.width, hop_s, g))
            m = log_mixup_exp(m, self.cfg, g)
            views.append(spec_masks(random_resized_crop(m, self.cfg, g), self.cfg, g))
        return views

    def eval_input(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The first ``crop_seconds`` of each clip (silence after its end): drums and words start at the onset."""
        x = batch["x"].float()
        lengths = batch["lengths"].to(x.device)
        if self.waveform:
            return (window(x, lengths, torch.zeros_like(lengths), self.size) / self.wave_std)[:, None]
        power, frames = self.mel_power(batch)
        width = self.width
        if power.shape[2] < width:  # every clip of the batch is shorter than the window
            power = torch.nn.functional.pad(power, (0, width - power.shape[2]))
        inside = torch.arange(width, device=x.device) < frames[:, None]
        return self.normalise(power[:, :, :width] * inside[:, None, :])


def frames_per_view(cfg: AudioViewsConfig, data_cfg: Any) -> int:
    """Log-mel frames of one view: those of a ``crop_seconds`` clip (centred STFT)."""
    return crop_samples(cfg, data_cfg.sample_rate) // data_cfg.hop_length + 1


def check_crop(cfg: AudioViewsConfig, data_cfg: Any) -> None:
    if crop_samples(cfg, data_cfg.sample_rate) < data_cfg.n_fft // 2 + 1:
        raise UserError(
            f"views.crop_seconds={cfg.crop_seconds} is shorter than half a front-end window "
            f"({data_cfg.win_ms / 2:g} ms); lengthen the crop or shorten data.win_ms"
        )
