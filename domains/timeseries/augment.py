"""Batching, cropping and random views of series ``[channels, time]``.

The augmentation set is the one the time-series literature converged on:
Um et al. 2017, "Data augmentation of wearable sensor data for Parkinson's disease monitoring
using CNNs" (jitter, scaling, magnitude warp, time warp, permutation, cropping); TS2Vec (Yue et
al. 2022), whose random cropping and timestamp masking are its only augmentations; and TS-TCC
(Eldele et al. 2021), whose weak view is jitter + scaling and strong view permutation + jitter.

Two modes, chosen by ``views.length``:

- ``null`` (default), native resolution: a view is a random crop of each series at its own
  sampling rate (no resampling), so crops in one batch differ in length; they travel as a
  zero-padded ``SeriesBatch`` (``x`` plus ``lengths``), and the eval input is each whole series
  at its own length, also a ``SeriesBatch``. This is TS2Vec's protocol.
- an integer, resampled (the recipe before issue 15): every crop and every eval input is
  linearly resampled to that many steps and is a plain tensor ``[N, C, length]``.

Defaults assume data of unit spread (``data.normalize`` dataset or series), so sigmas are
fractions of the signal's spread. The crop and the two warps carry most of the invariance (where
and how fast a pattern happens); noise and scaling stay mild (3 % and 10 % of the std, about Um
et al.'s values) because the fine shape of a curve is often what separates UCR classes.
Permutation and sign flip are off: both destroy information (temporal order, direction of
motion) that many sensor classes are defined by; turn them on for data where it is not.

Everything after ``collate_series`` is vectorised torch code, so views can be made on the
training device, every random draw taken from the caller's ``torch.Generator``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from gsg_multimodal.domain import SequenceViews
from gsg_multimodal.errors import UserError

from .series import SeriesBatch


@dataclass
class TimeSeriesViewsConfig:
    """Augmentations of the ``views`` config section; each ``*_p`` is a per-sample probability."""

    length: int | None = None  # None: native resolution; an int: resample every view and eval input to it
    max_train_length: int | None = None  # native views: crops longer than this are cut to it (training cost)
    crop_scale: tuple[float, float] = (0.5, 1.0)  # fraction of the valid length kept by the crop
    crop_min_length: int = 8  # native views: steps a crop keeps at least (or the whole series if shorter)
    overlap_min_length: int = 8  # sequence views: steps the shared segment has at least (or the shortest series)
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
        check("max_train_length", self.max_train_length is None or self.max_train_length >= 2, "at least 2 (or null)")
        check("crop_min_length", self.crop_min_length >= 1, "at least 1")
        check("overlap_min_length", self.overlap_min_length >= 1, "at least 1")
        lo_hi = self.crop_scale
        check("crop_scale", len(lo_hi) == 2 and 0 < lo_hi[0] <= lo_hi[1] <= 1, "[min, max] with 0 < min <= max <= 1")
        for name in ("jitter_sigma", "scaling_sigma", "magnitude_warp_sigma", "time_warp_sigma"):
            check(name, getattr(self, name) >= 0, "a standard deviation >= 0")
        for name in ("magnitude_warp_p", "time_warp_p", "mask_p", "permute_p", "flip_p", "mask_max_fraction"):
            check(name, 0 <= getattr(self, name) <= 1, "between 0 and 1")
        for name in ("magnitude_warp_knots", "time_warp_knots"):
            check(name, getattr(self, name) >= 0, "a number of knots >= 0")
        check("permute_segments", self.permute_segments >= 1, "at least 1")


def resolve_length(cfg: TimeSeriesViewsConfig, info: dict[str, Any]) -> int | None:
    """The steps every view and eval input is resampled to, or ``None`` at native resolution."""
    return cfg.length


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


def eval_view(batch: dict[str, torch.Tensor], cfg: TimeSeriesViewsConfig, length: int | None) -> Any:
    """The deterministic eval input: each whole series at its own length (a ``SeriesBatch``), or resampled."""
    x = batch["x"].float()
    lengths = batch["lengths"].to(x.device)
    if length is None:
        return SeriesBatch(x, lengths)
    return resample(x, lengths, torch.zeros_like(lengths), lengths - 1, length)


def _chance(n: int, p: float, g: torch.Generator, device: torch.device) -> torch.Tensor:
    return torch.rand(n, generator=g, device=device) < p


def _randint(low: torch.Tensor, high: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Per-element uniform integers in ``[low, high]`` (inclusive), from one uniform draw each."""
    u = torch.rand(low.shape, generator=g, device=low.device)
    return (low + (u * (high - low + 1).to(u.dtype)).long()).minimum(high)


def _curve(knots: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Piecewise-linear curves through ``knots [n, r, K]`` (equally spaced on [0, 1]) read at ``u [n, T]``."""
    n, r, k = knots.shape
    pos = u.clamp(0, 1) * (k - 1)
    lo = pos.floor().long().clamp(max=k - 2) if k > 1 else torch.zeros_like(pos, dtype=torch.long)
    hi = (lo + 1).clamp(max=k - 1)
    a = knots.gather(2, lo[:, None, :].expand(n, r, -1))
    b = knots.gather(2, hi[:, None, :].expand(n, r, -1))
    return torch.lerp(a, b, (pos - lo)[:, None, :])


def _augment(
    v: torch.Tensor, lengths: torch.Tensor, cfg: TimeSeriesViewsConfig, g: torch.Generator, time_ops: bool = True
) -> torch.Tensor:
    """Time warp, magnitude warp, scaling, jitter, mask, permute, flip of ``v [N, C, T]`` inside each valid length.

    Steps at or after ``lengths[i]`` come back zero. ``time_ops=False`` leaves out the two operations that move
    samples in time (time warp, permutation), for views whose positions must stay aligned.
    """
    n, c, T = v.shape
    dev = v.device
    steps = torch.arange(T, device=dev)
    valid = steps[None, :] < lengths[:, None]
    last = (lengths - 1).clamp(min=1).float()[:, None]
    u = steps[None, :].float() / last  # each step's place in its own series, 0..1

    if time_ops and cfg.time_warp_p > 0 and cfg.time_warp_sigma > 0:
        # Positive speeds along time; their running sum, rescaled to end at the last valid step, is a monotone warp.
        knots = 1 + cfg.time_warp_sigma * torch.randn(n, 1, cfg.time_warp_knots + 2, generator=g, device=dev)
        speed = _curve(knots, u)[:, 0, : max(T - 1, 1)].clamp(min=0.05)
        warp = F.pad(speed.cumsum(1), (1, 0))[:, :T]
        end = warp.gather(1, (lengths - 1).clamp(min=0)[:, None]).clamp(min=1e-6)
        warp = warp * (lengths - 1).float()[:, None] / end
        pos = torch.where(_chance(n, cfg.time_warp_p, g, dev)[:, None], warp, steps.float())
        v = _interp(v, lengths, pos)
    if cfg.magnitude_warp_p > 0 and cfg.magnitude_warp_sigma > 0:
        knots = 1 + cfg.magnitude_warp_sigma * torch.randn(n, c, cfg.magnitude_warp_knots + 2, generator=g, device=dev)
        v = torch.where(_chance(n, cfg.magnitude_warp_p, g, dev)[:, None, None], v * _curve(knots, u), v)
    if cfg.scaling_sigma > 0:
        v = v * (1 + cfg.scaling_sigma * torch.randn(n, c, 1, generator=g, device=dev))
    if cfg.jitter_sigma > 0:
        v = v + cfg.jitter_sigma * torch.randn(v.shape, generator=g, device=dev)
    if cfg.mask_p > 0 and cfg.mask_max_fraction > 0:
        # One contiguous segment of 1..max steps per chosen sample, all channels set to 0: the mean of
        # normalised data, so it reads as missing rather than as a new pattern.
        max_steps = (cfg.mask_max_fraction * lengths.float()).round().long().clamp(min=1)
        seg = _randint(torch.ones_like(max_steps), max_steps, g)
        begin = _randint(torch.zeros_like(seg), (lengths - seg).clamp(min=0), g)
        hit = (steps >= begin[:, None]) & (steps < (begin + seg)[:, None])
        v = v.masked_fill((hit & _chance(n, cfg.mask_p, g, dev)[:, None])[:, None, :], 0.0)
    if time_ops and cfg.permute_p > 0 and cfg.permute_segments > 1:
        # Equal segments of each valid length in a random order per sample; the remainder stays at the end.
        k = cfg.permute_segments
        seg_len = (lengths // k).clamp(min=1)[:, None]
        order = torch.rand(n, k, generator=g, device=dev).argsort(1)
        piece = (steps[None, :] // seg_len).clamp(max=k - 1)
        src = order.gather(1, piece) * seg_len + steps[None, :] % seg_len
        inside = (steps[None, :] < k * seg_len) & (lengths[:, None] >= k)
        src = torch.where(inside & _chance(n, cfg.permute_p, g, dev)[:, None], src, steps[None, :])
        v = v.gather(2, src[:, None, :].expand(n, c, -1))
    if cfg.flip_p > 0:
        v = torch.where(_chance(n, cfg.flip_p, g, dev)[:, None, None], -v, v)
    return v * valid[:, None, :]


def _crop_lengths(lengths: torch.Tensor, cfg: TimeSeriesViewsConfig, g: torch.Generator) -> torch.Tensor:
    """Steps each native crop keeps: a random fraction of the valid length, at least ``crop_min_length``."""
    lo, hi = cfg.crop_scale
    scale = lo + (hi - lo) * torch.rand(lengths.shape, generator=g, device=lengths.device)
    keep = (scale * lengths.float()).round().long().clamp(min=cfg.crop_min_length)
    if cfg.max_train_length is not None:
        keep = keep.clamp(max=cfg.max_train_length)
    return keep.minimum(lengths).clamp(min=1)


def _gather_crop(x: torch.Tensor, start: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """Steps ``start[i] .. start[i] + keep[i] - 1`` of each series, left-aligned, zero after ``keep[i]``."""
    n, c, _ = x.shape
    T = int(keep.max())
    steps = torch.arange(T, device=x.device)
    idx = (start[:, None] + steps[None, :]).clamp(max=x.shape[-1] - 1)
    out = x.gather(2, idx[:, None, :].expand(n, c, -1))
    return out * (steps[None, :] < keep[:, None])[:, None, :]


def _native_view(x: torch.Tensor, lengths: torch.Tensor, cfg: TimeSeriesViewsConfig, g: torch.Generator) -> SeriesBatch:
    keep = _crop_lengths(lengths, cfg, g)
    start = _randint(torch.zeros_like(keep), lengths - keep, g)
    v = _gather_crop(x, start, keep)
    return SeriesBatch(_augment(v, keep, cfg, g), keep)


def _resampled_view(
    x: torch.Tensor, lengths: torch.Tensor, cfg: TimeSeriesViewsConfig, T: int, g: torch.Generator
) -> torch.Tensor:
    """A random crop (a fraction of the valid length at a sub-step position) resized to ``T``, then augmented."""
    n = x.shape[0]
    full = lengths.float()
    lo, hi = cfg.crop_scale
    scale = lo + (hi - lo) * torch.rand(n, generator=g, device=x.device)
    keep = torch.maximum(scale * full, full.clamp(max=2.0)).minimum(full)  # >= 2 steps, or all there is
    start = (full - keep) * torch.rand(n, generator=g, device=x.device)
    v = resample(x, lengths, start, start + keep - 1, T)
    return _augment(v, torch.full_like(lengths, T), cfg, g)


def make_views(
    batch: dict[str, torch.Tensor],
    n_views: int,
    cfg: TimeSeriesViewsConfig,
    length: int | None,
    generator: torch.Generator,
) -> list[Any]:
    """``n_views`` independent random views, each sample its own randomness.

    Native resolution (``length=None``): ``SeriesBatch`` crops, zero-padded to the batch's longest crop.
    Resampled: float32 tensors ``[N, C, length]``.
    """
    x = batch["x"].float()
    lengths = batch["lengths"].to(x.device)
    if length is None:
        return [_native_view(x, lengths, cfg, generator) for _ in range(n_views)]
    return [_resampled_view(x, lengths, cfg, length, generator) for _ in range(n_views)]


def make_sequence_views(
    batch: dict[str, torch.Tensor], n_views: int, cfg: TimeSeriesViewsConfig, generator: torch.Generator
) -> SequenceViews:
    """TS2Vec-style crops of each series that share one aligned segment, at native resolution.

    One overlap length ``l`` is drawn for the batch (``overlap_min_length`` .. the shortest valid
    length). View ``k`` starts ``s_k`` steps before the shared segment (``s_k`` the same for every
    sample, so the overlap begins at position ``s_k`` in every row of view ``k``) and runs a random,
    per-sample number of steps past it; each sample places the segment at its own random offset,
    every crop inside its valid length. The two operations that move samples in time (time warp,
    permutation) are left out; the value augmentations of ``cfg`` apply. The shortest series of a
    batch bounds ``l`` and the steps before the overlap.
    """
    if n_views < 1:
        raise UserError(f"sequence views need at least one view, got n_views={n_views}")
    x = batch["x"].float()
    g, dev = generator, x.device
    lengths = batch["lengths"].to(dev)
    if cfg.max_train_length is not None:  # one window of at most max_train_length steps per sample
        cap = torch.full_like(lengths, cfg.max_train_length).minimum(lengths)
        first = _randint(torch.zeros_like(lengths), lengths - cap, g)
        x = _gather_crop(x, first, cap)
        lengths = cap
    shortest = int(lengths.min())
    one = torch.ones(1, dtype=torch.long, device=dev)
    low = min(cfg.overlap_min_length, shortest)
    overlap = int(_randint(one * low, one * shortest, g))
    zeros = torch.zeros(n_views, dtype=torch.long, device=dev)
    before = _randint(zeros, zeros + (shortest - overlap), g)
    lead = int(before.max())
    # The shared segment's absolute start per sample: room for every view's lead before it.
    offset = _randint(torch.full_like(lengths, lead), lengths - overlap, g)
    views, spans = [], []
    for k in range(n_views):
        after = _randint(torch.zeros_like(lengths), lengths - offset - overlap, g)
        start = offset - before[k]
        keep = int(before[k]) + overlap + after
        v = _gather_crop(x, start, keep)
        views.append(SeriesBatch(_augment(v, keep, cfg, g, time_ops=False), keep))
        spans.append((int(before[k]), overlap))
    return SequenceViews(views, spans)
