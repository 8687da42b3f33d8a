"""The text domain: sentences from shipped corpora or your files, dropout/token-edit views, transformers encoders."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gsg_multimodal.domain import DataSplits, Domain, RawData
from gsg_multimodal.errors import UserError

from .augment import TextViewsConfig, collate_text, eval_view, make_views, seed_dropout
from .data import BUILTIN_DATASETS, TextDataConfig, load_text
from .encoders import TextEncoderConfig, build_text_encoder, export_hf, load_tokenizer, resolve_source


class TextDomain(Domain[TextDataConfig, TextViewsConfig, TextEncoderConfig]):
    """Sentences -> token ids (collate) -> views on the device -> a transformers encoder with pooling."""

    name = "text"
    data_config = TextDataConfig
    views_config = TextViewsConfig
    encoder_config = TextEncoderConfig
    builtin = BUILTIN_DATASETS
    embed_options = ("format", "text_column", "label_column")

    def __init__(self, data: TextDataConfig, views: TextViewsConfig, encoder: TextEncoderConfig) -> None:
        super().__init__(data, views, encoder)
        self._tokenizer: Any = None

    @property
    def tokenizer(self) -> Any:
        # Loaded on first use: transformers costs seconds to import, and `gsg domains` needs none of it.
        if self._tokenizer is None:
            self._tokenizer = load_tokenizer(self.encoder_cfg)
        return self._tokenizer

    def load_data(self) -> DataSplits:
        splits = load_text(self.data_cfg)
        self.tokenizer  # noqa: B018 -- fail on a missing tokenizer now, not in the first batch
        return splits

    def collate(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        return collate_text(rows, self.tokenizer, self.views_cfg.max_length)

    def make_views(self, batch: dict[str, Any], n_views: int, generator: Any) -> list[Any]:
        tok = self.tokenizer
        views = make_views(batch, n_views, self.views_cfg, tok.mask_token_id, tok.pad_token_id or 0, generator)
        seed_dropout(generator)
        return views

    def eval_input(self, batch: dict[str, Any]) -> Any:
        return eval_view(batch)

    def build_encoder(self) -> Any:
        return build_text_encoder(self.encoder_cfg, self.tokenizer)

    def encoder_input(self) -> str | None:
        # The encoder depends on no property of the data, only on the tokenizer that makes its ids.
        return f"tokens[{self.encoder_cfg.tokenizer_source}]"

    def initial_encoder_name(self) -> str:
        if self.encoder_cfg.name == "scratch_bert":
            return "random init"
        return f"{self.encoder_cfg.display_name()} as shipped"

    def export_extras(self, encoder: Any, folder: Path) -> dict[str, str]:
        cfg = self.encoder_cfg
        source = resolve_source(cfg.model) if cfg.name == "pretrained" else None
        pooler_source = source if source is not None and Path(source).is_dir() else None  # a hub name: fresh init
        return export_hf(encoder, folder, self.views_cfg.max_length, pooler_source)

    def raw_rows(self, raw: Any, **options: Any) -> list[dict[str, Any]]:
        """A list of strings -> rows; the encoder's tokenizer and ``views.max_length`` apply in ``collate``."""
        from .raw import text_rows

        if options:
            raise UserError(f"unknown option(s) {sorted(options)} for text")
        return text_rows(raw)

    def read_raw(self, path: Path) -> RawData:
        from .raw import read_texts

        return read_texts(path, self.data_cfg)

    def handcrafted_floor(self, data: DataSplits, eval_cfg: Any, seed: int) -> dict[str, Any] | None:
        from .floor import tfidf_floor

        return tfidf_floor(data, eval_cfg, seed)

    def save_views_grid(self, batch: dict[str, Any], views: list[Any], path: Path) -> None:
        from .views_figure import save_views_text

        save_views_text(self.tokenizer, batch, views, path)
