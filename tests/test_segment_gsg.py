"""``gsg-segment``: instance-level GSG on views sharing an aligned segment, pooled over that segment only.

Checked against a per-sample transcription: every view of every series encoded alone, cut to the shared
segment, pooled, then the GSG rule of docs/objective.md applied sample by sample.
"""

from __future__ import annotations

import contextlib
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from gsg_domains.timeseries.augment import collate_series
from gsg_multimodal.config import load_config
from gsg_multimodal.domain import Domain, SequenceViews
from gsg_multimodal.losses import PAIRINGS, draw_pairing
from gsg_multimodal.objectives import Objective, build_objective
from gsg_multimodal.objectives.sequence import pool_segment
from gsg_multimodal.runtime import load_bound

ROOT = Path(__file__).resolve().parents[1]
TINY = [
    "encoder.hidden=8",
    "encoder.depth=3",
    "encoder.out_dim=12",
    "model.projector_hidden=16",
    "model.projector_dim=10",
    "model.predictor_hidden=6",
    "data.name=BasicMotions",
]


def setup(pooling: str, views: int, *extra: str) -> tuple[Objective, torch.nn.Module, Domain]:
    cfg = load_config(
        ROOT / "configs" / "arrowhead_gsg.yaml",
        [*TINY, "objective.method=gsg-segment", f"objective.gsg_views={views}", f"encoder.pooling={pooling}", *extra],
    )
    domain, data = load_bound(cfg)
    objective = build_objective(cfg, data)
    torch.manual_seed(0)
    network = objective.build(domain.build_encoder())
    return objective, network, domain


def batch_of(lengths: list[int], channels: int = 6) -> dict[str, torch.Tensor]:
    rng = np.random.default_rng(0)
    return collate_series(
        [{"series": rng.standard_normal((channels, n)).astype(np.float32), "length": n} for n in lengths]
    )


def transcription(
    network: torch.nn.Module, views: SequenceViews, pooling: str, r: torch.Tensor, n_views: int
) -> torch.Tensor:
    """Per-sample loop: each crop encoded alone, pooled over the shared segment; then GSG per sample."""
    pooled = []
    for view, (start, length) in zip(views.views, views.overlap, strict=True):
        rows = []
        for i in range(view.x.shape[0]):
            alone = view.x[i : i + 1, :, : int(view.lengths[i])]
            seq = network.encoder.encode_sequence(alone)[:, start : start + length]
            rows.append(pool_segment(seq, pooling)[0])
        pooled.append(torch.stack(rows))
    # BatchNorm in the heads normalises over the batch, so the heads take the stacked rows.
    z = [network.projector(f) for f in pooled]
    p = [network.predictor(zi) for zi in z]
    i21, i22 = (2, 3) if n_views == 4 else (0, 1)
    sib = {"11": "12", "12": "11", "21": "22", "22": "21"}
    cos = torch.nn.functional.cosine_similarity
    losses = []
    for i in range(len(r)):
        j = int(r[i])
        pv = {"11": p[0][i], "12": p[1][i], "21": p[i21][j], "22": p[i22][j]}
        zv = {"11": z[0][i], "12": z[1][i], "21": z[i21][j], "22": z[i22][j]}
        dists = [float(torch.dist(zv[a], zv[b]).detach()) for a, b in PAIRINGS]
        a, b = PAIRINGS[dists.index(min(dists))]
        losses.append(-0.5 * (cos(pv[a], zv[sib[a]].detach(), dim=0) + cos(pv[b], zv[sib[b]].detach(), dim=0)))
    return torch.stack(losses).mean()


@pytest.mark.parametrize("pooling", ["max", "mean+max"])
@pytest.mark.parametrize("n_views", [4, 2])
def test_segment_gsg_matches_the_per_sample_transcription(pooling: str, n_views: int) -> None:
    objective, network, domain = setup(pooling, n_views)
    assert objective.n_views == n_views
    batch = batch_of([40, 17, 33, 25, 40, 29])
    views = objective.views(domain, batch, torch.Generator().manual_seed(3))
    assert len(views.views) == n_views and len({length for _, length in views.overlap}) == 1
    out = objective.compute(network, views, batch, torch.Generator().manual_seed(7), contextlib.nullcontext)
    r = draw_pairing(6, torch.Generator().manual_seed(7), derangement=True)
    expected = transcription(network, views, pooling, r, n_views)
    torch.testing.assert_close(out.loss, expected, atol=1e-5, rtol=1e-5)
    assert int(out.pairing_counts.sum()) == 6


def test_pooling_sees_only_the_shared_segment() -> None:
    """Changing a view outside the shared segment's receptive field leaves its pooled feature unchanged."""
    off = ["views.jitter_sigma=0", "views.scaling_sigma=0", "views.magnitude_warp_p=0", "views.mask_p=0"]
    objective, network, domain = setup("max", 4, *off)
    views = objective.views(domain, batch_of([200] * 4), torch.Generator().manual_seed(0))
    network.eval()
    with torch.no_grad():
        before = network(views).pre_bn
        start, length = views.overlap[0]
        field = 64  # well past the receptive field of 3 dilated blocks (two kernel-3 convolutions each, 1, 2, 4)
        views.views[0].x[:, :, start + length + field :] += 100.0
        views.views[0].x[:, :, : max(0, start - field)] += 100.0
        after = network(views).pre_bn
    torch.testing.assert_close(before, after)
    assert math.isfinite(float(before.abs().sum()))


def test_pool_segment_names_an_unknown_pooling() -> None:
    with pytest.raises(ValueError, match="unknown pooling 'median'"):
        pool_segment(torch.zeros(2, 3, 4), "median")
