"""The objectives: SimSiam, BYOL and Guided Stop-Gradient (GSG), as DESIGN.md section 2 states them.

Everything here is a pure function of projections ``z`` (encoder + projector), predictions
``p = h(z)`` and targets ``t`` (the ``z`` the loss regresses onto: the online network's own
``z`` for SimSiam, the EMA target network's for BYOL). The stop-gradient lives inside the
loss (``t.detach()``), so callers cannot forget it.

GSG, for a batch of N samples and a pairing ``r``: sample i is "image 1" (views 11, 12), its
partner ``r[i]`` is "image 2" (views 21, 22). Per sample, the closest cross-pair among
``(11,21), (11,22), (12,21), (12,22)`` (Euclidean distance of raw target projections) is the
*source* side; each source view predicts the other view of its own image.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

# The four GSG cases, in the order the argmin indexes them: (view of image 1, view of image 2).
PAIRINGS: tuple[tuple[str, str], ...] = (("11", "21"), ("11", "22"), ("12", "21"), ("12", "22"))


def negative_cosine(p: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-sample ``-cos(p, sg(target))``, computed in float32 whatever the autocast dtype."""
    return -F.cosine_similarity(p.float(), target.detach().float(), dim=-1)


def symmetric_loss(p1: torch.Tensor, p2: torch.Tensor, t1: torch.Tensor, t2: torch.Tensor) -> torch.Tensor:
    """SimSiam/BYOL: ``-1/2 [cos(p1, sg t2) + cos(p2, sg t1)]`` per sample."""
    return 0.5 * (negative_cosine(p1, t2) + negative_cosine(p2, t1))


def draw_pairing(n: int, generator: torch.Generator, derangement: bool) -> torch.Tensor:
    """A pairing ``r`` of 0..n-1 drawn on the generator's device.

    ``derangement=False`` is the published code's plain ``randperm`` (about one sample
    per batch is paired with itself). ``derangement=True`` redraws until no sample is its
    own partner, which gives a uniformly random derangement in e ~ 2.7 draws on average.
    The trainer passes a CPU generator: the fixed-point check then reads no GPU memory,
    so drawing costs no host-device synchronisation.
    """
    if derangement and n < 2:
        raise ValueError("a derangement needs at least 2 samples per batch")
    idx = torch.arange(n, device=generator.device)
    while True:
        r = torch.randperm(n, generator=generator, device=generator.device)
        if not derangement or not bool((r == idx).any()):
            return r


def select_pairing(t11: torch.Tensor, t12: torch.Tensor, t21: torch.Tensor, t22: torch.Tensor) -> torch.Tensor:
    """Index into ``PAIRINGS`` of the closest cross-sample pair, per sample (no gradient)."""
    with torch.no_grad():
        dist = torch.stack(
            [
                torch.linalg.vector_norm(t11.float() - t21.float(), dim=-1),
                torch.linalg.vector_norm(t11.float() - t22.float(), dim=-1),
                torch.linalg.vector_norm(t12.float() - t21.float(), dim=-1),
                torch.linalg.vector_norm(t12.float() - t22.float(), dim=-1),
            ],
            dim=-1,
        )
        return dist.argmin(dim=-1)


def random_selection(n: int, generator: torch.Generator) -> torch.Tensor:
    """The control for the guide: one of the four cases per sample, uniformly at random (no argmin)."""
    return torch.randint(len(PAIRINGS), (n,), generator=generator, device=generator.device)


def hard_partners(t1: torch.Tensor, t2: torch.Tensor) -> torch.Tensor:
    """Each sample's nearest *other* sample: argmin over j != i of ``d(c_i, c_j)``, ``c = (t1 + t2) / 2``.

    The centre of a sample's two (image-1) target views stands for the sample. No gradient.
    """
    with torch.no_grad():
        c = 0.5 * (t1.float() + t2.float())
        dist = torch.cdist(c, c)
        dist.fill_diagonal_(float("inf"))
        return dist.argmin(dim=1)


def gsg_loss_per_sample(p: dict[str, torch.Tensor], t: dict[str, torch.Tensor], choice: torch.Tensor) -> torch.Tensor:
    """Per-sample GSG loss for the chosen pairing.

    ``p`` and ``t`` map view names ``"11", "12", "21", "22"`` to ``[N, d]`` predictions and
    targets. For choice ``(a, b)`` the loss is ``-1/2 [cos(p_a, sg t_a') + cos(p_b, sg t_b')]``
    where ``a'`` is the other view of ``a``'s image. The four candidate losses are formed and
    the chosen one kept with ``torch.where``, so gradients reach only the chosen source views.
    """
    sibling = {"11": "12", "12": "11", "21": "22", "22": "21"}
    term = {v: negative_cosine(p[v], t[sibling[v]]) for v in sibling}
    candidates = torch.stack([0.5 * (term[a] + term[b]) for a, b in PAIRINGS], dim=-1)
    mask = choice.unsqueeze(1) == torch.arange(len(PAIRINGS), device=choice.device)  # one-hot without a sync
    return torch.where(mask, candidates, torch.zeros_like(candidates)).sum(dim=-1)


@dataclass
class ObjectiveOutput:
    loss: torch.Tensor
    per_sample: torch.Tensor
    pairing_counts: torch.Tensor | None = None  # [4] counts of each GSG case in the batch
    partner: torch.Tensor | None = None  # the pairing r used


class SiameseLoss:
    """Loss for SimSiam/BYOL with or without GSG, given per-view projections and predictions.

    ``views`` is 2 (SimSiam/BYOL, or GSG with partners taken from the same 2N views) or 4
    (GSG as published). Inputs are lists over views of ``[N, d]`` tensors: ``p`` predictions,
    ``t`` targets (``z`` itself for SimSiam, the EMA network's ``z`` for BYOL).

    Two controls isolate the guide: ``selection="random"`` picks the case at random instead of by
    the argmin (same views, same partner), and ``partner="hard"`` pairs each sample with its nearest
    other sample in the batch (``hard_partners``) instead of a random one.
    """

    def __init__(
        self,
        gsg: bool,
        gsg_views: int = 4,
        derangement: bool = True,
        selection: Literal["guided", "random"] = "guided",
        partner: Literal["random", "hard"] = "random",
    ) -> None:
        if gsg_views not in (2, 4):
            raise ValueError(f"gsg_views must be 2 or 4, got {gsg_views}")
        self.gsg = gsg
        self.gsg_views = gsg_views
        self.derangement = derangement
        self.selection = selection
        self.partner = partner

    @property
    def n_views(self) -> int:
        return 4 if self.gsg and self.gsg_views == 4 else 2

    def __call__(
        self, p: list[torch.Tensor], t: list[torch.Tensor], generator: torch.Generator | None = None
    ) -> ObjectiveOutput:
        if len(p) != self.n_views or len(t) != self.n_views:
            raise ValueError(f"objective expects {self.n_views} views, got {len(p)} predictions and {len(t)} targets")
        if not self.gsg:
            per_sample = symmetric_loss(p[0], p[1], t[0], t[1])
            return ObjectiveOutput(per_sample.mean(), per_sample)
        if generator is None:
            raise ValueError("GSG needs a generator to draw the pairing")
        n = p[0].shape[0]
        if self.partner == "hard":
            r = hard_partners(t[0], t[1])
        else:
            r = to_device_async(draw_pairing(n, generator, self.derangement), p[0].device)
        # Image 2's views: the extra two views (published GSG) or the same two views (2-view GSG).
        i21, i22 = (2, 3) if self.gsg_views == 4 else (0, 1)
        pv = {"11": p[0], "12": p[1], "21": p[i21][r], "22": p[i22][r]}
        tv = {"11": t[0], "12": t[1], "21": t[i21][r], "22": t[i22][r]}
        if self.selection == "random":
            choice = to_device_async(random_selection(n, generator), p[0].device)
        else:
            choice = select_pairing(tv["11"], tv["12"], tv["21"], tv["22"])
        per_sample = gsg_loss_per_sample(pv, tv, choice)
        # scatter_add rather than bincount: bincount reads the max back to the host (a sync on GPUs).
        counts = torch.zeros(len(PAIRINGS), dtype=torch.long, device=choice.device)
        counts.scatter_add_(0, choice, torch.ones_like(choice))
        return ObjectiveOutput(per_sample.mean(), per_sample, counts, r)


def to_device_async(x: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Copy a small host tensor to ``device`` without waiting for the kernels queued there."""
    if x.device == device:
        return x
    if device.type == "cuda":  # a copy from pageable memory would synchronise; pinned memory does not
        x = x.pin_memory()
    return x.to(device, non_blocking=True)


def info_nce_per_sample(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> torch.Tensor:
    """SimCLR's NT-Xent per sample: each view must pick its sibling among the other 2N - 1 views.

    Cosine similarities divided by ``temperature``; the loss of sample i is the mean of the
    cross-entropies of its two views as anchors. Negatives come from this process's batch.
    """
    n = z1.shape[0]
    z = F.normalize(torch.cat([z1, z2]).float(), dim=1)
    logits = z @ z.T / temperature
    logits.fill_diagonal_(float("-inf"))  # a view is not its own candidate
    positives = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
    per_view = F.cross_entropy(logits, positives, reduction="none")
    return 0.5 * (per_view[:n] + per_view[n:])


class ContrastiveLoss:
    """The explicit-negatives reference (SimCLR / InfoNCE) on the projections of two views."""

    n_views = 2

    def __init__(self, temperature: float) -> None:
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        self.temperature = temperature

    def __call__(self, z: list[torch.Tensor]) -> ObjectiveOutput:
        per_sample = info_nce_per_sample(z[0], z[1], self.temperature)
        return ObjectiveOutput(per_sample.mean(), per_sample)


class SupervisedLoss:
    """The ceiling: cross-entropy of a linear classifier on each augmented view, labels from the data."""

    n_views = 2

    def __call__(self, logits: list[torch.Tensor], labels: torch.Tensor) -> ObjectiveOutput:
        per_sample = torch.stack([F.cross_entropy(x.float(), labels, reduction="none") for x in logits]).mean(0)
        return ObjectiveOutput(per_sample.mean(), per_sample)
