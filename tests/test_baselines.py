"""The reference rows of a comparison: SimCLR / InfoNCE (explicit negatives) and the supervised ceiling."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from gsg_multimodal.cli import main
from gsg_multimodal.config import load_config
from gsg_multimodal.errors import UserError
from gsg_multimodal.losses import ContrastiveLoss, SupervisedLoss, info_nce_per_sample

from .conftest import ROOT, TINY

CONFIG = str(ROOT / "configs" / "acsf1_gsg.yaml")


def test_info_nce_matches_a_hand_computed_case() -> None:
    # Two samples, two views, 2-d unit vectors. Views: a1=(1,0), b1=(0,1) (sample 0's two views are
    # orthogonal), a2=(0,1), b2=(1,0)... written out so each cosine is 0 or 1.
    z1 = torch.tensor([[1.0, 0.0], [0.0, 1.0]])  # view 1 of samples 0 and 1
    z2 = torch.tensor([[1.0, 0.0], [1.0, 0.0]])  # view 2 of samples 0 and 1
    tau = 0.5
    # Anchor z1[0]=(1,0): candidates z1[1] (cos 0), z2[0] (cos 1, positive), z2[1] (cos 1).
    l_a0 = -math.log(math.exp(2) / (math.exp(0) + math.exp(2) + math.exp(2)))
    # Anchor z1[1]=(0,1): candidates z1[0] (0), z2[0] (0), z2[1] (0, positive): uniform over 3.
    l_a1 = math.log(3)
    # Anchor z2[0]=(1,0): candidates z1[0] (1, positive), z1[1] (0), z2[1] (1).
    l_b0 = l_a0
    # Anchor z2[1]=(1,0): candidates z1[0] (1), z1[1] (0, positive), z2[0] (1).
    l_b1 = -math.log(math.exp(0) / (math.exp(2) + math.exp(0) + math.exp(2)))
    expected = torch.tensor([(l_a0 + l_b0) / 2, (l_a1 + l_b1) / 2])
    assert torch.allclose(info_nce_per_sample(z1, z2, tau), expected, atol=1e-6)
    out = ContrastiveLoss(tau)([z1, z2])
    assert out.loss.item() == pytest.approx(expected.mean().item(), abs=1e-6)


def test_info_nce_is_scale_invariant_and_symmetric_in_the_views() -> None:
    g = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(6, 5, generator=g), torch.randn(6, 5, generator=g)
    base = info_nce_per_sample(z1, z2, 0.2)
    assert torch.allclose(info_nce_per_sample(3 * z1, 0.5 * z2, 0.2), base, atol=1e-5)
    assert torch.allclose(info_nce_per_sample(z2, z1, 0.2), base, atol=1e-5)
    perm = torch.randperm(6, generator=g)
    assert torch.allclose(info_nce_per_sample(z1[perm], z2[perm], 0.2), base[perm], atol=1e-5)


def test_info_nce_gradients_reach_both_views() -> None:
    z1 = torch.randn(4, 3, requires_grad=True)
    z2 = torch.randn(4, 3, requires_grad=True)
    info_nce_per_sample(z1, z2, 0.1).mean().backward()
    assert z1.grad is not None and z2.grad is not None
    assert z1.grad.abs().sum() > 0 and z2.grad.abs().sum() > 0


def test_supervised_objective_is_cross_entropy_averaged_over_views() -> None:
    logits = [torch.tensor([[2.0, 0.0], [0.0, 0.0]]), torch.tensor([[0.0, 0.0], [0.0, 3.0]])]
    labels = torch.tensor([0, 1])
    ce = lambda x, y: -math.log(math.exp(x[y]) / sum(math.exp(v) for v in x))  # noqa: E731
    expected = [
        (ce([2.0, 0.0], 0) + ce([0.0, 0.0], 0)) / 2,
        (ce([0.0, 0.0], 1) + ce([0.0, 3.0], 1)) / 2,
    ]
    out = SupervisedLoss()(logits, labels)
    assert out.per_sample.tolist() == pytest.approx(expected, abs=1e-6)


def test_the_removed_gsg_switch_names_its_replacement() -> None:
    with pytest.raises(UserError, match="objective.method=gsg"):
        load_config(CONFIG, ["objective.gsg=true"])


def test_an_unknown_objective_lists_the_registered_ones() -> None:
    with pytest.raises(UserError, match="unknown objective.method 'simsiam-gsg'; choose from ") as err:
        load_config(CONFIG, ["objective.method=simsiam-gsg"])
    listed = str(err.value).split("choose from ")[1].split(", ")
    assert {"simsiam", "gsg", "byol", "byol-gsg", "simclr", "supervised", "ts2vec", "gsg-temporal"} <= set(listed)


@pytest.mark.slow
@pytest.mark.parametrize("method", ["simclr", "supervised"])
def test_reference_methods_pretrain_and_evaluate(tmp_path: Path, method: str) -> None:
    run = tmp_path / method
    args = [*TINY, f"objective.method={method}", f"output_dir={run}", "monitor.knn_every=0"]
    assert main(["pretrain", CONFIG, *args]) == 0
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in rows if "loss" in r]
    assert losses and all(math.isfinite(v) and v > 0 for v in losses)  # CE and InfoNCE are positive
    assert not any("pair_11_21" in r for r in rows)  # no GSG pairing statistics without GSG
    assert main(["evaluate", str(run)]) == 0
    res = json.loads((run / "eval.json").read_text())
    assert 0.0 <= res["linear"]["accuracy"] <= 1.0
    # The export holds only the encoder: no projector, predictor or classifier weights.
    from safetensors.torch import load_file

    keys = load_file(str(run / "encoder" / "model.safetensors")).keys()
    assert not any(k.startswith(("projector", "predictor", "classifier")) for k in keys)


@pytest.mark.slow
def test_supervised_ceiling_learns_the_labels(tmp_path: Path) -> None:
    """On BasicMotions (4 easy classes) a few supervised epochs must beat chance clearly."""
    run = tmp_path / "sup"
    args = [*TINY, "objective.method=supervised", f"output_dir={run}"]
    args += ["train.epochs=15", "optim.name=adamw", "optim.lr=0.003", "monitor.knn_every=0"]
    assert main(["pretrain", CONFIG, *args]) == 0
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines() if "loss" in x]
    assert rows[-1]["loss"] < rows[0]["loss"]
    assert main(["evaluate", str(run)]) == 0
    assert json.loads((run / "eval.json").read_text())["knn"]["accuracy"] > 0.5  # chance is 0.25
