"""The contract between the domain-agnostic core and a kind of data.

A domain is an augmentation + encoder pair plus how to read its data. The core
never looks inside a batch: it hands the collated batch to ``make_views`` and the
views to the encoder, and reads only the optional ``"label"`` entry.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from .errors import UserError

if TYPE_CHECKING:
    import datasets
    import torch
    from torch import nn


@dataclass
class DataSplits:
    """What a domain's data loader returns.

    ``pretrain`` holds the rows used for self-supervised training (labels ignored).
    ``train``/``test`` are labelled splits for evaluation, or ``None`` when the data
    has no labels. Rows of labelled splits carry an integer ``"label"`` column.
    ``info`` holds JSON-able facts the encoder depends on (e.g. the channel count);
    it is stored with checkpoints and exported encoders, and checked on reload.
    """

    pretrain: datasets.Dataset
    train: datasets.Dataset | None = None
    test: datasets.Dataset | None = None
    label_names: list[str] | None = None
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def labelled(self) -> bool:
        return self.train is not None and self.test is not None


@dataclass
class SequenceViews:
    """Views of a batch that share a segment, for objectives that compare positions inside a sequence.

    ``views[k]`` is an encoder input; the encoder's ``encode_sequence(views[k])`` gives ``[N, T_k, D]``
    per-position features. ``overlap[k] = (start, length)`` locates the shared segment in view ``k``'s
    positions, the same ``length`` for every view and sample, so that position ``start_a + j`` of view
    ``a`` and ``start_b + j`` of view ``b`` describe the same moment of the same sample.
    """

    views: list[Any]
    overlap: list[tuple[int, int]]


class Domain(ABC):
    """Base class of a domain plug-in.

    Subclasses set ``name`` and the three config dataclasses; the run config's
    ``data``, ``views`` and ``encoder`` sections are validated against them.
    Register a domain with the ``gsg_multimodal.domains`` entry point group, or name
    it in a config as ``module.path:ClassName``.
    """

    name: ClassVar[str]
    data_config: ClassVar[type]
    views_config: ClassVar[type]
    encoder_config: ClassVar[type]

    def __init__(self, data: Any, views: Any, encoder: Any) -> None:
        self.data_cfg = data
        self.views_cfg = views
        self.encoder_cfg = encoder

    @classmethod
    def builtin_datasets(cls) -> dict[str, str]:
        """Data sets that work offline, name -> one-line description (for ``gsg domains``)."""
        return {}

    @abstractmethod
    def load_data(self) -> DataSplits:
        """Read the configured data set; raise ``UserError`` naming the fix when it is missing."""

    @abstractmethod
    def collate(self, rows: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        """Rows -> batch of tensors (padding/lengths for variable-length data), plus ``"label"`` if present."""

    @abstractmethod
    def make_views(self, batch: dict[str, torch.Tensor], n_views: int, generator: torch.Generator) -> list[Any]:
        """``n_views`` independent random augmentations of the batch, each sample its own randomness.

        Runs on the training device with the batch already there; all randomness must
        come from ``generator`` so runs are reproducible and resumable.
        """

    def make_sequence_views(
        self, batch: dict[str, torch.Tensor], n_views: int, generator: torch.Generator
    ) -> SequenceViews:
        """``n_views`` random views sharing an aligned segment (for sequence-level objectives such as TS2Vec's)."""
        raise UserError(f"domain {self.name!r} has no aligned sequence views; pick an instance-level objective")

    @abstractmethod
    def eval_input(self, batch: dict[str, torch.Tensor]) -> Any:
        """The deterministic encoder input used for evaluation."""

    @abstractmethod
    def build_encoder(self, info: dict[str, Any]) -> nn.Module:
        """The encoder: maps a view (or eval input) to features ``[N, D]``; must expose ``out_dim``."""

    # Optional hooks: a domain overrides only those that make sense for its data.

    def initial_encoder_name(self) -> str:
        """How the encoder from ``build_encoder`` (before any pretraining) is named in result tables.

        A randomly initialised network is the floor; a domain whose encoder starts from
        pretrained weights names it (e.g. "MiniLM as shipped").
        """
        return "random init"

    def encoder_input(self, info: dict[str, Any]) -> str | None:
        """What the encoder consumes, e.g. ``"series[channels=1]"``; ``None``: it transfers nowhere.

        An encoder pretrained on one data set can be evaluated frozen on another, of this or any
        other domain, whose description is equal: the target's own ``eval_input`` then feeds it
        (that is how audio waveforms and sensor series share one 1-D encoder).
        """
        return None

    def export_extras(self, encoder: nn.Module, folder: Path) -> None:
        """Write extra files into an encoder export (e.g. a ``save_pretrained`` copy), before it is published."""
        return None  # most domains need nothing beyond the safetensors weights and config.json

    def handcrafted_floor(self, data: DataSplits, eval_cfg: Any, seed: int) -> dict[str, Any] | None:
        """Accuracy of a hand-crafted baseline on ``data`` (e.g. TF-IDF or MFCC + a linear model), or ``None``.

        Returns the same shape as ``probes.evaluate_features`` plus a ``"name"`` entry;
        probes that do not apply are left out and show as ``n/a``.
        """
        return None

    def save_views_grid(self, batch: dict[str, Any], views: list[Any], path: Path) -> None:
        """Draw a few samples and their augmented views to an image file, for ``gsg views``."""
        raise UserError(f"domain {self.name!r} cannot draw its views yet; 'gsg views' works for image domains")
