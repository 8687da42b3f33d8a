"""Reading a stream in one background process: a torch ``DataLoader`` worker around ``streaming._Batches``.

A module of its own so that ``streaming`` imports no torch, and the dataset class is importable by name
(a worker started with ``spawn`` unpickles it).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.data import DataLoader, IterableDataset

from .errors import UserError


@dataclass
class StreamFailure:
    """A ``UserError`` met in the worker, handed over as data (torch would re-raise it with a traceback)."""

    message: str


class WorkerBatches(IterableDataset):
    """Yields what ``produce`` yields; a ``UserError`` becomes a ``StreamFailure`` item (one line, no traceback)."""

    def __init__(self, produce: Any) -> None:
        self.produce = produce

    def __iter__(self) -> Iterator[Any]:
        try:
            yield from self.produce
        except UserError as e:
            yield StreamFailure(str(e))


def _as_is(item: Any) -> Any:
    return item


def in_worker(produce: Any) -> DataLoader:
    # Its own generator: starting the worker must not draw from the global torch RNG, which checkpoints hold.
    return DataLoader(
        WorkerBatches(produce),
        batch_size=None,
        num_workers=1,
        collate_fn=_as_is,
        generator=torch.Generator().manual_seed(0),
    )
