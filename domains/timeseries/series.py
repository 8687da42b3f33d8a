"""``SeriesBatch``: a zero-padded batch of variable-length series and their valid lengths.

It is what the time-series domain hands its encoder (views and eval input) when series keep
their own length: ``x [N, C, T]`` with every step at or after ``lengths[i]`` equal to zero.
It has a ``to()`` method, so Accelerate's ``send_to_device`` (and plain user code) can move it
like a tensor; the lengths stay integers whatever dtype is asked for.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch


@dataclass
class SeriesBatch:
    """``x``: float ``[N, C, T]``, zero after each series' end; ``lengths``: int64 ``[N]``, 1 <= lengths <= T."""

    x: torch.Tensor
    lengths: torch.Tensor

    @classmethod
    def full(cls, x: torch.Tensor) -> SeriesBatch:
        """Every series of ``x`` valid over all ``T`` steps."""
        return cls(x, torch.full((x.shape[0],), x.shape[-1], dtype=torch.int64, device=x.device))

    @property
    def shape(self) -> torch.Size:
        return self.x.shape

    @property
    def device(self) -> torch.device:
        return self.x.device

    def mask(self) -> torch.Tensor:
        """Bool ``[N, T]``: True at valid steps."""
        steps = torch.arange(self.x.shape[-1], device=self.x.device)
        return steps[None, :] < self.lengths.to(self.x.device)[:, None]

    def to(self, *args: Any, **kwargs: Any) -> SeriesBatch:
        x = self.x.to(*args, **kwargs)
        return SeriesBatch(x, self.lengths.to(x.device, non_blocking=bool(kwargs.get("non_blocking", False))))

    def series(self, i: int) -> torch.Tensor:
        """Sample ``i`` alone, ``[C, lengths[i]]``."""
        return self.x[i, :, : int(self.lengths[i])]
