"""Training monitors: loss, collapse (spread of pre-BatchNorm projections) and how often each GSG case wins."""

from __future__ import annotations

from typing import Any

import torch

from .collapse import effective_rank
from .losses import PAIRINGS


class StepMonitor:
    """Accumulates per-step statistics on the device; read back (synchronising) only when logging."""

    def __init__(self, device: torch.device, collapse_below: float = 0.0) -> None:
        self.device = device
        self.collapse_below = collapse_below
        self.first_bad_step = torch.zeros((), dtype=torch.long, device=device)  # 0 = none yet
        self.low_streak = torch.zeros((), dtype=torch.long, device=device)  # consecutive collapsed steps
        self.reset()

    def reset(self) -> None:
        self.loss = torch.zeros((), device=self.device)
        self.z_std = torch.zeros((), device=self.device)
        self.pairs = torch.zeros(len(PAIRINGS), device=self.device)
        self.last: torch.Tensor | None = None  # the latest watched batch, for the effective rank at flush
        self.n = 0

    def add(self, loss: torch.Tensor, z: torch.Tensor, pairs: torch.Tensor | None, step: int) -> None:
        # Collapse monitor: std over the batch of L2-normalised features, averaged over dimensions;
        # about 1/sqrt(d) for spread-out representations, 0 when collapsed (SimSiam paper, Fig. 2).
        # The objective hands pre-BatchNorm projections: after a non-affine BatchNorm every dimension
        # is re-standardised per batch and even rank-1 features would look spread out.
        self.last = z
        self.loss += loss.float()
        fresh = ~torch.isfinite(loss) & (self.first_bad_step == 0)
        self.first_bad_step = torch.where(fresh, torch.full_like(self.first_bad_step, step), self.first_bad_step)
        z_std = torch.nn.functional.normalize(z.float(), dim=1).std(dim=0).mean()
        self.z_std += z_std
        self.low_streak = (self.low_streak + 1) * (z_std < self.collapse_below)
        if pairs is not None:
            self.pairs += pairs.float()
        self.n += 1

    def flush(self, accelerator: Any) -> dict[str, float]:
        stats = torch.cat([torch.stack([self.loss, self.z_std]) / max(self.n, 1), self.pairs])
        stats = accelerator.reduce(stats, reduction="mean")
        row = {"loss": float(stats[0]), "z_std": float(stats[1])}
        if self.last is not None:  # one SVD per logged row, on this process's latest batch; averaged over processes
            erank = torch.tensor([effective_rank(self.last)], device=self.device)
            row["effective_rank"] = float(accelerator.reduce(erank, reduction="mean"))
        total = float(stats[2:].sum())
        if total > 0:
            for (a, b), count in zip(PAIRINGS, stats[2:].tolist(), strict=True):
                row[f"pair_{a}_{b}"] = count / total
        self.reset()
        return row
