"""Property-based tests of the objective (DESIGN.md section 2), complementing the examples in test_objectives.py.

Inputs that feed the GSG selection come from a seeded torch generator (hypothesis picks the seed and the
shapes), so exact ties among the four distances have probability zero; near-ties are excluded explicitly.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from gsg_multimodal.losses import (
    PAIRINGS,
    SiameseLoss,
    draw_pairing,
    gsg_loss_per_sample,
    select_pairing,
    symmetric_loss,
)

# Few examples, no deadline (the first call pays torch's warm-up); the whole file runs in a few seconds.
SETTINGS = settings(max_examples=50, deadline=None)
# -cos can leave [-1, 1] by a few float32 ulps (e.g. cos(x, x) = 1.0000002); anything beyond this is a bug.
ULP_SLACK = 1e-6
# Relative gap between the two smallest distances below which a selection counts as a near-tie.
NEAR_TIE = 1e-5

MODES = [(False, 2), (True, 2), (True, 4)]  # (gsg, views): SimSiam/BYOL, 2-view GSG, published 4-view GSG
MODE_IDS = ["simsiam", "gsg2", "gsg4"]

seeds = st.integers(min_value=0, max_value=2**32 - 1)


def randn_views(seed: int, k: int, n: int, d: int, scale: float = 1.0) -> list[torch.Tensor]:
    """``k`` views of ``[n, d]`` standard normals times ``scale``, from a generator seeded with ``seed``."""
    g = torch.Generator().manual_seed(seed)
    return [scale * torch.randn(n, d, generator=g) for _ in range(k)]


def image2(t: list[torch.Tensor], r: torch.Tensor, views: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Image 2's two views for pairing ``r``: views 3, 4 (published GSG) or 1, 2 (2-view GSG)."""
    i21, i22 = (2, 3) if views == 4 else (0, 1)
    return t[i21][r], t[i22][r]


def distances64(t: list[torch.Tensor], r: torch.Tensor, views: int) -> torch.Tensor:
    """``[n, 4]`` raw Euclidean distances of the four cross pairs, in PAIRINGS order, computed in float64."""
    t21, t22 = image2(t, r, views)
    tv = {"11": t[0].double(), "12": t[1].double(), "21": t21.double(), "22": t22.double()}
    return torch.stack([torch.cdist(tv[a][:, None], tv[b][:, None]).reshape(-1) for a, b in PAIRINGS], dim=-1)


def clear_rows(dist: torch.Tensor, rel: float = NEAR_TIE) -> torch.Tensor:
    """Rows whose minimum is unambiguous: the two smallest distances are exactly equal (a sample paired with
    itself in 2-view GSG: both are 0 and argmin takes the first) or differ by more than ``rel``."""
    two = dist.sort(dim=-1).values[:, :2]
    gap = two[:, 1] - two[:, 0]
    return (gap == 0) | (gap > rel * two[:, 1])


def gsg_path(
    p: list[torch.Tensor], t: list[torch.Tensor], r: torch.Tensor, views: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The objective's GSG computation for a given pairing ``r``: (per-sample loss, chosen case)."""
    p21, p22 = image2(p, r, views)
    t21, t22 = image2(t, r, views)
    pv = {"11": p[0], "12": p[1], "21": p21, "22": p22}
    tv = {"11": t[0], "12": t[1], "21": t21, "22": t22}
    choice = select_pairing(tv["11"], tv["12"], tv["21"], tv["22"])
    return gsg_loss_per_sample(pv, tv, choice), choice


@st.composite
def float_batches(draw: st.DrawFn, views: int) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Arbitrary finite float32 predictions and targets (zeros, subnormals and huge values included)."""
    n = draw(st.integers(min_value=2, max_value=6))
    d = draw(st.integers(min_value=1, max_value=5))
    elements = st.floats(width=32, allow_nan=False, allow_infinity=False)
    a = torch.from_numpy(draw(arrays(np.float32, (2 * views, n, d), elements=elements)))
    return list(a[:views]), list(a[views:])


# 1. The loss is a negative cosine (or a mean of two): it lies in [-1, 1], per sample and for the batch.
@pytest.mark.parametrize(("gsg", "views"), MODES, ids=MODE_IDS)
@SETTINGS
@given(data=st.data(), derangement=st.booleans(), seed=seeds)
def test_loss_lies_in_minus_one_to_one(
    gsg: bool, views: int, data: st.DataObject, derangement: bool, seed: int
) -> None:
    p, t = data.draw(float_batches(views))
    out = SiameseLoss(gsg=gsg, gsg_views=views, derangement=derangement)(p, t, torch.Generator().manual_seed(seed))
    assert out.per_sample.shape == (p[0].shape[0],)
    assert torch.isfinite(out.per_sample).all()
    assert (out.per_sample.abs() <= 1 + ULP_SLACK).all(), out.per_sample
    assert abs(out.loss.item()) <= 1 + ULP_SLACK
    assert torch.allclose(out.loss, out.per_sample.mean())


# 2. The chosen case is the argmin of the four raw Euclidean distances between targets.
@SETTINGS
@given(
    n=st.integers(min_value=2, max_value=64),
    d=st.integers(min_value=1, max_value=16),
    views=st.sampled_from([2, 4]),
    derangement=st.booleans(),
    log_scale=st.floats(min_value=-3, max_value=3),
    seed=seeds,
)
def test_selection_is_the_argmin_of_raw_distances(
    n: int, d: int, views: int, derangement: bool, log_scale: float, seed: int
) -> None:
    p = randn_views(seed, views, n, d)
    t = randn_views(seed + 1, views, n, d, scale=10.0**log_scale)
    obj = SiameseLoss(gsg=True, gsg_views=views, derangement=derangement)
    out = obj(p, t, torch.Generator().manual_seed(seed))
    r = out.partner
    assert r is not None and out.pairing_counts is not None
    assert sorted(r.tolist()) == list(range(n))
    dist = distances64(t, r, views)
    assume(bool(clear_rows(dist).all()))
    expected = torch.bincount(dist.argmin(dim=-1), minlength=len(PAIRINGS))
    assert out.pairing_counts.tolist() == expected.tolist()


# 3. Relabelling the samples relabels the losses: x' = x[s] with the pairing conjugated, r' = s^-1[r[s]]
#    (new sample i is old sample s[i]; its partner is the new index of old partner r[s[i]]), gives loss[s].
@SETTINGS
@given(
    n=st.integers(min_value=2, max_value=32),
    d=st.integers(min_value=1, max_value=16),
    views=st.sampled_from([2, 4]),
    derangement=st.booleans(),
    seed=seeds,
)
def test_gsg_losses_permute_with_the_batch(n: int, d: int, views: int, derangement: bool, seed: int) -> None:
    p = randn_views(seed, views, n, d)
    t = randn_views(seed + 1, views, n, d)
    g = torch.Generator().manual_seed(seed)
    out = SiameseLoss(gsg=True, gsg_views=views, derangement=derangement)(p, t, g)
    r = out.partner
    assert r is not None and out.pairing_counts is not None
    # gsg_path is the objective's own computation for this pairing.
    loss, choice = gsg_path(p, t, r, views)
    assert torch.allclose(loss, out.per_sample, rtol=0, atol=1e-6)
    assert torch.bincount(choice, minlength=len(PAIRINGS)).tolist() == out.pairing_counts.tolist()

    s = torch.randperm(n, generator=g)
    s_inv = torch.argsort(s)
    r_new = s_inv[r[s]]
    assert torch.equal(r_new[s_inv], s_inv[r])  # the same pairing, relabelled
    loss_new, choice_new = gsg_path([x[s] for x in p], [x[s] for x in t], r_new, views)
    assert torch.equal(choice_new, choice[s])
    assert torch.allclose(loss_new, loss[s], rtol=0, atol=1e-6)


@SETTINGS
@given(n=st.integers(min_value=2, max_value=32), d=st.integers(min_value=1, max_value=16), seed=seeds)
def test_simsiam_losses_permute_with_the_batch(n: int, d: int, seed: int) -> None:
    p = randn_views(seed, 2, n, d)
    t = randn_views(seed + 1, 2, n, d)
    s = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    out = SiameseLoss(gsg=False)(p, t)
    out_new = SiameseLoss(gsg=False)([x[s] for x in p], [x[s] for x in t])
    assert torch.allclose(out_new.per_sample, out.per_sample[s], rtol=0, atol=1e-6)
    assert torch.allclose(out_new.loss, out.loss, atol=1e-6)
    assert torch.allclose(symmetric_loss(p[0], p[1], t[0], t[1]), out.per_sample)


# 4. 4-view GSG whose views 3, 4 repeat views 1, 2 is exactly 2-view GSG (same generator, same pairing).
@SETTINGS
@given(
    n=st.integers(min_value=2, max_value=64),
    d=st.integers(min_value=1, max_value=16),
    derangement=st.booleans(),
    seed=seeds,
)
def test_four_views_with_repeated_views_is_two_view_gsg(n: int, d: int, derangement: bool, seed: int) -> None:
    p = randn_views(seed, 2, n, d)
    t = randn_views(seed + 1, 2, n, d)
    two = SiameseLoss(gsg=True, gsg_views=2, derangement=derangement)(p, t, torch.Generator().manual_seed(seed))
    four = SiameseLoss(gsg=True, gsg_views=4, derangement=derangement)(
        p + p, t + t, torch.Generator().manual_seed(seed)
    )
    assert two.partner is not None and four.partner is not None
    assert torch.equal(two.partner, four.partner)
    assert two.pairing_counts is not None and four.pairing_counts is not None
    assert two.pairing_counts.tolist() == four.pairing_counts.tolist()
    assert torch.equal(two.per_sample, four.per_sample)


# 5a. Distances scale by c and do not move under a common translation, so neither changes the argmin.
@SETTINGS
@given(
    n=st.integers(min_value=2, max_value=64),
    d=st.integers(min_value=1, max_value=16),
    c=st.floats(min_value=1e-3, max_value=1e3),
    shift=st.floats(min_value=0, max_value=10),
    seed=seeds,
)
def test_selection_is_invariant_to_scaling_and_translating_all_targets(
    n: int, d: int, c: float, shift: float, seed: int
) -> None:
    t = randn_views(seed, 4, n, d)
    b = shift * torch.randn(d, generator=torch.Generator().manual_seed(seed + 1))
    dist = torch.stack(
        [torch.linalg.vector_norm(t[i].double() - t[j].double(), dim=-1) for i, j in ((0, 2), (0, 3), (1, 2), (1, 3))],
        dim=-1,
    )
    # Translation by b costs up to ~|b| * float32 eps of absolute error in the distances.
    ok = clear_rows(dist, rel=1e-4 * (1 + float(b.norm())))
    base = select_pairing(*t)
    scaled = select_pairing(*(c * x for x in t))
    moved = select_pairing(*(x + b for x in t))
    assert torch.equal(scaled[ok], base[ok])
    assert torch.equal(moved[ok], base[ok])


# 5b. The loss is a cosine: positive rescaling of each prediction row, and a common positive rescaling of all
#     targets (which keeps the selection, 5a), leave every per-sample loss unchanged.
@pytest.mark.parametrize(("gsg", "views"), MODES, ids=MODE_IDS)
@SETTINGS
@given(
    n=st.integers(min_value=2, max_value=32),
    d=st.integers(min_value=1, max_value=16),
    c=st.floats(min_value=1e-3, max_value=1e3),
    derangement=st.booleans(),
    seed=seeds,
)
def test_loss_is_invariant_to_positive_rescaling(
    gsg: bool, views: int, n: int, d: int, c: float, derangement: bool, seed: int
) -> None:
    p = randn_views(seed, views, n, d)
    t = randn_views(seed + 1, views, n, d)
    g = torch.Generator().manual_seed(seed + 2)
    a = [torch.exp(2 * torch.randn(n, 1, generator=g)) for _ in range(views)]  # factors ~ e^-6 .. e^6
    obj = SiameseLoss(gsg=gsg, gsg_views=views, derangement=derangement)
    out = obj(p, t, torch.Generator().manual_seed(seed))
    p_scaled = [ai * x for ai, x in zip(a, p, strict=True)]
    out_scaled = obj(p_scaled, [c * x for x in t], torch.Generator().manual_seed(seed))
    if gsg:
        assert out.partner is not None and out_scaled.partner is not None
        assert torch.equal(out.partner, out_scaled.partner)
        assume(bool(clear_rows(distances64(t, out.partner, views)).all()))
        assert out.pairing_counts is not None and out_scaled.pairing_counts is not None
        assert out.pairing_counts.tolist() == out_scaled.pairing_counts.tolist()
    assert torch.allclose(out_scaled.per_sample, out.per_sample, rtol=0, atol=1e-5)


# 6. draw_pairing always returns a permutation of 0..n-1; a derangement has no fixed point; the seed decides it.
@SETTINGS
@given(n=st.integers(min_value=2, max_value=64), derangement=st.booleans(), seed=st.integers(0, 2**63 - 1))
def test_draw_pairing_is_a_permutation_and_a_derangement_has_no_fixed_point(
    n: int, derangement: bool, seed: int
) -> None:
    r = draw_pairing(n, torch.Generator().manual_seed(seed), derangement=derangement)
    assert r.dtype == torch.int64 and r.shape == (n,)
    assert sorted(r.tolist()) == list(range(n))
    if derangement:
        assert not (r == torch.arange(n)).any()
    again = draw_pairing(n, torch.Generator().manual_seed(seed), derangement=derangement)
    assert torch.equal(r, again)
