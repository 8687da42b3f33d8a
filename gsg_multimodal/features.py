"""Frozen-encoder features: the one way an encoder and rows become features.

``encode_split`` (a labelled split -> ``(features, labels)``, sharded over processes) serves evaluation,
transfer, the benchmark report's maps and the online kNN monitor; ``embed_rows`` (rows from raw data ->
features, one process) serves ``GSGEncoder.embed`` and ``gsg embed``. Both feed every batch through
``encode_batch``, so raw data embedded after export gets the features evaluation saw.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch

if TYPE_CHECKING:
    from accelerate import Accelerator

    from .domain import Domain


def encode_batch(encoder: torch.nn.Module, batch: dict[str, Any], domain: Domain) -> torch.Tensor:
    """Float features ``[n, out_dim]`` of a collated batch: the domain's deterministic eval input, encoded."""
    return encoder(domain.eval_input(batch)).float()


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
            f = encode_batch(encoder, batch, domain)
        f, y = accelerator.gather_for_metrics((f.contiguous(), batch["label"]))
        feats.append(f.cpu())
        labels.append(y.cpu())
    encoder.train(was_training)
    return torch.cat(feats), torch.cat(labels)


@torch.no_grad()
def embed_rows(
    encoder: torch.nn.Module, rows: list[dict[str, Any]], domain: Domain, batch_size: int, device: Any = None
) -> np.ndarray:
    """Features ``[len(rows), out_dim]`` (float32 NumPy) of rows, in order, in batches of ``batch_size``.

    One process, full precision, eval mode (the encoder is handed back in the mode it came in); batches
    go to ``device`` (default: where the encoder's weights are). No Accelerator: this runs inside a
    user's own program, whose Accelerate state it must not touch.
    """
    from accelerate.utils import send_to_device

    from .errors import UserError

    if batch_size < 1:
        raise UserError(f"batch size {batch_size} must be at least 1")
    if device is None:
        device = next((p.device for p in encoder.parameters()), torch.device("cpu"))
    was_training = encoder.training
    encoder.eval()
    feats = []
    try:
        for start in range(0, len(rows), batch_size):
            batch = send_to_device(domain.collate(rows[start : start + batch_size]), device)
            feats.append(encode_batch(encoder, batch, domain).cpu())
    finally:
        encoder.train(was_training)
    if not feats:
        return np.zeros((0, int(encoder.out_dim)), dtype=np.float32)
    return torch.cat(feats).numpy()
