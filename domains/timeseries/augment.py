"""Batching, resampling and random views of series ``[channels, time]``.

The augmentation set is the one the time-series literature converged on:
Um et al. 2017, "Data augmentation of wearable sensor data for Parkinson's disease monitoring
using CNNs" (jitter, scaling, magnitude warp, time warp, permutation, cropping); TS2Vec (Yue et
al. 2022), whose random cropping and timestamp masking are its only augmentations; and TS-TCC
(Eldele et al. 2021), whose weak view is jitter + scaling and strong view permutation + jitter.

Defaults assume series z-normalised per channel (unit std), so sigmas are fractions of the
signal's spread. The crop and the two warps carry most of the invariance (where and how fast a
pattern happens); noise and scaling stay mild (3 % and 10 % of the std, about Um et al.'s values)
because the fine shape of a curve is often what separates UCR classes. Permutation and sign flip
are off: both destroy information (temporal order, direction of motion) that many sensor classes
are defined by; turn them on for data where it is not.

Everything after ``collate_series`` is vectorised torch code, so views can be made on the
training device, every random draw taken from the caller's ``torch.Generator``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from gsg_multimodal.errors import UserError


@dataclass
class TimeSeriesViewsConfig:
    """Augmentations of the ``views`` config section; each ``*_p`` is a per-sample probability."""

    length: int | None = None  # steps of every view and eval input; None = data's max length capped below
    max_auto_length: int = 512
    crop_scale: tuple[float, float] = (0.5, 1.0)  # fraction of the valid length kept by the crop
    jitter_sigma: float = 0.03
    scaling_sigma: float = 0.1  # per-channel factor ~ N(1, sigma)
    magnitude_warp_sigma: float = 0.2
    magnitude_warp_knots: int = 4
    magnitude_warp_p: float = 0.5
    time_warp_sigma: float = 0.2
    time_warp_knots: int = 4
    time_warp_p: float = 0.5
    mask_p: float = 0.5
    mask_max_fraction: float = 0.1  # one contiguous segment, all channels, set to 0
    permute_p: float = 0.0
    permute_segments: int = 4
    flip_p: float = 0.0

    def __post_init__(self) -> None:
        self.crop_scale = tuple(self.crop_scale)  # a YAML list is fine too

        def check(name: str, ok: bool, what: str) -> None:
            if not ok:
                value = getattr(self, name)
                raise UserError(f"views.{name}={value!r} must be {what}; fix it in the config's views section")

        check("length", self.length is None or self.length >= 2, "at least 2 (or null for automatic)")
        check("max_auto_length", self.max_auto_length >= 2, "at least 2")
        lo_hi = self.crop_scale
        check("crop_scale", len(lo_hi) == 2 and 0 < lo_hi[0] <= lo_hi[1] <= 1, "[min, max] with 0 < min <= max <= 1")
        for name in ("jitter_sigma", "scaling_sigma", "magnitude_warp_sigma", "time_warp_sigma"):
            check(name, getattr(self, name) >= 0, "a standard deviation >= 0")
        for name in ("magnitude_warp_p", "time_warp_p", "mask_p", "permute_p", "flip_p", "mask_max_fraction"):
            check(name, 0 <= getattr(self, name) <= 1, "between 0 and 1")
        for name in ("magnitude_warp_knots", "time_warp_knots"):
            check(name, getattr(self, name) >= 0, "a number of knots >= 0")
        check("permute_segments", self.permute_segments >= 1, "at least 1")


def resolve_length(cfg: TimeSeriesViewsConfig, info: dict[str, Any]) -> int:
    """The number of steps every view has: ``cfg.length``, else the data's longest series capped."""
    if cfg.length is not None:
        return cfg.length
    return max(2, min(int(info["max_length"]), cfg.max_auto_length))


def collate_series(rows: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
    """Rows -> ``{"x": [N, C, Lmax] zero-padded, "lengths": [N], "label": [N] if every row has one}``."""
    series = [np.asarray(r["series"], dtype=np.float32) for r in rows]
    lengths = np.array([r.get("length", s.shape[-1]) for r, s in zip(rows, series, strict=True)], dtype=np.int64)
    # One allocation and one copy per row: this runs in DataLoader workers for every batch.
    x = np.zeros((len(series), series[0].shape[0], int(lengths.max())), dtype=np.float32)
    for i, (s, n) in enumerate(zip(series, lengths, strict=True)):
        x[i, :, :n] = s[:, :n]
    batch = {"x": torch.from_numpy(x), "lengths": torch.from_numpy(lengths)}
    if all("label" in r for r in rows):
        batch["label"] = torch.tensor([r["label"] for r in rows], dtype=torch.int64)
    return batch


def _interp(x: torch.Tensor, lengths: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    """Linear interpolation of ``x [N, C, L]`` at float positions ``pos [N, P]`` inside each valid region."""
    last = (lengths.clamp(min=1) - 1).to(pos.dtype)[:, None]
    pos = torch.minimum(pos.clamp(min=0), last)
    lo = pos.floor()
    # hi is clamped too, so a position at the end never reads the padding after it.
    hi = torch.minimum(lo + 1, last)
    n, c, _ = x.shape
    x_lo = x.gather(2, lo.long()[:, None, :].expand(n, c, -1))
    x_hi = x.gather(2, hi.long()[:, None, :].expand(n, c, -1))
    return torch.lerp(x_lo, x_hi, (pos - lo)[:, None, :])  # weight 0 returns x_lo exactly


def resample(
    x: torch.Tensor, lengths: torch.Tensor, start: torch.Tensor, stop: torch.Tensor, out_len: int
) -> torch.Tensor:
    """Crop ``[start[i], stop[i]]`` (float positions) of each series and resize it to ``out_len`` steps."""
    x = x.float()
    start = torch.as_tensor(start, dtype=torch.float32, device=x.device)
    stop = torch.as_tensor(stop, dtype=torch.float32, device=x.device)
    j = torch.arange(out_len, dtype=torch.float32, device=x.device)
    # Multiply before dividing: integer spans then land exactly on the input's samples.
    pos = start[:, None] + (stop - start)[:, None] * j / max(out_len - 1, 1)
    return _interp(x, lengths.to(x.device), pos)


def eval_view(batch: dict[str, torch.Tensor], cfg: TimeSeriesViewsConfig, length: int) -> torch.Tensor:
    """The deterministic eval input: each whole series resampled to ``length`` steps."""
    lengths = batch["lengths"].to(batch["x"].device)
    return resample(batch["x"], lengths, torch.zeros_like(lengths), lengths - 1, length)


def _smooth_curve(
    n: int, rows: int, knots: int, length: int, sigma: float, g: torch.Generator, device: torch.device
) -> torch.Tensor:
    """Random curves ``[n, rows, length]`` through ``knots + 2`` points ~ N(1, sigma), linear in between."""
    points = 1 + sigma * torch.randn(n, rows, knots + 2, generator=g, device=device)
    return F.interpolate(points, size=length, mode="linear", align_corners=True)


def _chance(n: int, p: float, g: torch.Generator, device: torch.device) -> torch.Tensor:
    return torch.rand(n, generator=g, device=device) < p


def _one_view(
    x: torch.Tensor, lengths: torch.Tensor, cfg: TimeSeriesViewsConfig, T: int, g: torch.Generator
) -> torch.Tensor:
    """One random view: crop + resample, time warp, magnitude warp, scaling, jitter, mask, permute, flip."""
    n, c, _ = x.shape
    dev = x.device
    steps = torch.arange(T, device=dev)

    # Random crop: a fraction of the valid length at a random (sub-step) position, resized to T.
    full = lengths.float()
    lo, hi = cfg.crop_scale
    scale = lo + (hi - lo) * torch.rand(n, generator=g, device=dev)
    keep = torch.maximum(scale * full, full.clamp(max=2.0)).minimum(full)  # >= 2 steps, or all there is
    start = (full - keep) * torch.rand(n, generator=g, device=dev)
    v = resample(x, lengths, start, start + keep - 1, T)
    view_len = torch.full_like(lengths, T)

    if cfg.time_warp_p > 0 and cfg.time_warp_sigma > 0:
        # Positive speeds along time; their running sum, rescaled to end at T-1, is a monotone warp.
        speed = _smooth_curve(n, 1, cfg.time_warp_knots, T - 1, cfg.time_warp_sigma, g, dev)[:, 0].clamp(min=0.05)
        warp = F.pad(speed.cumsum(1), (1, 0))
        warp = warp * (T - 1) / warp[:, -1:]
        pos = torch.where(_chance(n, cfg.time_warp_p, g, dev)[:, None], warp, steps.float())
        v = _interp(v, view_len, pos)
    if cfg.magnitude_warp_p > 0 and cfg.magnitude_warp_sigma > 0:
        curve = _smooth_curve(n, c, cfg.magnitude_warp_knots, T, cfg.magnitude_warp_sigma, g, dev)
        v = torch.where(_chance(n, cfg.magnitude_warp_p, g, dev)[:, None, None], v * curve, v)
    if cfg.scaling_sigma > 0:
        v = v * (1 + cfg.scaling_sigma * torch.randn(n, c, 1, generator=g, device=dev))
    if cfg.jitter_sigma > 0:
        v = v + cfg.jitter_sigma * torch.randn(v.shape, generator=g, device=dev)
    if cfg.mask_p > 0 and cfg.mask_max_fraction > 0:
        # One contiguous segment of 1..max steps per chosen sample, all channels set to 0: the mean of
        # z-normalised data, so it reads as missing rather than as a new pattern.
        max_steps = max(1, round(cfg.mask_max_fraction * T))
        seg = 1 + (torch.rand(n, generator=g, device=dev) * max_steps).long().clamp(max=max_steps - 1)
        begin = (torch.rand(n, generator=g, device=dev) * (T - seg + 1)).long()
        hit = (steps >= begin[:, None]) & (steps < (begin + seg)[:, None])
        v = v.masked_fill((hit & _chance(n, cfg.mask_p, g, dev)[:, None])[:, None, :], 0.0)
    seg_len = T // cfg.permute_segments
    if cfg.permute_p > 0 and cfg.permute_segments > 1 and seg_len > 0:
        # Equal segments in a random order per sample; a remainder shorter than a segment stays at the end.
        order = torch.rand(n, cfg.permute_segments, generator=g, device=dev).argsort(1)
        body = cfg.permute_segments * seg_len
        src = order.gather(1, (steps[:body] // seg_len).expand(n, -1)) * seg_len + steps[:body] % seg_len
        src = torch.cat([src, steps[body:].expand(n, -1)], 1)
        src = torch.where(_chance(n, cfg.permute_p, g, dev)[:, None], src, steps)
        v = v.gather(2, src[:, None, :].expand(n, c, -1))
    if cfg.flip_p > 0:
        v = torch.where(_chance(n, cfg.flip_p, g, dev)[:, None, None], -v, v)
    return v


def make_views(
    batch: dict[str, torch.Tensor], n_views: int, cfg: TimeSeriesViewsConfig, length: int, generator: torch.Generator
) -> list[torch.Tensor]:
    """``n_views`` independent random views ``[N, C, length]`` float32, each sample its own randomness."""
    x = batch["x"].float()
    lengths = batch["lengths"].to(x.device)
    return [_one_view(x, lengths, cfg, length, generator) for _ in range(n_views)]
