"""Tokenisation (collate) and random views of sentences, made on token ids on the training device.

Two kinds of noise, combinable:

- **Dropout** (SimCSE, Gao et al. 2021): with every token augmentation off, the views are the
  same token ids and the only difference between them is the encoder's dropout in train mode.
  Dropout draws from torch's global RNG. Accelerate saves that RNG with each checkpoint, but
  the DataLoader also draws from it when an epoch's iterator is created, at a different point
  of a resumed run than of an uninterrupted one, so dropout noise diverged after resume
  (measured). ``seed_dropout`` therefore reseeds the global RNG from the views' ``generator`` at
  every step: dropout noise is then a function of the run's seed and step, and resumes exactly.
- **Token-level edits**, all on whole words (a word's WordPiece tokens move, vanish or are masked
  together), with per-sample random draws from ``generator``: a random contiguous crop of the words,
  word deletion and local reordering (the noise model of Lample et al. 2018, "Unsupervised machine
  translation using monolingual corpora only": drop words with probability p, shuffle with every
  word moving fewer than k positions), and span masking (a contiguous span of words replaced by the
  tokenizer's mask token, as in SpanBERT).

The collate step tokenises with truncation and pads to the longest row of the batch, and records
each token's word index. ``make_views`` then computes, vectorised over the batch, which words each
view keeps, masks and where they go, turns that into one sort key per token, and gathers the token
ids in the new order; the result is re-padded to the view's own longest row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from gsg_multimodal.errors import UserError

_FIRST, _LAST, _GONE = -1e9, 1e9, float("inf")  # sort keys: leading special tokens, trailing ones, dropped/padding


@dataclass
class TextViewsConfig:
    """The ``views`` section. Every ``*_p`` is a per-sample probability; all zero = dropout-only views."""

    max_length: int = 64  # tokens per sentence including [CLS]/[SEP]; longer text is truncated
    crop_p: float = 0.0  # keep one random contiguous span of the words
    crop_scale: tuple[float, float] = (0.6, 1.0)  # fraction of the words the span keeps
    delete_p: float = 0.0  # per word; a view never loses all its words
    mask_p: float = 0.0  # mask one span of words with the mask token
    mask_fraction: float = 0.15  # the masked span covers 1 word up to this fraction of the words
    reorder_p: float = 0.0  # local reordering: each word moves fewer than reorder_window positions
    reorder_window: float = 3.0

    def __post_init__(self) -> None:
        self.crop_scale = tuple(self.crop_scale)

        def check(name: str, ok: bool, what: str) -> None:
            if not ok:
                raise UserError(f"views.{name}={getattr(self, name)!r} must be {what}; fix it in the views section")

        check("max_length", self.max_length >= 3, "at least 3 tokens ([CLS], one token, [SEP])")
        lo_hi = self.crop_scale
        check("crop_scale", len(lo_hi) == 2 and 0 < lo_hi[0] <= lo_hi[1] <= 1, "[min, max] with 0 < min <= max <= 1")
        for name in ("crop_p", "delete_p", "mask_p", "reorder_p", "mask_fraction"):
            check(name, 0 <= getattr(self, name) <= 1, "between 0 and 1")
        check("reorder_window", self.reorder_window >= 1, "at least 1 (1 = no movement)")

    @property
    def token_edits(self) -> bool:
        return any(p > 0 for p in (self.crop_p, self.delete_p, self.mask_p, self.reorder_p))


def collate_text(rows: list[dict[str, Any]], tokenizer: Any, max_length: int) -> dict[str, torch.Tensor]:
    """Rows -> ``input_ids``/``attention_mask`` padded to the batch's longest row, ``word_ids``, ``label``.

    ``word_ids[i, t]`` is the index of the word token ``t`` belongs to, -1 for special tokens and
    padding. A slow (Python) tokenizer has no word map; each of its tokens then counts as a word.
    """
    texts = [r["text"] for r in rows]
    enc = tokenizer(texts, truncation=True, max_length=max_length, padding="longest", return_tensors="pt")
    ids, mask = enc["input_ids"], enc["attention_mask"]
    if getattr(enc, "is_fast", False):
        word_ids = torch.tensor([[-1 if w is None else w for w in enc.word_ids(i)] for i in range(len(texts))])
    else:
        special = torch.tensor(
            [tokenizer.get_special_tokens_mask(row, already_has_special_tokens=True) for row in ids.tolist()]
        ).bool()
        word_ids = (~special & mask.bool()).long().cumsum(1) - 1
        word_ids = word_ids.masked_fill(special | ~mask.bool(), -1)
    batch = {"input_ids": ids, "attention_mask": mask, "word_ids": word_ids.long()}
    if all("label" in r for r in rows):
        batch["label"] = torch.tensor([r["label"] for r in rows], dtype=torch.int64)
    return batch


def eval_view(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The deterministic encoder input: the sentence as tokenised."""
    return {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}


def _chance(n: int, p: float, g: torch.Generator, device: torch.device) -> torch.Tensor:
    return torch.rand(n, generator=g, device=device) < p


def _span(
    n_words: torch.Tensor, frac: torch.Tensor, width: int, g: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """A random contiguous span ``[start, start + length)`` of ``ceil(frac * n_words)`` >= 1 words, as a mask."""
    length = torch.ceil(frac * n_words).long().clamp(min=1)
    room = (n_words - length + 1).clamp(min=1)
    start = (torch.rand(n_words.shape, generator=g, device=n_words.device) * room).long()
    pos = torch.arange(width, device=n_words.device)
    return (pos >= start[:, None]) & (pos < (start + length)[:, None]), length


def _one_view(
    batch: dict[str, torch.Tensor],
    n_words: torch.Tensor,
    width: int,
    cfg: TextViewsConfig,
    mask_id: int | None,
    pad_id: int,
    g: torch.Generator,
) -> dict[str, torch.Tensor]:
    ids, att, wid = batch["input_ids"], batch["attention_mask"].bool(), batch["word_ids"]
    n, dev = ids.shape[0], ids.device
    pos_w = torch.arange(width, device=dev)
    valid_w = pos_w < n_words[:, None]
    keep_w = valid_w
    if cfg.crop_p > 0:
        lo, hi = cfg.crop_scale
        frac = lo + (hi - lo) * torch.rand(n, generator=g, device=dev)
        span, _ = _span(n_words, frac, width, g)
        keep_w = torch.where(_chance(n, cfg.crop_p, g, dev)[:, None], keep_w & span, keep_w)
    if cfg.delete_p > 0:
        survivors = keep_w & (torch.rand(n, width, generator=g, device=dev) >= cfg.delete_p)
        # A view that lost every word would be just [CLS][SEP]: keep the crop's words instead.
        keep_w = torch.where(survivors.any(1, keepdim=True), survivors, keep_w)
    masked_w = torch.zeros_like(keep_w)
    if cfg.mask_p > 0:
        # 1 word up to mask_fraction of the words: the span length is itself random per sample.
        frac = cfg.mask_fraction * torch.rand(n, generator=g, device=dev)
        span, _ = _span(n_words, frac, width, g)
        masked_w = span & valid_w & _chance(n, cfg.mask_p, g, dev)[:, None]
    key_w = pos_w.float().expand(n, -1)
    if cfg.reorder_p > 0:
        # Lample et al.: sort words by position + U(0, k); a word moves fewer than k places.
        noise = cfg.reorder_window * torch.rand(n, width, generator=g, device=dev)
        key_w = torch.where(_chance(n, cfg.reorder_p, g, dev)[:, None], key_w + noise, key_w)

    # Word decisions -> tokens. Tokens of one word share its key; the stable sort keeps their order.
    is_word = wid >= 0
    w = wid.clamp(min=0)
    keep_t = is_word & keep_w.gather(1, w)
    special = att & ~is_word
    before_words = torch.arange(ids.shape[1], device=dev) < is_word.long().argmax(1, keepdim=True)
    key = torch.where(keep_t, key_w.gather(1, w), _GONE)
    key = torch.where(special, torch.where(before_words, _FIRST, _LAST), key)
    if mask_id is not None:
        ids = torch.where(is_word & masked_w.gather(1, w), mask_id, ids)
    order = torch.sort(key, dim=1, stable=True).indices
    new_ids = ids.gather(1, order)
    new_att = (keep_t | special).gather(1, order)
    length = int(new_att.sum(1).max())  # one host sync per view: trims the padding every view would carry
    new_ids = new_ids.masked_fill(~new_att, pad_id)[:, :length]
    return {"input_ids": new_ids, "attention_mask": new_att[:, :length].long()}


def seed_dropout(generator: torch.Generator) -> None:
    """Reseed torch's global RNG (which dropout uses) from ``generator``, so it is checkpointed with it."""
    seed = torch.randint(0, 2**62, (1,), generator=generator, device=generator.device)
    torch.manual_seed(int(seed))  # one host sync per step; seeds every device's default generator


def make_views(
    batch: dict[str, torch.Tensor],
    n_views: int,
    cfg: TextViewsConfig,
    mask_id: int | None,
    pad_id: int,
    generator: torch.Generator,
) -> list[dict[str, torch.Tensor]]:
    """``n_views`` random views ``{"input_ids", "attention_mask"}``, each sample its own draws."""
    if not cfg.token_edits:
        # Dropout-only (SimCSE): the same ids in every view; the encoder's dropout makes them differ.
        return [eval_view(batch) for _ in range(n_views)]
    if cfg.mask_p > 0 and mask_id is None:
        raise UserError("views.mask_p > 0 needs a tokenizer with a mask token; this one has none, set views.mask_p=0")
    wid = batch["word_ids"]
    n_words = (wid.max(1).values + 1).clamp(min=0)
    width = max(int(n_words.max()), 1)
    return [_one_view(batch, n_words, width, cfg, mask_id, pad_id, generator) for _ in range(n_views)]
