"""The objective against DESIGN.md section 2: hand-computed values, gradients, pairing."""

from __future__ import annotations

import math

import pytest
import torch

from gsg_multimodal.config import ModelConfig, OptimConfig
from gsg_multimodal.losses import (
    PAIRINGS,
    SiameseLoss,
    draw_pairing,
    gsg_loss_per_sample,
    select_pairing,
    symmetric_loss,
)
from gsg_multimodal.model import SiameseNetwork, build_optimizer

R = 1 / math.sqrt(2)


def t(*rows: tuple[float, ...]) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float32)


def test_simsiam_loss_by_hand() -> None:
    p1, p2 = t((1, 0)), t((0, 1))
    z1, z2 = t((1, 1)), t((0, -2))
    # -1/2 [cos(p1, z2) + cos(p2, z1)] = -1/2 [0 + 1/sqrt(2)]
    assert symmetric_loss(p1, p2, z1, z2).item() == pytest.approx(-0.5 * R, abs=1e-6)


def test_selection_picks_each_of_the_four_cases() -> None:
    t11 = t((0, 0), (0, 0), (0, 0), (0, 0))
    t12 = t((10, 0), (10, 0), (10, 0), (10, 0))
    t21 = t((1, 0), (30, 0), (11, 0), (-20, 0))
    t22 = t((20, 0), (1, 0), (-20, 0), (12, 0))
    # distances per sample: (1,20,9,10) (30,1,20,9) (11,20,1,30) (20,12,30,2)
    assert select_pairing(t11, t12, t21, t22).tolist() == [0, 1, 2, 3]


def test_selection_uses_raw_not_normalised_projections() -> None:
    # t21 points the same way as t11 (normalised distance 0) but is far away in raw distance.
    t11, t12, t21, t22 = t((1, 0)), t((-50, -50)), t((100, 0)), t((0, 1.5))
    assert select_pairing(t11, t12, t21, t22).item() == 1  # (11, 22): raw distance 1.80


# p and t chosen so that a = cos(p11, t12) = 1, b = cos(p12, t11) = 0,
# c = cos(p21, t22) = 1/sqrt(2), d = cos(p22, t21) = -1.
P = {"11": t((1, 1)), "12": t((0, 1)), "21": t((1, 0)), "22": t((0, 1))}
T = {"11": t((1, 0)), "12": t((2, 2)), "21": t((0, -3)), "22": t((1, 1))}
EXPECTED = {
    0: -0.5 * (1 + R),  # (11, 21): p11 -> z12, p21 -> z22
    1: -0.5 * (1 - 1),  # (11, 22): p11 -> z12, p22 -> z21
    2: -0.5 * (0 + R),  # (12, 21): p12 -> z11, p21 -> z22
    3: -0.5 * (0 - 1),  # (12, 22): p12 -> z11, p22 -> z21
}


@pytest.mark.parametrize("case", [0, 1, 2, 3])
def test_gsg_loss_by_hand_for_each_case(case: int) -> None:
    loss = gsg_loss_per_sample(P, T, torch.tensor([case]))
    assert loss.item() == pytest.approx(EXPECTED[case], abs=1e-6)


def test_gsg_loss_is_the_batch_mean_of_the_chosen_cases() -> None:
    p = {k: v.repeat(4, 1) for k, v in P.items()}
    tt = {k: v.repeat(4, 1) for k, v in T.items()}
    loss = gsg_loss_per_sample(p, tt, torch.tensor([0, 1, 2, 3]))
    assert loss.mean().item() == pytest.approx(sum(EXPECTED.values()) / 4, abs=1e-6)


def reference_gsg(p: list[torch.Tensor], z: list[torch.Tensor], r: torch.Tensor, views: int) -> torch.Tensor:
    """A loop-per-sample transcription of DESIGN.md section 2, for comparison."""
    i21, i22 = (2, 3) if views == 4 else (0, 1)
    losses = []
    for i in range(p[0].shape[0]):
        j = int(r[i])
        pv = {"11": p[0][i], "12": p[1][i], "21": p[i21][j], "22": p[i22][j]}
        zv = {"11": z[0][i], "12": z[1][i], "21": z[i21][j], "22": z[i22][j]}
        dists = [float(torch.dist(zv[a], zv[b])) for a, b in PAIRINGS]
        a, b = PAIRINGS[dists.index(min(dists))]
        sib = {"11": "12", "12": "11", "21": "22", "22": "21"}
        cos = torch.nn.functional.cosine_similarity
        losses.append(-0.5 * (cos(pv[a], zv[sib[a]], dim=0) + cos(pv[b], zv[sib[b]], dim=0)))
    return torch.stack(losses)


@pytest.mark.parametrize("views", [4, 2])
@pytest.mark.parametrize("derangement", [True, False])
def test_objective_matches_the_reference(views: int, derangement: bool) -> None:
    torch.manual_seed(0)
    n, d = 16, 8
    p = [torch.randn(n, d) for _ in range(views)]
    z = [torch.randn(n, d) for _ in range(views)]
    obj = SiameseLoss(gsg=True, gsg_views=views, derangement=derangement)
    out = obj(p, z, torch.Generator().manual_seed(1))
    assert torch.allclose(out.per_sample, reference_gsg(p, z, out.partner, views), atol=1e-6)
    assert out.pairing_counts.sum().item() == n


def test_byol_gsg_selects_with_the_target_projections() -> None:
    # Predictions would select case 0; the targets (EMA network) select case 3, which must win.
    p = [t((0, 0)), t((10, 0)), t((1, 0)), t((20, 0))]
    tgt = [t((0, 0)), t((10, 0)), t((-20, 0)), t((12, 0))]
    p, tgt = [x.repeat(2, 1) for x in p], [x.repeat(2, 1) for x in tgt]
    out = SiameseLoss(gsg=True, gsg_views=4)(p, tgt, torch.Generator().manual_seed(0))
    assert out.pairing_counts.tolist() == [0, 0, 0, 2]


@pytest.mark.parametrize("views", [4, 2])
def test_gradients_reach_exactly_the_source_views(views: int) -> None:
    torch.manual_seed(0)
    n, d = 12, 5
    p = [torch.randn(n, d, requires_grad=True) for _ in range(views)]
    z = [torch.randn(n, d, requires_grad=True) for _ in range(views)]
    out = SiameseLoss(gsg=True, gsg_views=views)(p, z, torch.Generator().manual_seed(3))
    out.loss.backward()
    for zi in z:
        assert zi.grad is None  # stop-gradient targets never receive gradient
    i21, i22 = (2, 3) if views == 4 else (0, 1)
    choice = select_pairing(z[0], z[1], z[i21][out.partner], z[i22][out.partner])
    expected = [torch.zeros(n, dtype=torch.bool) for _ in range(views)]
    for i, c in enumerate(choice.tolist()):
        a, b = PAIRINGS[c]
        expected[0 if a == "11" else 1][i] = True
        expected[i21 if b == "21" else i22][int(out.partner[i])] = True
    for v in range(views):
        got = p[v].grad.abs().sum(dim=1) > 0
        assert torch.equal(got, expected[v]), f"view {v}"


def test_simsiam_gradients_only_through_predictions() -> None:
    p = [torch.randn(4, 3, requires_grad=True) for _ in range(2)]
    z = [torch.randn(4, 3, requires_grad=True) for _ in range(2)]
    SiameseLoss(gsg=False)(p, z).loss.backward()
    assert z[0].grad is None and z[1].grad is None
    assert all(pi.grad.abs().sum() > 0 for pi in p)


def test_derangement_never_pairs_a_sample_with_itself() -> None:
    g = torch.Generator().manual_seed(0)
    for n in range(2, 12):
        for _ in range(200):
            r = draw_pairing(n, g, derangement=True)
            assert sorted(r.tolist()) == list(range(n))
            assert not (r == torch.arange(n)).any()


def test_plain_permutation_does_pair_samples_with_themselves() -> None:
    g = torch.Generator().manual_seed(0)
    fixed = sum(int((draw_pairing(8, g, derangement=False) == torch.arange(8)).sum()) for _ in range(500))
    assert 300 < fixed < 700  # one fixed point per draw on average, as in the published code


def test_derangement_needs_two_samples() -> None:
    with pytest.raises(ValueError):
        draw_pairing(1, torch.Generator(), derangement=True)


class CountingEncoder(torch.nn.Module):
    out_dim = 6

    def __init__(self) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(3, 6)
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += x.shape[0]
        return self.lin(x)


@pytest.mark.parametrize(("gsg", "views", "forwards"), [(False, 4, 2), (True, 2, 2), (True, 4, 4)])
def test_encoder_forward_passes_per_step(gsg: bool, views: int, forwards: int) -> None:
    """2-view GSG costs what SimSiam costs; published GSG encodes 4N views."""
    enc = CountingEncoder()
    model = SiameseNetwork(enc, ModelConfig(projector_hidden=8, projector_dim=8, predictor_hidden=4))
    obj = SiameseLoss(gsg=gsg, gsg_views=views)
    n = 10
    z, p, _ = model([torch.randn(n, 3) for _ in range(obj.n_views)])
    obj(p, z, torch.Generator().manual_seed(0)).loss.backward()
    assert enc.calls == forwards * n


def test_no_predictor_means_p_equals_z() -> None:
    model = SiameseNetwork(CountingEncoder(), ModelConfig(projector_hidden=8, projector_dim=8, predictor=False))
    z, p, _ = model([torch.randn(4, 3), torch.randn(4, 3)])
    assert all(pi is zi for pi, zi in zip(p, z, strict=True))
    assert not list(model.predictor.parameters())


def test_projector_ends_in_batchnorm_without_affine() -> None:
    model = SiameseNetwork(CountingEncoder(), ModelConfig(projector_hidden=8, projector_dim=8, projector_layers=3))
    last = model.projector[-1]
    assert isinstance(last, torch.nn.BatchNorm1d) and not last.affine
    assert sum(isinstance(m, torch.nn.Linear) for m in model.projector) == 3


@pytest.mark.parametrize("name", ["sgd", "adamw"])
def test_fused_optimizer_updates_like_the_plain_loop(name: str) -> None:
    torch.manual_seed(0)
    params = [torch.randn(5, 3), torch.randn(7)]
    cfg = OptimConfig(name=name, lr=0.1, weight_decay=0.01)
    fused = [p.clone().requires_grad_() for p in params]
    plain = [p.clone().requires_grad_() for p in params]
    ours = build_optimizer([{"params": fused}], cfg, torch.device("cpu"))
    ref = (
        torch.optim.SGD(plain, lr=0.1, momentum=cfg.momentum, weight_decay=0.01, foreach=False)
        if name == "sgd"
        else torch.optim.AdamW(plain, lr=0.1, betas=cfg.betas, weight_decay=0.01, foreach=False)
    )
    for step in range(3):
        grads = [torch.randn_like(p) for p in params]
        for opt, ps in ((ours, fused), (ref, plain)):
            for p, g in zip(ps, grads, strict=True):
                p.grad = g.clone()
            opt.step()
        for a, b in zip(fused, plain, strict=True):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=f"step {step}")


def reference_controls(
    p: list[torch.Tensor], z: list[torch.Tensor], views: int, partner: list[int], choice: list[int]
) -> torch.Tensor:
    """Per-sample transcription of GSG with a given partner and a given case per sample (no argmin)."""
    i21, i22 = (2, 3) if views == 4 else (0, 1)
    sib = {"11": "12", "12": "11", "21": "22", "22": "21"}
    cos = torch.nn.functional.cosine_similarity
    losses = []
    for i, (j, c) in enumerate(zip(partner, choice, strict=True)):
        pv = {"11": p[0][i], "12": p[1][i], "21": p[i21][j], "22": p[i22][j]}
        zv = {"11": z[0][i], "12": z[1][i], "21": z[i21][j], "22": z[i22][j]}
        a, b = PAIRINGS[c]
        losses.append(-0.5 * (cos(pv[a], zv[sib[a]], dim=0) + cos(pv[b], zv[sib[b]], dim=0)))
    return torch.stack(losses)


@pytest.mark.parametrize("views", [4, 2])
def test_random_selection_control_matches_the_reference(views: int) -> None:
    torch.manual_seed(0)
    n, d = 64, 8
    p = [torch.randn(n, d) for _ in range(views)]
    z = [torch.randn(n, d) for _ in range(views)]
    out = SiameseLoss(gsg=True, gsg_views=views, selection="random")(p, z, torch.Generator().manual_seed(4))
    # Replay the generator: the partner is drawn first, then one case per sample.
    g = torch.Generator().manual_seed(4)
    partner = draw_pairing(n, g, derangement=True)
    choice = torch.randint(4, (n,), generator=g)
    assert torch.equal(out.partner, partner)
    assert torch.allclose(out.per_sample, reference_controls(p, z, views, partner.tolist(), choice.tolist()), atol=1e-6)
    assert out.pairing_counts.tolist() == torch.bincount(choice, minlength=4).tolist()
    # Not the guided choice: with 64 samples, random and argmin cases disagree somewhere.
    guided = SiameseLoss(gsg=True, gsg_views=views)(p, z, torch.Generator().manual_seed(4))
    assert not torch.allclose(out.per_sample, guided.per_sample)


@pytest.mark.parametrize("views", [4, 2])
def test_hard_partner_is_the_nearest_other_sample(views: int) -> None:
    torch.manual_seed(1)
    n, d = 12, 5
    p = [torch.randn(n, d) for _ in range(views)]
    z = [torch.randn(n, d) for _ in range(views)]
    out = SiameseLoss(gsg=True, gsg_views=views, partner="hard")(p, z, torch.Generator().manual_seed(0))
    partner, choice = [], []
    for i in range(n):
        centre = lambda k: (z[0][k] + z[1][k]) / 2  # noqa: E731
        others = [(float(torch.dist(centre(i), centre(k))), k) for k in range(n) if k != i]
        j = min(others)[1]
        partner.append(j)
        cand = {"11": z[0][i], "12": z[1][i], "21": z[2 if views == 4 else 0][j], "22": z[3 if views == 4 else 1][j]}
        dists = [float(torch.dist(cand[a], cand[b])) for a, b in PAIRINGS]
        choice.append(dists.index(min(dists)))
    assert out.partner.tolist() == partner and all(j != i for i, j in enumerate(partner))
    assert torch.allclose(out.per_sample, reference_controls(p, z, views, partner, choice), atol=1e-6)
