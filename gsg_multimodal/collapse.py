"""Collapse measured where it can show: the spread of features before any BatchNorm re-standardises them.

A non-affine BatchNorm at the end of the projector rescales every dimension to unit variance per
batch, so the std of its output stays near ``1/sqrt(d)`` even for rank-1 representations. These
measures are taken instead on eval-mode encoder features and on the projector's output *before*
that BatchNorm:

- ``effective_rank``: ``exp(H(p))`` with ``p`` the singular values of the centred features
  normalised to sum 1 (Roy & Vetterli 2007): 1 for rank-1 features, ``min(N, d)`` for isotropic ones.
- ``normalised_std``: the mean over dimensions of the std over samples of L2-normalised features
  (SimSiam's Fig. 2): 0 when every sample maps to one direction, about ``1/sqrt(d)`` when spread.
"""

from __future__ import annotations

import math

import torch


def effective_rank(x: torch.Tensor) -> float:
    """Effective rank of ``x [N, d]`` after centring (1.0 for constant or rank-1 features)."""
    x = x.detach().double()
    x = x - x.mean(0, keepdim=True)
    s = torch.linalg.svdvals(x)
    total = s.sum()
    if total <= 1e-12 * max(1.0, float(x.abs().max())):
        return 1.0  # all samples equal: nothing spreads
    p = s / total
    p = p[p > 0]
    return float(torch.exp(-(p * p.log()).sum()))


def normalised_std(x: torch.Tensor) -> float:
    """Mean per-dimension std of L2-normalised rows; ``1/sqrt(d)`` is the no-collapse reference."""
    return float(torch.nn.functional.normalize(x.detach().double(), dim=1).std(dim=0).mean())


def collapse_stats(x: torch.Tensor) -> dict[str, float]:
    """Both measures and their references, as one JSON-able row."""
    n, d = x.shape
    return {
        "effective_rank": effective_rank(x),
        "rank_ceiling": float(min(n, d)),
        "normalised_std": normalised_std(x),
        "std_reference": 1.0 / math.sqrt(d),
    }
