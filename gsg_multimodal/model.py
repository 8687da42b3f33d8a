"""Siamese network: domain encoder -> projector -> predictor, and the BYOL EMA target."""

from __future__ import annotations

import copy
import math
from typing import TYPE_CHECKING, Any, NamedTuple

import torch
from torch import nn

if TYPE_CHECKING:
    from .config import ModelConfig, OptimConfig


def projection_mlp(in_dim: int, hidden: int, out_dim: int, layers: int) -> nn.Sequential:
    """SimSiam's projector: ``layers`` Linear layers with BN+ReLU between, ending in BN without affine."""
    if layers < 1:
        raise ValueError("the projector needs at least one layer")
    blocks: list[nn.Module] = []
    dim = in_dim
    for _ in range(layers - 1):
        blocks += [nn.Linear(dim, hidden, bias=False), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True)]
        dim = hidden
    # The bias before a non-affine BN would be removed by the BN anyway.
    blocks += [nn.Linear(dim, out_dim, bias=False), nn.BatchNorm1d(out_dim, affine=False)]
    return nn.Sequential(*blocks)


def prediction_mlp(dim: int, hidden: int) -> nn.Sequential:
    """SimSiam's predictor: a bottleneck Linear-BN-ReLU-Linear."""
    return nn.Sequential(
        nn.Linear(dim, hidden, bias=False), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True), nn.Linear(hidden, dim)
    )


class SiameseOutput(NamedTuple):
    z: list[torch.Tensor]  # per-view projections (after the projector's final BatchNorm)
    p: list[torch.Tensor]  # per-view predictions h(z) (z itself without a predictor)
    pre_bn: torch.Tensor  # the first view's projection before that BatchNorm, detached: what collapse shows on


class SiameseNetwork(nn.Module):
    """The online network. ``forward(views)`` returns per-view projections and predictions.

    Each view goes through the network on its own, as in the SimSiam and GSG reference
    code, so BatchNorm statistics are per view rather than mixed across views.
    """

    def __init__(self, encoder: nn.Module, cfg: ModelConfig) -> None:
        super().__init__()
        self.encoder = encoder
        self.projector = projection_mlp(encoder.out_dim, cfg.projector_hidden, cfg.projector_dim, cfg.projector_layers)
        self.predictor = prediction_mlp(cfg.projector_dim, cfg.predictor_hidden) if cfg.predictor else nn.Identity()

    def forward(self, views: list[Any]) -> SiameseOutput:
        return self.heads([self.encoder(v) for v in views])

    def heads(self, features: list[torch.Tensor]) -> SiameseOutput:
        """Projector and predictor on each view's encoder features ``[N, out_dim]``."""
        # The projector runs in two parts (same modules, same numbers) to keep the pre-BatchNorm output.
        h = [self.projector[:-1](f) for f in features]
        z = [self.projector[-1](hi) for hi in h]
        return SiameseOutput(z, [self.predictor(zi) for zi in z], h[0].detach())


class SupervisedNetwork(nn.Module):
    """The ceiling's network: the same encoder with a linear classifier, trained on labels.

    ``forward(views)`` returns per-view encoder features (watched by the collapse monitor)
    and per-view class logits.
    """

    def __init__(self, encoder: nn.Module, num_classes: int) -> None:
        super().__init__()
        self.encoder = encoder
        self.classifier = nn.Linear(encoder.out_dim, num_classes)

    def forward(self, views: list[Any]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        h = [self.encoder(v) for v in views]
        return h, [self.classifier(hi) for hi in h]


class TargetNetwork(nn.Module):
    """BYOL's target: an exponential moving average of the online encoder + projector.

    Float buffers (BatchNorm running statistics) are averaged like parameters and integer
    buffers copied, so the target is complete in eval mode too. It is registered with
    Accelerate for checkpointing, so resume restores it exactly.
    """

    def __init__(self, online: SiameseNetwork) -> None:
        super().__init__()
        self.encoder = copy.deepcopy(online.encoder)
        self.projector = copy.deepcopy(online.projector)
        self.requires_grad_(False)

    def forward(self, views: list[Any]) -> list[torch.Tensor]:
        return [self.projector(self.encoder(v)) for v in views]

    @torch.no_grad()
    def update(self, online: SiameseNetwork, momentum: float) -> None:
        """``target = momentum * target + (1 - momentum) * online``, with foreach kernels."""
        mine = [*self.encoder.parameters(), *self.projector.parameters()]
        theirs = [*online.encoder.parameters(), *online.projector.parameters()]
        torch._foreach_lerp_(mine, [p.detach() for p in theirs], 1.0 - momentum)
        my_buffers = [*self.encoder.buffers(), *self.projector.buffers()]
        their_buffers = [*online.encoder.buffers(), *online.projector.buffers()]
        floats = [(m, t) for m, t in zip(my_buffers, their_buffers, strict=True) if m.is_floating_point()]
        if floats:
            torch._foreach_lerp_([m for m, _ in floats], [t for _, t in floats], 1.0 - momentum)
        for m, t in zip(my_buffers, their_buffers, strict=True):
            if not m.is_floating_point():
                m.copy_(t)


def ema_momentum(base: float, step: int, total_steps: int, schedule: str) -> float:
    """BYOL's momentum: constant, or increased from ``base`` to 1 along a cosine."""
    if schedule == "constant" or total_steps <= 0:
        return base
    progress = min(step / total_steps, 1.0)
    return 1.0 - (1.0 - base) * (math.cos(math.pi * progress) + 1.0) / 2.0


def scale_head_lr(groups: list[dict], encoder: nn.Module, base_lr: float, scale: float) -> list[dict]:
    """Split each group into its encoder and non-encoder (head) parameters; heads get ``scale * base_lr``.

    Group flags such as ``fixed_lr`` are kept on both halves; empty halves are dropped.
    """
    if scale == 1.0:
        return groups
    in_encoder = {id(p) for p in encoder.parameters()}
    out: list[dict] = []
    for group in groups:
        flags = {k: v for k, v in group.items() if k != "params"}
        params = list(group["params"])
        body = [p for p in params if id(p) in in_encoder]
        heads = [p for p in params if id(p) not in in_encoder]
        if body:
            out.append({**flags, "params": body})
        if heads:
            out.append({**flags, "params": heads, "lr": base_lr * scale})
    return out


def build_optimizer(groups: list[dict], cfg: OptimConfig, device: torch.device) -> torch.optim.Optimizer:
    """SGD or AdamW over ``groups``, with torch's fused kernels on the CPU and CUDA.

    Fused: one kernel over every parameter instead of a Python loop over tensors. For MiniLM's 103
    tensors on one CPU thread, AdamW took 167 ms per step as a loop, 132 ms with foreach and 20 ms
    fused (``benchmarks/optimizer_speed.py``, see docs/performance.md). Other devices get foreach.
    """
    impl = {"fused": True} if device.type in ("cpu", "cuda") else {"foreach": True}
    if cfg.name == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay, **impl)
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay, **impl)


def lr_multiplier(step: int, total_steps: int, warmup_steps: int, schedule: str) -> float:
    """Linear warmup then cosine decay to 0 (or constant), as a factor of the base lr."""
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    if schedule == "constant" or total_steps <= warmup_steps:
        return 1.0
    progress = (step - warmup_steps) / (total_steps - warmup_steps)
    return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))
