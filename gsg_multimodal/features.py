"""Frozen-encoder features for evaluation and the online kNN monitor."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from accelerate import Accelerator

    from .domain import Domain


def eval_loader(dataset: Any, domain: Domain, batch_size: int, accelerator: Accelerator) -> Any:
    """A deterministic, sharded loader over a labelled split (no shuffling, no dropped rows)."""
    from torch.utils.data import DataLoader

    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=domain.collate)
    return accelerator.prepare_data_loader(loader)


@torch.no_grad()
def extract_features(
    encoder: torch.nn.Module, loader: Any, domain: Domain, accelerator: Accelerator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Features and labels of every row, gathered from all processes, on every process.

    ``gather_for_metrics`` drops the duplicate rows that pad an uneven last batch, so each
    row appears exactly once and every process computes the same kNN result.
    """
    was_training = encoder.training
    encoder.eval()
    feats, labels = [], []
    for batch in loader:
        with accelerator.autocast():
            f = encoder(domain.eval_input(batch)).float()
        f, y = accelerator.gather_for_metrics((f.contiguous(), batch["label"]))
        feats.append(f.cpu())
        labels.append(y.cpu())
    encoder.train(was_training)
    return torch.cat(feats), torch.cat(labels)
