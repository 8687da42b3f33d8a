"""The contract between the domain-agnostic core and a kind of data.

A domain is an augmentation + encoder pair plus how to read its data. The core never looks
inside a batch: it hands the collated batch to ``make_views`` and the views to the encoder, and
reads only the optional ``"label"`` entry.

The order is explicit. The core builds the domain from its three config sections, then either
reads the data (``load_data``) or takes the facts an export stored, and hands those facts
(``info``) to the domain exactly once with ``bind(info)``. Only a bound domain makes views, eval
inputs and encoders; asking an unbound one is a programming error with a clear message.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from .errors import UserError

if TYPE_CHECKING:
    import datasets
    import torch
    from torch import nn

    from .streaming import StreamSource


@dataclass
class DataSplits:
    """What a domain's data loader returns.

    ``pretrain`` holds the rows used for self-supervised training (labels ignored): a
    ``datasets.Dataset``, or a ``streaming.StreamSource`` read a few rows at a time (no ``len``;
    the run's budget is then ``train.steps``).
    ``train``/``test`` are labelled splits for evaluation, or ``None`` when the data
    has no labels. Rows of labelled splits carry an integer ``"label"`` column.
    ``info`` holds JSON-able facts the encoder depends on (e.g. the channel count);
    it is stored with checkpoints and exported encoders, and checked on reload.
    """

    pretrain: datasets.Dataset | StreamSource
    train: datasets.Dataset | None = None
    test: datasets.Dataset | None = None
    label_names: list[str] | None = None
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def labelled(self) -> bool:
        return self.train is not None and self.test is not None


@dataclass
class RawData:
    """What a domain reads from a user's file or folder for ``gsg embed``: raw items and what names them.

    ``raw`` is whatever the domain's ``raw_rows`` accepts (e.g. a list of series, image paths or
    texts); ``labels`` (text, ``None`` where an item has none) and ``ids`` (e.g. file paths relative
    to the folder given) are optional, one per item, in the order of ``raw``.
    """

    raw: Any
    labels: list[str | None] | None = None
    ids: list[str] | None = None


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


DataT = TypeVar("DataT")
ViewsT = TypeVar("ViewsT")
EncoderT = TypeVar("EncoderT")


class Domain(ABC, Generic[DataT, ViewsT, EncoderT]):
    """Base class of a domain plug-in, generic in its three config sections.

    Subclasses set ``name``, the three config dataclasses (the run config's ``data``, ``views``
    and ``encoder`` sections are validated against them) and ``builtin`` (the data sets that
    work offline). Register a domain with the ``gsg_multimodal.domains`` entry point group, or
    name it in a config as ``module.path:ClassName``.
    """

    name: ClassVar[str]
    data_config: ClassVar[type]
    views_config: ClassVar[type]
    encoder_config: ClassVar[type]
    builtin: ClassVar[dict[str, str]] = {}  # offline data set name -> one-line description (`gsg domains`)
    # `data.*` keys that `gsg embed` may override: how to READ the user's file (its format, which column
    # holds what), never the preprocessing the encoder was trained with (normalisation, size, rate, ...).
    embed_options: ClassVar[tuple[str, ...]] = ()
    # `info` keys a later version of the domain records that checkpoints and exports of an earlier one lack;
    # `info_matches` accepts such older records, so their runs still resume and evaluate.
    info_added: ClassVar[tuple[str, ...]] = ()

    def __init__(self, data: DataT, views: ViewsT, encoder: EncoderT) -> None:
        self.data_cfg = data
        self.views_cfg = views
        self.encoder_cfg = encoder
        self._info: dict[str, Any] | None = None
        # A folder of the run where ``load_data`` may keep what it computed from the data (e.g. a streamed
        # archive's statistics), so a resumed run or its evaluation does not compute it again; None: keep nothing.
        self.cache_dir: Path | None = None

    # ------------------------------------------------------------------ the order: load, bind, use

    @abstractmethod
    def load_data(self) -> DataSplits:
        """Read the configured data set; raise ``UserError`` naming the fix when it is missing."""

    def bind(self, info: dict[str, Any]) -> None:
        """Take the data's facts (from ``load_data`` or an export), once, before views or encoders."""
        if self._info is not None and self._info != info:
            raise RuntimeError(f"domain {self.name!r} is already bound to {self._info}, not {info}")
        self._info = dict(info)
        self.on_bind(self._info)

    def on_bind(self, info: dict[str, Any]) -> None:
        """Prepare what views and encoders need from ``info`` (e.g. resolved augmentation parameters)."""
        return None

    @property
    def info(self) -> dict[str, Any]:
        if self._info is None:
            raise RuntimeError(f"domain {self.name!r} is not bound: call bind(info) (after load_data) first")
        return self._info

    def info_matches(self, stored: dict[str, Any]) -> bool:
        """Whether ``stored`` (a checkpoint's or an export's ``info``) describes the data this domain is bound to.

        Equal, or equal but for ``info_added`` keys that ``stored`` lacks because an earlier version wrote it.
        """
        late = set(self.info_added) - set(stored)
        return {k: v for k, v in self.info.items() if k not in late} == stored

    def encoder(self) -> nn.Module:
        """The encoder for the bound data, checked against the contract: an ``nn.Module`` with ``out_dim``."""
        module = self.build_encoder()
        width = getattr(module, "out_dim", None)
        if not isinstance(width, int) or width < 1:
            raise TypeError(
                f"domain {self.name!r}: build_encoder() must return a module with an integer out_dim >= 1 "
                f"(the width of its [N, out_dim] features), got {width!r}"
            )
        return module

    # ------------------------------------------------------------------ what every domain provides

    @abstractmethod
    def collate(self, rows: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        """Rows -> batch of tensors (padding/lengths for variable-length data), plus ``"label"`` if present."""

    @abstractmethod
    def make_views(self, batch: dict[str, torch.Tensor], n_views: int, generator: torch.Generator) -> list[Any]:
        """``n_views`` independent random augmentations of the batch, each sample its own randomness.

        Runs on the training device with the batch already there; all randomness must
        come from ``generator`` so runs are reproducible and resumable.
        """

    @abstractmethod
    def eval_input(self, batch: dict[str, torch.Tensor]) -> Any:
        """The deterministic encoder input used for evaluation."""

    @abstractmethod
    def build_encoder(self) -> nn.Module:
        """The encoder for ``self.info``: maps a view (or eval input) to features ``[N, out_dim]``.

        The module must carry ``out_dim: int``, the width of its features (``encoder()`` checks it).
        """

    @abstractmethod
    def save_views_grid(self, batch: dict[str, Any], views: list[Any], path: Path) -> None:
        """Draw a few samples and their augmented views to an image file, for ``gsg views``."""

    # ------------------------------------------------------------------ optional hooks

    def make_sequence_views(
        self, batch: dict[str, torch.Tensor], n_views: int, generator: torch.Generator
    ) -> SequenceViews:
        """``n_views`` random views sharing an aligned segment (for sequence-level objectives such as TS2Vec's)."""
        raise UserError(f"domain {self.name!r} has no aligned sequence views; pick an instance-level objective")

    def initial_encoder_name(self) -> str:
        """How the encoder from ``build_encoder`` (before any pretraining) is named in result tables.

        A randomly initialised network is the floor; a domain whose encoder starts from
        pretrained weights names it (e.g. "MiniLM as shipped").
        """
        return "random init"

    def encoder_input(self) -> str | None:
        """What the encoder consumes, e.g. ``"series[channels=1]"``; ``None``: it transfers nowhere.

        An encoder pretrained on one data set can be evaluated frozen on another, of this or any
        other domain, whose description is equal: the target's own ``eval_input`` then feeds it
        (that is how audio waveforms and sensor series share one 1-D encoder).
        """
        return None

    def export_extras(self, encoder: nn.Module, folder: Path) -> None:
        """Write extra files into an encoder export (e.g. a ``save_pretrained`` copy), before it is published."""
        return None  # most domains need nothing beyond the safetensors weights and config.json

    def raw_rows(self, raw: Any, **options: Any) -> list[dict[str, Any]]:
        """Raw data as a user holds it -> rows like ``load_data``'s (what ``collate`` takes), one per item.

        Applies the preprocessing training applied, from the data config and ``self.info`` alone (an
        export carries both), so that ``eval_input(collate(rows))`` is what evaluation fed the encoder.
        ``GSGEncoder.embed`` and ``gsg embed`` call it; ``options`` are the domain's own keywords (e.g.
        the sample rate of raw waveforms). Raise ``UserError`` naming the item for input that does not fit.
        """
        raise UserError(f"domain {self.name!r} cannot embed raw data (it does not implement raw_rows)")

    def read_raw(self, path: Path) -> RawData:
        """Read a user's file or folder for ``gsg embed`` with the domain's own readers (``UserError`` if unfit)."""
        raise UserError(f"domain {self.name!r} cannot read files for 'gsg embed' (it does not implement read_raw)")

    def handcrafted_floor(self, data: DataSplits, eval_cfg: Any, seed: int) -> dict[str, Any] | None:
        """Accuracy of a hand-crafted baseline on ``data`` (e.g. TF-IDF or MFCC + a linear model), or ``None``.

        Returns the same shape as ``probes.evaluate_features`` plus a ``"name"`` entry;
        probes that do not apply are left out and show as ``n/a``.
        """
        return None
