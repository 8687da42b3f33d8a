"""Raw texts -> rows as training made them (``GSGEncoder.embed``, ``gsg embed``).

A row is the text itself: tokenisation (the encoder's tokenizer, ``views.max_length``) happens in
``collate``, as in training and evaluation. Files are read by the reader of ``data.path``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gsg_multimodal.domain import RawData
from gsg_multimodal.errors import UserError

from .data import TextDataConfig, _read_user_file


def text_rows(raw: Any) -> list[dict[str, Any]]:
    """A list of strings -> rows ``{"text": ...}``; anything that is not a string is refused by position."""
    if isinstance(raw, str):
        raise UserError("pass a list of texts, e.g. [text], not one string")
    try:  # a list, a NumPy array, a pandas Series or a datasets Column
        texts = raw.tolist() if hasattr(raw, "tolist") else list(raw)
    except TypeError:
        raise UserError(f"cannot embed a {type(raw).__name__}; pass a list of strings") from None
    if isinstance(raw, dict):
        raise UserError("pass a list of texts, not a dict (e.g. list(rows['text']))")
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise UserError(f"text {i} of the input is {type(t).__name__} ({t!r}), not a string; fill it in or drop it")
    return [{"text": t} for t in texts]


def read_texts(path: Path, cfg: TextDataConfig) -> RawData:
    """A ``.txt`` (one text a line), ``.csv`` / ``.tsv`` / ``.json(l)`` / ``.parquet`` file with a text column."""
    if path.is_dir():
        raise UserError(f"'{path}' is a folder; give a .txt, .csv, .jsonl or .parquet file of texts")
    ds = _read_user_file(str(path), "DATA", cfg)
    text_col = cfg.text_column or "text"
    if text_col not in ds.column_names:
        raise UserError(
            f"'{path}' has no text column '{text_col}'; name it with data.text_column=<one of {ds.column_names}>"
        )
    label_col = cfg.label_column or "label"
    if cfg.label_column and label_col not in ds.column_names:  # named explicitly: a typo must not mean 'unlabelled'
        raise UserError(f"'{path}' has no label column '{label_col}'; choose one of {ds.column_names}")
    labels = None
    if label_col in ds.column_names:
        labels = [
            None if v is None or (isinstance(v, float) and v != v)
            else str(int(v)) if isinstance(v, float) and v.is_integer() else str(v)
            for v in ds[label_col]
        ]  # fmt: skip
    texts = list(ds[text_col])
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise UserError(f"row {i} of '{path}' has no text; fill it in or remove the row")
    return RawData(texts, labels)
