"""The collapse measures: right on constructed features, and they fire on a run that really collapses."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from gsg_multimodal.collapse import collapse_stats, effective_rank, normalised_std


def test_rank_one_features_have_effective_rank_one_and_no_spread() -> None:
    direction = torch.randn(1, 32)
    collapsed = torch.randn(100, 1) * direction  # every sample on one line
    assert effective_rank(collapsed) == pytest.approx(1.0, abs=1e-4)  # float32 input: tiny other singular values
    constant = direction.repeat(100, 1)  # every sample the same point
    assert effective_rank(constant) == 1.0 and normalised_std(constant) == pytest.approx(0.0, abs=1e-9)


def test_isotropic_features_are_near_full_rank_and_reference_spread() -> None:
    torch.manual_seed(0)
    healthy = torch.randn(2000, 16)
    stats = collapse_stats(healthy)
    assert stats["rank_ceiling"] == 16 and stats["effective_rank"] > 15
    assert stats["normalised_std"] == pytest.approx(1 / math.sqrt(16), rel=0.05)


def test_a_k_dimensional_subspace_has_effective_rank_k() -> None:
    torch.manual_seed(1)
    basis = torch.linalg.qr(torch.randn(64, 4)).Q.T  # 4 orthonormal directions in 64-d
    feats = torch.randn(5000, 4) @ basis
    assert effective_rank(feats) == pytest.approx(4, rel=0.05)


def test_a_non_affine_batchnorm_hides_collapse_that_the_pre_bn_rank_shows() -> None:
    """Why the monitor reads pre-BatchNorm projections: BN makes a rank-1 batch look spread out per dimension."""
    torch.manual_seed(2)
    rank_one = torch.randn(256, 1) * torch.randn(1, 32) + 0.01 * torch.randn(256, 32)
    after_bn = torch.nn.BatchNorm1d(32, affine=False)(rank_one)
    assert after_bn.std(0).mean() == pytest.approx(1.0, abs=0.01)  # per-dimension std says "healthy"
    assert effective_rank(rank_one) < 2  # the rank says collapsed


@pytest.mark.slow
def test_the_effective_rank_fires_on_simsiam_without_stop_gradient(tmp_path: Path) -> None:
    """Positive control: the same run with the stop-gradient removed collapses; with it, it does not."""
    from gsg_multimodal.cli import main

    config = tmp_path / "toy.yaml"
    config.write_text(
        json.dumps(
            {
                "domain": "tests.toy_domain:DigitsDomain",
                "model": {"projector_hidden": 64, "projector_dim": 64, "predictor_hidden": 16},
                "optim": {"name": "sgd", "lr": 0.1},
                "train": {"epochs": 20, "batch_size": 32, "log_every": 5, "trackers": ["none"], "cpu": True},
                "monitor": {"knn_every": 0},
            }
        )
    )
    final = {}
    for method in ("simsiam", "simsiam-nosg"):
        run = tmp_path / method
        args = ["pretrain", str(config), f"objective.method={method}", f"output_dir={run}", "train.progress_bar=false"]
        assert main(args) == 0
        rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
        final[method] = sum(r["effective_rank"] for r in rows[-4:] if "effective_rank" in r) / 4
    # Seen: about 14.5 with the stop-gradient, 3.2 without (64-d projections, 120 steps).
    assert final["simsiam-nosg"] < 0.5 * final["simsiam"], final
