"""A minimal second domain, used to show that the core needs no edit for a new kind of data.

scikit-learn's 8x8 digits as 64-d vectors; views add Gaussian noise and drop features.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from gsg_multimodal.domain import DataSplits, Domain


@dataclass
class DigitsData:
    limit: int = 400


@dataclass
class DigitsViews:
    noise: float = 0.3
    drop: float = 0.2
    nan_after_step: int = 0  # > 0: views turn NaN from this step on (to provoke the NaN guard)


@dataclass
class DigitsEncoder:
    hidden: int = 32


class MLPEncoder(nn.Module):
    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.out_dim = hidden
        self.net = nn.Sequential(nn.Linear(64, hidden), nn.ReLU(), nn.Linear(hidden, hidden))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class DigitsDomain(Domain[DigitsData, DigitsViews, DigitsEncoder]):
    name = "digits"
    data_config = DigitsData
    views_config = DigitsViews
    encoder_config = DigitsEncoder

    def load_data(self) -> DataSplits:
        import datasets
        from sklearn.datasets import load_digits

        x, y = load_digits(return_X_y=True)
        x, y = (x / 16.0)[: self.data_cfg.limit], y[: self.data_cfg.limit]
        half = len(x) // 2
        train = datasets.Dataset.from_dict({"x": x[:half].tolist(), "label": y[:half].tolist()})
        test = datasets.Dataset.from_dict({"x": x[half:].tolist(), "label": y[half:].tolist()})
        return DataSplits(pretrain=train, train=train, test=test, info={"features": 64})

    def collate(self, rows: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        return {
            "x": torch.tensor([r["x"] for r in rows], dtype=torch.float32),
            "label": torch.tensor([r["label"] for r in rows]),
        }

    def make_views(self, batch: dict[str, torch.Tensor], n_views: int, generator: torch.Generator) -> list[Any]:
        x = batch["x"]
        self.calls = getattr(self, "calls", 0) + 1
        if 0 < self.views_cfg.nan_after_step <= self.calls:
            x = torch.full_like(x, float("nan"))
        views = []
        for _ in range(n_views):
            noise = torch.randn(x.shape, generator=generator, device=x.device) * self.views_cfg.noise
            keep = torch.rand(x.shape, generator=generator, device=x.device) >= self.views_cfg.drop
            views.append((x + noise) * keep)
        return views

    def eval_input(self, batch: dict[str, torch.Tensor]) -> Any:
        return batch["x"]

    def build_encoder(self) -> nn.Module:
        return MLPEncoder(self.encoder_cfg.hidden)

    def save_views_grid(self, batch: dict[str, Any], views: list[Any], path: Any) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, len(views) + 1, squeeze=False)
        for ax, x in zip(axes[0], [batch["x"], *views], strict=True):
            ax.imshow(x[:, :64].reshape(-1, 8, 8)[0].cpu().numpy(), cmap="gray")
        fig.savefig(path)
        plt.close(fig)
