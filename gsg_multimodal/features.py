"""Frozen-encoder features: the one way an encoder and a labelled split become ``(features, labels)``.

Used by evaluation, transfer, the benchmark report's maps and the online kNN monitor.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from accelerate import Accelerator

    from .domain import Domain


@torch.no_grad()
def encode_split(
    encoder: torch.nn.Module,
    dataset: Any,
    domain: Domain,
    accelerator: Accelerator,
    batch_size: int,
    progress: str | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Features and labels of every row of ``dataset``, gathered from all processes, on every process.

    Rows go through the domain's deterministic ``eval_input`` in a sharded loader (no shuffling, no
    dropped rows); ``gather_for_metrics`` drops the duplicates that pad an uneven last batch, so each
    row appears exactly once and every process computes the same probe result. The encoder runs in
    eval mode and is handed back in the mode it came in. ``progress``: the label of a progress bar
    (main process only, and only on a terminal: quiet in logs and CI).
    """
    from torch.utils.data import DataLoader
    from tqdm.auto import tqdm

    loader = accelerator.prepare_data_loader(
        DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=domain.collate)
    )
    was_training = encoder.training
    encoder.eval()
    feats, labels = [], []
    bar = tqdm(
        loader,
        desc=progress,
        unit="batch",
        leave=False,
        dynamic_ncols=True,
        disable=True if progress is None or not accelerator.is_local_main_process else None,  # None: TTY only
    )
    for batch in bar:
        with accelerator.autocast():
            f = encoder(domain.eval_input(batch)).float()
        f, y = accelerator.gather_for_metrics((f.contiguous(), batch["label"]))
        feats.append(f.cpu())
        labels.append(y.cpu())
    encoder.train(was_training)
    return torch.cat(feats), torch.cat(labels)
