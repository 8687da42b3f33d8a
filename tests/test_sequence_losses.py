"""Sequence-level losses (gsg_multimodal/sequence_losses.py) against per-sample, per-position loop transcriptions.

The references below are written from the definitions in docs/objective.md (sequence-level objectives)
with Python loops over scales, samples and positions, one vector at a time; the vectorised losses must
match them in value and gradient (float64, small random tensors, segment lengths that are not powers of two).
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from gsg_multimodal.losses import (
    PAIRINGS,
    draw_pairing,
    gsg_loss_per_sample,
    info_nce_per_sample,
    select_pairing,
)
from gsg_multimodal.sequence_losses import (
    draw_shifts,
    maxpool_pyramid,
    shift_bounds,
    temporal_gsg_loss,
    ts2vec_instance_per_sample,
    ts2vec_loss,
)

SIBLING = {"11": "12", "12": "11", "21": "22", "22": "21"}
VIEW = {"11": 0, "12": 1, "21": 0, "22": 1}  # which of the two aligned views a GSG view name refers to
TOL = {"rtol": 1e-8, "atol": 1e-8}  # float64 throughout the comparisons with the loops


def randn(*shape: int, seed: int, requires_grad: bool = False) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=torch.float64).requires_grad_(requires_grad)


def loop_pool(x: torch.Tensor) -> torch.Tensor:
    """``y[i, j] = max(x[i, 2j], x[i, 2j+1])`` elementwise, one vector at a time."""
    n, length, _ = x.shape
    return torch.stack(
        [torch.stack([torch.maximum(x[i, 2 * j], x[i, 2 * j + 1]) for j in range(length // 2)]) for i in range(n)]
    )


def loop_pyramid(x: torch.Tensor) -> list[torch.Tensor]:
    out = [x]
    while out[-1].shape[1] > 1:
        out.append(loop_pool(out[-1]))
    return out


# ----------------------------------------------------------------------------------------------------------
# TS2Vec


def nll(anchor: torch.Tensor, positive: torch.Tensor, negatives: list[torch.Tensor]) -> torch.Tensor:
    """``-log e^{a.q+} / (e^{a.q+} + sum_neg e^{a.q})`` with dot products."""
    logits = torch.stack([anchor @ positive] + [anchor @ q for q in negatives])
    return torch.logsumexp(logits, 0) - logits[0]


def loop_ts2vec(z1: torch.Tensor, z2: torch.Tensor, alpha: float, temporal_unit: int) -> torch.Tensor:
    """Per-sample TS2Vec loss, transcribed one sample, position and anchor at a time."""
    p1, p2 = loop_pyramid(z1), loop_pyramid(z2)
    n = z1.shape[0]
    per_sample = []
    for i in range(n):
        total = torch.zeros((), dtype=z1.dtype)
        for s, (a, b) in enumerate(zip(p1, p2, strict=True)):
            length = a.shape[1]
            inst, temp = [], []
            for t in range(length):
                others = [j for j in range(n) if j != i]
                l1 = nll(a[i, t], b[i, t], [a[j, t] for j in others] + [b[j, t] for j in others])
                l2 = nll(b[i, t], a[i, t], [b[j, t] for j in others] + [a[j, t] for j in others])
                inst.append(0.5 * (l1 + l2))
                later = [u for u in range(length) if u != t]
                l1 = nll(a[i, t], b[i, t], [a[i, u] for u in later] + [b[i, u] for u in later])
                l2 = nll(b[i, t], a[i, t], [b[i, u] for u in later] + [a[i, u] for u in later])
                temp.append(0.5 * (l1 + l2))
            total = total + alpha * torch.stack(inst).mean()
            if length > 1 and s >= temporal_unit:
                total = total + (1 - alpha) * torch.stack(temp).mean()
        per_sample.append(total / len(p1))
    return torch.stack(per_sample)


@pytest.mark.parametrize("length", [1, 2, 7, 12])
def test_maxpool_pyramid_matches_the_loop(length: int) -> None:
    x = randn(3, length, 4, seed=length)
    got, want = maxpool_pyramid(x), loop_pyramid(x)
    assert [g.shape[1] for g in got] == [w.shape[1] for w in want]
    assert {1: [1], 2: [2, 1], 7: [7, 3, 1], 12: [12, 6, 3, 1]}[length] == [g.shape[1] for g in got]
    for g, w in zip(got, want, strict=True):
        assert torch.equal(g, w)


@pytest.mark.parametrize(("n", "length"), [(3, 7), (5, 12), (4, 1)])
@pytest.mark.parametrize(("alpha", "temporal_unit"), [(0.5, 0), (0.3, 1), (1.0, 0), (0.0, 0)])
def test_ts2vec_matches_the_loop(n: int, length: int, alpha: float, temporal_unit: int) -> None:
    z1 = randn(n, length, 4, seed=1, requires_grad=True)
    z2 = randn(n, length, 4, seed=2, requires_grad=True)
    out = ts2vec_loss(z1, z2, alpha=alpha, temporal_unit=temporal_unit)
    ref = loop_ts2vec(z1, z2, alpha, temporal_unit)
    torch.testing.assert_close(out.per_sample, ref, **TOL)
    torch.testing.assert_close(out.loss, ref.mean(), **TOL)
    assert out.loss.item() == pytest.approx(out.per_sample.mean().item(), abs=1e-12)  # mean of per-sample
    got = torch.autograd.grad(out.loss, [z1, z2])
    want = torch.autograd.grad(ref.mean(), [z1, z2])
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w, **TOL)


@pytest.mark.parametrize("tau", [1.0, 0.2])
def test_ts2vec_instance_term_at_length_one_is_info_nce(tau: float) -> None:
    """At L = 1 TS2Vec is alpha x SimCLR's NT-Xent with dot products: on unit vectors scaled by 1/sqrt(tau)
    it equals ``info_nce_per_sample`` at temperature tau (float32 there, hence the tolerance)."""
    n, d = 6, 5
    z1, z2 = F.normalize(randn(n, d, seed=3), dim=1), F.normalize(randn(n, d, seed=4), dim=1)
    want = info_nce_per_sample(z1, z2, tau).double()
    scale = 1 / math.sqrt(tau)
    a, b = (scale * z1).unsqueeze(1), (scale * z2).unsqueeze(1)
    torch.testing.assert_close(ts2vec_instance_per_sample(a, b), want, rtol=0, atol=1e-6)
    torch.testing.assert_close(ts2vec_loss(a, b, alpha=0.5).per_sample, 0.5 * want, rtol=0, atol=1e-6)


def test_ts2vec_single_sample_has_no_instance_term() -> None:
    z1, z2 = randn(1, 7, 3, seed=5), randn(1, 7, 3, seed=6)
    assert ts2vec_loss(z1, z2, alpha=1.0).loss.item() == 0.0
    assert ts2vec_loss(z1, z2, alpha=0.5).loss.item() > 0.0  # the temporal term still has negatives


def test_ts2vec_half_precision_is_computed_in_float32() -> None:
    z1, z2 = randn(3, 7, 4, seed=7), randn(3, 7, 4, seed=8)
    out = ts2vec_loss(z1.bfloat16(), z2.bfloat16())
    assert out.loss.dtype == torch.float32
    ref = ts2vec_loss(z1.bfloat16().double(), z2.bfloat16().double()).loss
    assert out.loss.item() == pytest.approx(ref.item(), abs=1e-5)


# ----------------------------------------------------------------------------------------------------------
# Temporal GSG


def loop_temporal_gsg(
    p: list[list[torch.Tensor]],
    t: list[list[torch.Tensor]],
    mode: str,
    partner: torch.Tensor | None,
    shifts: list[torch.Tensor | None],
) -> tuple[torch.Tensor, list[int], set[tuple[int, int, int, int]]]:
    """Per-sample temporal GSG, one (scale, sample, position) at a time.

    Returns the per-sample losses, the counts of each case, and the source views as
    ``(view, scale, sample, position)`` tuples (the predictions that should receive gradient).
    """
    n = p[0][0].shape[0]
    counts = [0] * len(PAIRINGS)
    sources: set[tuple[int, int, int, int]] = set()
    per_sample = []
    for i in range(n):
        scale_terms = []
        for s in range(len(p[0])):
            length = p[0][s].shape[1]
            image2 = []  # per active mode: (sample, position) of image 2 for each position j of sample i
            if mode in ("series", "both"):
                image2.append([(int(partner[i]), j) for j in range(length)])
            if mode in ("time", "both") and length > 1:
                image2.append([(i, (j + int(shifts[s][i])) % length) for j in range(length)])
            mode_terms = []
            for where in image2:
                terms = []
                for j in range(length):
                    at = {"11": (i, j), "12": (i, j), "21": where[j], "22": where[j]}
                    pv = {k: p[VIEW[k]][s][at[k]] for k in at}
                    tv = {k: t[VIEW[k]][s][at[k]] for k in at}
                    dists = [float(torch.dist(tv[a].detach(), tv[b].detach())) for a, b in PAIRINGS]
                    case = dists.index(min(dists))
                    counts[case] += 1
                    a, b = PAIRINGS[case]
                    sources.update({(VIEW[a], s, *at[a]), (VIEW[b], s, *at[b])})
                    cos = F.cosine_similarity
                    terms.append(
                        -0.5 * (cos(pv[a], tv[SIBLING[a]].detach(), dim=0) + cos(pv[b], tv[SIBLING[b]].detach(), dim=0))
                    )
                mode_terms.append(torch.stack(terms).mean())
            if mode_terms:
                scale_terms.append(torch.stack(mode_terms).mean())
        per_sample.append(torch.stack(scale_terms).mean())
    return torch.stack(per_sample), counts, sources


def draws(n: int, lengths: list[int], seed: int) -> tuple[torch.Tensor, list[torch.Tensor | None]]:
    g = torch.Generator().manual_seed(seed)
    return draw_pairing(n, g, derangement=True), [draw_shifts(n, L, g) if L > 1 else None for L in lengths]


class Net:
    """A tiny SimSiam/BYOL stand-in: online projections ``z`` per view, a per-position predictor ``h``,
    and targets ``t`` that are ``z`` itself (SimSiam) or separate tensors (BYOL's EMA network)."""

    def __init__(self, n: int, length: int, d: int, style: str, seed: int) -> None:
        self.z = [randn(n, length, d, seed=seed + v, requires_grad=True) for v in range(2)]
        self.w = randn(d, d, seed=seed + 2, requires_grad=True)
        self.t_leaf = [randn(n, length, d, seed=seed + 3 + v, requires_grad=True) for v in range(2)]
        self.style = style

    def h(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(x @ self.w)

    def pyramids(self, pool=maxpool_pyramid) -> tuple[list[list[torch.Tensor]], list[list[torch.Tensor]]]:
        p = [[self.h(x) for x in pool(z)] for z in self.z]
        t = [pool(x) for x in (self.z if self.style == "simsiam" else self.t_leaf)]
        return p, t

    def leaves(self) -> list[torch.Tensor]:
        return [*self.z, self.w]


@pytest.mark.parametrize("mode", ["series", "time", "both"])
@pytest.mark.parametrize(("n", "length"), [(3, 7), (5, 12), (4, 2)])
@pytest.mark.parametrize("style", ["simsiam", "byol"])
def test_temporal_gsg_matches_the_loop(mode: str, n: int, length: int, style: str) -> None:
    net = Net(n, length, 4, style, seed=10 * n + length)
    p, t = net.pyramids()
    partner, shifts = draws(n, [x.shape[1] for x in p[0]], seed=n + length)
    out = temporal_gsg_loss(p, t, mode=mode, partner=partner, shifts=shifts)

    ref_net = Net(n, length, 4, style, seed=10 * n + length)
    ref_p, ref_t = ref_net.pyramids(pool=loop_pyramid)
    ref, counts, _ = loop_temporal_gsg(ref_p, ref_t, mode, partner, shifts)
    torch.testing.assert_close(out.per_sample, ref, **TOL)
    torch.testing.assert_close(out.loss, ref.mean(), **TOL)
    assert out.pairing_counts.tolist() == counts
    got = torch.autograd.grad(out.loss, net.leaves())
    want = torch.autograd.grad(ref.mean(), ref_net.leaves())
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w, **TOL)


@pytest.mark.parametrize("derangement", [True, False])
def test_series_at_length_one_is_instance_gsg(derangement: bool) -> None:
    """A single scale of length 1 with mode ``series`` is the instance-level GSG of objectives.py (2-view form,
    image 2 = the partner's same two views) for the same pairing, value, selection and gradient."""
    n, d = 6, 5
    g = torch.Generator().manual_seed(0 if derangement else 3)
    partner = draw_pairing(n, g, derangement)
    if not derangement:
        assert (partner == torch.arange(n)).any()  # a sample paired with itself: ties resolve alike
    p = [randn(n, d, seed=20 + v).float().requires_grad_() for v in range(2)]
    t = [randn(n, d, seed=30 + v).float() for v in range(2)]
    pv = {"11": p[0], "12": p[1], "21": p[0][partner], "22": p[1][partner]}
    tv = {"11": t[0], "12": t[1], "21": t[0][partner], "22": t[1][partner]}
    choice = select_pairing(tv["11"], tv["12"], tv["21"], tv["22"])
    want = gsg_loss_per_sample(pv, tv, choice)
    want_grad = torch.autograd.grad(want.mean(), p)

    out = temporal_gsg_loss([[x.unsqueeze(1)] for x in p], [[x.unsqueeze(1)] for x in t], "series", partner=partner)
    torch.testing.assert_close(out.per_sample, want, rtol=0, atol=1e-6)
    assert out.pairing_counts.tolist() == torch.bincount(choice, minlength=4).tolist()
    for got, w in zip(torch.autograd.grad(out.loss, p), want_grad, strict=True):
        torch.testing.assert_close(got, w, rtol=0, atol=1e-6)


@pytest.mark.parametrize("mode", ["series", "time", "both"])
def test_gradients_reach_only_the_chosen_source_views(mode: str) -> None:
    n, length, d = 4, 12, 3
    p = [[randn(n, x, d, seed=40 + 4 * v + s, requires_grad=True) for s, x in enumerate((12, 6, 3, 1))] for v in (0, 1)]
    t = [maxpool_pyramid(randn(n, length, d, seed=50 + v)) for v in (0, 1)]
    partner, shifts = draws(n, [12, 6, 3, 1], seed=7)
    out = temporal_gsg_loss(p, t, mode=mode, partner=partner, shifts=shifts)
    out.loss.backward()
    _, _, sources = loop_temporal_gsg(p, t, mode, partner, shifts)
    for v in (0, 1):
        for s, x in enumerate(p[v]):
            grad = torch.zeros_like(x) if x.grad is None else x.grad  # time mode skips length 1
            received = grad.abs().sum(dim=-1) > 0  # [N, L_s]
            expected = torch.zeros_like(received)
            for vv, ss, i, j in sources:
                if (vv, ss) == (v, s):
                    expected[i, j] = True
            assert torch.equal(received, expected), f"view {v}, scale {s}"
            assert int(expected.sum()) > 0 or (mode == "time" and x.shape[1] == 1)


def test_targets_get_no_gradient_from_the_loss() -> None:
    """BYOL style: target leaves get no gradient at all. SimSiam style (t = z): z's gradient is exactly the one
    through the predictions, i.e. the same as with ``t = sg(z)``."""
    n, length, d = 4, 7, 4
    net = Net(n, length, d, "byol", seed=60)
    p, t = net.pyramids()
    partner, shifts = draws(n, [7, 3, 1], seed=1)
    temporal_gsg_loss(p, t, mode="both", partner=partner, shifts=shifts).loss.backward()
    assert all(x.grad is None for x in net.t_leaf)
    assert all(x.grad is not None for x in net.z)

    net = Net(n, length, d, "simsiam", seed=61)
    p, t = net.pyramids()
    got = torch.autograd.grad(temporal_gsg_loss(p, t, "both", partner=partner, shifts=shifts).loss, net.z)
    p, t = net.pyramids()
    t_detached = [[x.detach() for x in pyr] for pyr in t]
    want = torch.autograd.grad(temporal_gsg_loss(p, t_detached, "both", partner=partner, shifts=shifts).loss, net.z)
    for g, w in zip(got, want, strict=True):
        assert torch.equal(g, w)


def test_time_partners_are_distant() -> None:
    g = torch.Generator().manual_seed(0)
    for length in range(2, 41):
        lo, hi = shift_bounds(length)
        assert 1 <= lo <= hi <= length - 1
        s = draw_shifts(200, length, g)
        assert int(s.min()) >= lo and int(s.max()) <= hi
        pos = torch.arange(length)
        for shift in s.unique().tolist():
            distance = ((pos + shift) % length - pos).abs()
            assert int(distance.min()) >= math.ceil(length / 4)
        if hi > lo:
            assert s.unique().numel() == hi - lo + 1  # every allowed shift is drawn


def test_time_mode_skips_length_one_and_needs_a_longer_scale() -> None:
    n, d = 3, 4
    p = [[randn(n, 1, d, seed=70 + v)] for v in (0, 1)]
    t = [[randn(n, 1, d, seed=72 + v)] for v in (0, 1)]
    with pytest.raises(ValueError, match="length >= 2"):
        temporal_gsg_loss(p, t, mode="time", generator=torch.Generator())
    both = temporal_gsg_loss(p, t, mode="both", generator=torch.Generator().manual_seed(0))
    series = temporal_gsg_loss(p, t, mode="series", partner=both.partner)
    torch.testing.assert_close(both.per_sample, series.per_sample)
    assert both.shifts == [None]


def test_both_is_the_mean_of_series_and_time_where_both_apply() -> None:
    n, length, d = 5, 12, 4
    p = [maxpool_pyramid(randn(n, length, d, seed=80 + v))[:3] for v in (0, 1)]  # lengths 12, 6, 3
    t = [maxpool_pyramid(randn(n, length, d, seed=82 + v))[:3] for v in (0, 1)]
    both = temporal_gsg_loss(p, t, mode="both", generator=torch.Generator().manual_seed(4))
    series = temporal_gsg_loss(p, t, mode="series", partner=both.partner)
    time = temporal_gsg_loss(p, t, mode="time", shifts=both.shifts)
    torch.testing.assert_close(both.per_sample, 0.5 * (series.per_sample + time.per_sample), **TOL)
    torch.testing.assert_close(both.pairing_counts, series.pairing_counts + time.pairing_counts)
    assert int(both.pairing_counts.sum()) == 2 * n * (12 + 6 + 3)


def test_draws_are_reproducible_and_deranged() -> None:
    n, d = 5, 3
    p = [maxpool_pyramid(randn(n, 7, d, seed=90 + v)) for v in (0, 1)]
    t = [maxpool_pyramid(randn(n, 7, d, seed=92 + v)) for v in (0, 1)]
    a = temporal_gsg_loss(p, t, mode="both", generator=torch.Generator().manual_seed(11))
    b = temporal_gsg_loss(p, t, mode="both", generator=torch.Generator().manual_seed(11))
    assert torch.equal(a.loss, b.loss) and torch.equal(a.partner, b.partner)
    assert all(torch.equal(x, y) for x, y in zip(a.shifts[:2], b.shifts[:2], strict=True))
    assert a.shifts[2] is None
    assert not (a.partner == torch.arange(n)).any()
    assert int(a.pairing_counts.sum()) == n * (7 + 3 + 1) + n * (7 + 3)


def test_bad_inputs_get_a_clear_message() -> None:
    n, d = 3, 4
    p = [maxpool_pyramid(randn(n, 7, d, seed=v)) for v in (0, 1)]
    t = [maxpool_pyramid(randn(n, 7, d, seed=v)) for v in (0, 1)]
    with pytest.raises(ValueError, match="mode"):
        temporal_gsg_loss(p, t, mode="positions", generator=torch.Generator())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="generator"):
        temporal_gsg_loss(p, t, mode="series")
    with pytest.raises(ValueError, match="scales"):
        temporal_gsg_loss([p[0], p[1][:2]], t, mode="series", generator=torch.Generator())
    with pytest.raises(ValueError, match="shifts"):
        temporal_gsg_loss(p, t, mode="time", shifts=[torch.zeros(n, dtype=torch.long), None, None])
    with pytest.raises(ValueError, match="shape"):
        ts2vec_loss(randn(n, 7, d, seed=0), randn(n, 6, d, seed=1))
