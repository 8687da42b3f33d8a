"""Sequence-level objectives: losses over the positions of two aligned views of each sample.

A sequence-level objective sees, for a batch of N samples, two views that share an aligned segment of
``L`` positions: ``x1, x2`` of shape ``[N, L, D]`` such that ``x1[i, j]`` and ``x2[i, j]`` describe the
same position of the same sample (the caller slices them out of the views with ``SequenceViews.overlap``).
Both losses here work on the same *max-pool pyramid* of those segments: scale 0 is the segment itself,
scale ``s + 1`` is scale ``s`` max-pooled along positions with kernel 2 and stride 2 (``floor(L_s / 2)``
positions; an odd last position is dropped), down to length 1 (``maxpool_pyramid``).

- ``ts2vec_loss``: TS2Vec's hierarchical contrastive loss (Yue et al., AAAI 2022), an explicit-negatives
  reference: an instance-wise term (the other samples at the same position are negatives) and a temporal
  term (the other positions of the same sample are negatives) at every scale.
- ``temporal_gsg_loss``: Guided Stop-Gradient (DESIGN.md section 2) applied per position at every scale
  of the pyramid: a position's partner ("image 2") is another sample at the same position (``series``),
  the same sample at a distant position (``time``), or both.

Everything is a pure function of tensors; randomness (partners, shifts) comes from a ``torch.Generator``
or is passed in. The stop-gradient of GSG lives inside the loss (targets are detached). Computation is in
float32 whatever the autocast dtype, or in float64 when an input is float64 (the tests compare to 1e-6).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import torch
import torch.nn.functional as F

from .losses import PAIRINGS, draw_pairing, to_device_async

PartnerMode = Literal["series", "time", "both"]
PARTNER_MODES: tuple[str, ...] = ("series", "time", "both")


@dataclass
class SequenceObjectiveOutput:
    """What a sequence-level loss returns; mirrors ``objectives.ObjectiveOutput``.

    ``per_sample`` is ``[N]`` and ``loss == per_sample.mean()`` (computed that way). For temporal GSG,
    ``pairing_counts`` is ``[4]``: how often each case of ``PAIRINGS`` was chosen, summed over samples,
    positions, scales and partner modes; ``partner`` is the sample pairing used by ``series``/``both``
    and ``shifts`` the per-scale position shifts used by ``time``/``both`` (``None`` where unused).
    """

    loss: torch.Tensor
    per_sample: torch.Tensor
    pairing_counts: torch.Tensor | None = None
    partner: torch.Tensor | None = None
    shifts: list[torch.Tensor | None] = field(default_factory=list)


def _compute_dtype(*xs: torch.Tensor) -> torch.dtype:
    """float64 if any input is float64, else float32 (never half precision: dot products and norms)."""
    return torch.float64 if any(x.dtype == torch.float64 for x in xs) else torch.float32


def _check_segments(name: str, *xs: torch.Tensor) -> None:
    if any(x.dim() != 3 for x in xs):
        raise ValueError(f"{name} expects aligned segments of shape [N, L, D], got {[tuple(x.shape) for x in xs]}")
    if any(x.shape != xs[0].shape for x in xs):
        raise ValueError(f"{name}: the views' aligned segments differ in shape: {[tuple(x.shape) for x in xs]}")
    if xs[0].shape[1] < 1:
        raise ValueError(f"{name}: the aligned segment is empty (length 0)")


def maxpool_pyramid(x: torch.Tensor) -> list[torch.Tensor]:
    """TS2Vec's pyramid of an aligned segment ``x [N, L, D]``: ``[x_0, x_1, ..., x_S]`` with ``x_0 = x``,

    ``x_{s+1}[i, j] = max(x_s[i, 2j], x_s[i, 2j + 1])`` (elementwise, ``j < floor(L_s / 2)``), ending at
    length 1. Lengths: 7 -> [7, 3, 1], 12 -> [12, 6, 3, 1], 1 -> [1]. Gradients flow through the max.
    """
    if x.dim() != 3 or x.shape[1] < 1:
        raise ValueError(f"maxpool_pyramid expects [N, L, D] with L >= 1, got {tuple(x.shape)}")
    out = [x]
    while out[-1].shape[1] > 1:
        out.append(F.max_pool1d(out[-1].transpose(1, 2), kernel_size=2).transpose(1, 2))
    return out


# ----------------------------------------------------------------------------------------------------------
# TS2Vec


def _paired_contrast(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """For each group ``g`` of ``M`` paired items ``a[g, m], b[g, m]`` (``[G, M, D]``), the mean over the two
    anchors of ``-log softmax`` of the positive among the other ``2M - 1`` items of the group::

        l(g, m) = 1/2 [ -log e^{a_m . b_m} / (sum_k e^{a_m . b_k} + sum_{k != m} e^{a_m . a_k})
                        -log e^{b_m . a_m} / (sum_k e^{b_m . a_k} + sum_{k != m} e^{b_m . b_k}) ]

    Returns ``[G, M]``. Dot products, no normalisation and no temperature (as TS2Vec). With ``M = 1`` the
    only candidate is the positive and ``l = 0``.
    """
    m = a.shape[1]
    x = torch.cat([a, b], dim=1)  # [G, 2M, D]
    logits = x @ x.transpose(1, 2)  # [G, 2M, 2M]
    self_mask = torch.eye(2 * m, dtype=torch.bool, device=x.device)
    logits = logits.masked_fill(self_mask, float("-inf"))  # an item is not its own candidate
    logp = torch.log_softmax(logits, dim=-1)
    idx = torch.arange(m, device=x.device)
    return -0.5 * (logp[:, idx, m + idx] + logp[:, m + idx, idx])


def ts2vec_instance_per_sample(z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
    """TS2Vec's instance-wise contrastive term at one scale, per sample: ``[N, L, D] x 2 -> [N]``.

    At each position t, anchor ``z1[i, t]`` has positive ``z2[i, t]`` and negatives ``z1[j, t], z2[j, t]``
    for ``j != i`` (a softmax over ``2N - 1`` dot products); symmetrically for anchor ``z2[i, t]``.
    ``l_inst(i) = mean_t 1/2 [l(z1[i,t]) + l(z2[i,t])]``.
    """
    _check_segments("ts2vec_instance_per_sample", z1, z2)
    dtype = _compute_dtype(z1, z2)
    per_pos = _paired_contrast(z1.transpose(0, 1).to(dtype), z2.transpose(0, 1).to(dtype))  # [L, N]
    return per_pos.mean(dim=0)


def ts2vec_temporal_per_sample(z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
    """TS2Vec's temporal contrastive term at one scale, per sample: ``[N, L, D] x 2 -> [N]``.

    For sample i, anchor ``z1[i, t]`` has positive ``z2[i, t]`` and negatives ``z1[i, t'], z2[i, t']`` for
    ``t' != t`` (a softmax over ``2L - 1`` dot products); symmetrically for anchor ``z2[i, t]``.
    ``l_temp(i) = mean_t 1/2 [l(z1[i,t]) + l(z2[i,t])]``; it is 0 when ``L = 1``.
    """
    _check_segments("ts2vec_temporal_per_sample", z1, z2)
    dtype = _compute_dtype(z1, z2)
    return _paired_contrast(z1.to(dtype), z2.to(dtype)).mean(dim=1)


def ts2vec_loss(
    z1: torch.Tensor, z2: torch.Tensor, alpha: float = 0.5, temporal_unit: int = 0
) -> SequenceObjectiveOutput:
    """TS2Vec's hierarchical contrastive loss on two aligned segments ``z1, z2 [N, L, D]``.

    With the pyramids ``z1_s, z2_s`` (``maxpool_pyramid``, scales ``s = 0..S-1``, the last of length 1)::

        l_s(i) = alpha * l_inst(z1_s, z2_s)(i) + (1 - alpha) * [s >= temporal_unit] * l_temp(z1_s, z2_s)(i)
        per_sample(i) = 1/S sum_s l_s(i),        loss = mean_i per_sample(i)

    (``ts2vec_instance_per_sample`` / ``ts2vec_temporal_per_sample`` define the terms). At length 1 only the
    instance term applies (the temporal one has no negatives and is 0). Defaults are TS2Vec's: ``alpha = 0.5``,
    ``temporal_unit = 0`` (temporal term at every scale). With ``alpha = 0.5`` this is half the paper's
    ``L_dual`` sum (the paper writes ``l_temp + l_inst``; its code weights both by 1/2). The loss is the exact
    mean of ``per_sample``. A batch of one sample gets 0 from the instance term (no negatives).
    """
    _check_segments("ts2vec_loss", z1, z2)
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    if temporal_unit < 0:
        raise ValueError(f"temporal_unit must be >= 0, got {temporal_unit}")
    dtype = _compute_dtype(z1, z2)
    pyr1, pyr2 = maxpool_pyramid(z1.to(dtype)), maxpool_pyramid(z2.to(dtype))
    total = torch.zeros(z1.shape[0], dtype=dtype, device=z1.device)
    for s, (a, b) in enumerate(zip(pyr1, pyr2, strict=True)):
        # Always formed (even for alpha = 0) so the loss stays on the autograd graph.
        total = total + alpha * ts2vec_instance_per_sample(a, b)
        if alpha != 1 and s >= temporal_unit and a.shape[1] > 1:
            total = total + (1 - alpha) * ts2vec_temporal_per_sample(a, b)
    per_sample = total / len(pyr1)
    return SequenceObjectiveOutput(per_sample.mean(), per_sample)


# ----------------------------------------------------------------------------------------------------------
# Temporal GSG


def shift_bounds(length: int) -> tuple[int, int]:
    """Inclusive range ``[ceil(L/4), floor(3L/4)]`` of the ``time`` partner shift at segment length ``L >= 2``.

    Any shift ``s`` in it puts the partner ``t' = (t + s) mod L`` at linear distance ``|t - t'|`` in
    ``{s, L - s}``, so at least ``ceil(L/4) >= 1`` positions away, for every t.
    """
    if length < 2:
        raise ValueError(f"a position shift needs a segment of length >= 2, got {length}")
    return math.ceil(length / 4), (3 * length) // 4


def draw_shifts(n: int, length: int, generator: torch.Generator) -> torch.Tensor:
    """One shift per sample, uniform on the integers of ``shift_bounds(length)``, on the generator's device."""
    lo, hi = shift_bounds(length)
    return torch.randint(lo, hi + 1, (n,), generator=generator, device=generator.device)


def _shift_positions(x: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """``y[i, t] = x[i, (t + shift[i]) mod L]`` for ``x [N, L, ...]``."""
    n, length = x.shape[:2]
    pos = (torch.arange(length, device=x.device).unsqueeze(0) + shift.unsqueeze(1)) % length  # [N, L]
    return x[torch.arange(n, device=x.device).unsqueeze(1), pos]


def gsg_per_position(p: dict[str, torch.Tensor], t: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """GSG's selection and loss for every (sample, position): ``p``, ``t`` map ``"11", "12", "21", "22"`` to
    ``[N, L, d]`` predictions and targets of image 1's and image 2's views.

    ``choice[i, t] = argmin_k d(t_a, t_b)`` over ``PAIRINGS[k] = (a, b)`` (raw Euclidean distances, no
    gradient; ties go to the first), and ``loss[i, t] = -1/2 [cos(p_a, sg t_a') + cos(p_b, sg t_b')]`` for the
    chosen ``(a, b)``, ``a'`` the sibling of ``a`` (``11 <-> 12``, ``21 <-> 22``). The four candidates are
    formed and the chosen one gathered, so gradient reaches only the chosen source views' predictions.
    Returns ``(loss [N, L], choice [N, L])``.
    """
    dtype = _compute_dtype(*p.values(), *t.values())
    with torch.no_grad():
        tt = {k: v.detach().to(dtype) for k, v in t.items()}
        dist = torch.stack([torch.linalg.vector_norm(tt[a] - tt[b], dim=-1) for a, b in PAIRINGS], dim=-1)
        choice = dist.argmin(dim=-1)
    sibling = {"11": "12", "12": "11", "21": "22", "22": "21"}
    term = {v: -F.cosine_similarity(p[v].to(dtype), tt[sibling[v]], dim=-1) for v in sibling}
    candidates = torch.stack([0.5 * (term[a] + term[b]) for a, b in PAIRINGS], dim=-1)
    return candidates.gather(-1, choice.unsqueeze(-1)).squeeze(-1), choice


def temporal_gsg_loss(
    p: Sequence[Sequence[torch.Tensor]],
    t: Sequence[Sequence[torch.Tensor]],
    mode: PartnerMode = "series",
    generator: torch.Generator | None = None,
    derangement: bool = True,
    partner: torch.Tensor | None = None,
    shifts: Sequence[torch.Tensor | None] | None = None,
) -> SequenceObjectiveOutput:
    """Guided Stop-Gradient at position level, on the scales of a pyramid.

    Inputs, built by the caller: ``p[v][s]`` and ``t[v][s]``, ``[N, L_s, d]``, for the two views ``v = 0, 1``
    and scales ``s = 0..S-1``: ``t[v] = maxpool_pyramid(t_v)`` the pooled targets (the online projections
    for SimSiam, the EMA network's for BYOL) and ``p[v][s] = h(maxpool_pyramid(z_v)[s])`` the predictor
    applied per position to the pooled *online* projections (``p = maxpool_pyramid(z_v)`` without
    predictor). Note ``h(maxpool(z)) != maxpool(h(z))``: pooling predictions is a different method.

    At scale s, each (sample i, position j) is "image 1" with views ``11 = (p[0][s][i,j], t[0][s][i,j])`` and
    ``12 = (p[1][s][i,j], t[1][s][i,j])``. Its partner "image 2" (views 21, 22: the same two tensors at
    another index) is

    - ``series``: sample ``r[i]`` at the same position ``j``; ``r`` is one pairing of the batch
      (``draw_pairing``; a derangement by default), shared by all positions and scales;
    - ``time``: the same sample at position ``j' = (j + s_i) mod L_s``, one shift ``s_i`` per sample and
      scale, uniform on ``[ceil(L_s/4), floor(3 L_s/4)]`` (``shift_bounds``), so ``|j - j'| >= ceil(L_s/4)``;
      scales of length 1 have no distant position and are skipped;
    - ``both``: the mean of the two losses (at length 1, ``series`` only).

    Then GSG as in DESIGN.md section 2 (``gsg_per_position``): the closest of the four cross pairs, by raw
    Euclidean distance of the targets, is the source side, and each of its two views predicts the
    stop-gradient target of the other view of its own (sample, position)::

        l_s^m(i) = mean_j loss_s^m[i, j]                      (m a partner mode active at scale s)
        l_s(i)   = mean over the active modes m of l_s^m(i)
        per_sample(i) = mean over the scales with an active mode of l_s(i),   loss = mean_i per_sample(i)

    A term is attributed to its image 1 (sample i); its gradient also reaches image 2's predictions when
    one of them is a source view. ``r`` comes from ``partner`` or is drawn from ``generator``; the shifts
    from ``shifts`` (one ``[N]`` tensor or ``None`` per scale) or are drawn, one scale after another, after
    ``r``. ``pairing_counts`` sums the chosen cases over samples, positions, scales and modes.
    """
    if mode not in PARTNER_MODES:
        raise ValueError(f"mode must be one of {PARTNER_MODES}, got {mode!r}")
    if len(p) != 2 or len(t) != 2:
        raise ValueError(f"temporal_gsg_loss expects two views, got {len(p)} predictions and {len(t)} targets")
    n_scales = len(p[0])
    if n_scales == 0 or any(len(x) != n_scales for x in (*p, *t)):
        raise ValueError(f"every pyramid needs the same number (>= 1) of scales, got {[len(x) for x in (*p, *t)]}")
    n = p[0][0].shape[0]
    for s in range(n_scales):
        _check_segments(f"temporal_gsg_loss (scale {s})", p[0][s], p[1][s], t[0][s], t[1][s])
        if p[0][s].shape[0] != n:
            raise ValueError(f"temporal_gsg_loss: scale {s} has {p[0][s].shape[0]} samples, scale 0 has {n}")
    lengths = [p[0][s].shape[1] for s in range(n_scales)]
    use_series = mode in ("series", "both")
    use_time = mode in ("time", "both")
    if mode == "time" and max(lengths) < 2:
        raise ValueError("temporal GSG with mode 'time' needs a scale of length >= 2 (a distant position)")
    device = p[0][0].device

    r = None
    if use_series:
        if partner is None:
            if generator is None:
                raise ValueError("temporal GSG needs a generator to draw the pairing (or pass partner)")
            partner = draw_pairing(n, generator, derangement)
        if partner.shape != (n,):
            raise ValueError(f"partner must have shape [{n}], got {tuple(partner.shape)}")
        r = to_device_async(partner, device)
    used_shifts: list[torch.Tensor | None] = [None] * n_scales
    if use_time:
        if shifts is not None and len(shifts) != n_scales:
            raise ValueError(f"shifts needs one entry per scale ({n_scales}), got {len(shifts)}")
        for s, length in enumerate(lengths):
            if length < 2:
                continue
            given = shifts[s] if shifts is not None else None
            if given is None:
                if generator is None:
                    raise ValueError("temporal GSG needs a generator to draw the position shifts (or pass shifts)")
                given = draw_shifts(n, length, generator)
            else:
                lo, hi = shift_bounds(length)
                if given.shape != (n,) or bool(((given < lo) | (given > hi)).any()):
                    raise ValueError(f"shifts[{s}] must be [{n}] integers in [{lo}, {hi}] (length {length})")
            used_shifts[s] = given

    counts = torch.zeros(len(PAIRINGS), dtype=torch.long, device=device)
    scale_losses = []
    for s in range(n_scales):
        partners = []  # how image 2 is found from image 1's tensors, one entry per active mode
        if r is not None:
            partners.append((r, None))
        if used_shifts[s] is not None:
            partners.append((None, to_device_async(used_shifts[s], device)))
        if not partners:
            continue
        per_mode = []
        for rows, shift in partners:
            pv = {"11": p[0][s], "12": p[1][s]}
            tv = {"11": t[0][s], "12": t[1][s]}
            for image2, view in (("21", 0), ("22", 1)):
                pv[image2] = p[view][s][rows] if rows is not None else _shift_positions(p[view][s], shift)
                tv[image2] = t[view][s][rows] if rows is not None else _shift_positions(t[view][s], shift)
            loss, choice = gsg_per_position(pv, tv)
            per_mode.append(loss.mean(dim=1))
            counts.scatter_add_(0, choice.reshape(-1), torch.ones_like(choice.reshape(-1)))
        scale_losses.append(torch.stack(per_mode).mean(dim=0))
    per_sample = torch.stack(scale_losses).mean(dim=0)
    return SequenceObjectiveOutput(per_sample.mean(), per_sample, counts, partner if use_series else None, used_shifts)
