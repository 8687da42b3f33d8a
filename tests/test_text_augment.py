"""Text views: tokenisation in collate, per-sample random word edits drawn from the generator, dropout-only views."""

from __future__ import annotations

import pytest
import torch

from gsg_domains.text.augment import TextViewsConfig, collate_text, make_views
from gsg_domains.text.encoders import TextEncoderConfig, load_tokenizer
from gsg_multimodal.errors import UserError

SENTENCES = [
    "An unforgettable, quietly devastating portrait of grief.",
    "The plot meanders; the jokes land with a thud.",
    "Brilliant.",
    "Spielberg's most personal film in decades, and his funniest.",
]


@pytest.fixture(scope="module")
def tok():
    return load_tokenizer(TextEncoderConfig())


def batch_of(tok, texts: list[str], max_length: int = 64) -> dict[str, torch.Tensor]:
    return collate_text([{"text": t, "label": i % 2} for i, t in enumerate(texts)], tok, max_length)


def views(tok, batch, cfg: TextViewsConfig, n: int = 4, seed: int = 0) -> list[dict[str, torch.Tensor]]:
    return make_views(batch, n, cfg, tok.mask_token_id, tok.pad_token_id, torch.Generator().manual_seed(seed))


def words_of(tok, ids: torch.Tensor, mask: torch.Tensor) -> list[str]:
    return tok.convert_ids_to_tokens([int(t) for t, m in zip(ids, mask, strict=True) if m])


def test_collate_pads_to_the_longest_row_and_truncates(tok):
    b = batch_of(tok, SENTENCES)
    lengths = b["attention_mask"].sum(1)
    assert b["input_ids"].shape[1] == int(lengths.max())  # dynamic padding
    assert b["label"].tolist() == [0, 1, 0, 1]
    assert (b["word_ids"][b["attention_mask"] == 0] == -1).all()
    assert b["word_ids"][2].tolist()[:3] == [-1, 0, 1]  # [CLS] brilliant .
    short = batch_of(tok, SENTENCES, max_length=8)
    assert short["input_ids"].shape[1] == 8
    assert (short["input_ids"][:, 0] == tok.cls_token_id).all()


def test_dropout_only_views_are_the_sentence_itself(tok):
    b = batch_of(tok, SENTENCES)
    cfg = TextViewsConfig()
    assert not cfg.token_edits
    for v in views(tok, b, cfg):
        assert torch.equal(v["input_ids"], b["input_ids"]) and torch.equal(v["attention_mask"], b["attention_mask"])


def test_each_sample_draws_its_own_edits_and_the_generator_decides(tok):
    same = batch_of(tok, [SENTENCES[3]] * 16)  # 16 copies of one sentence: any difference is per-sample noise
    cfg = TextViewsConfig(crop_p=0.5, delete_p=0.2, mask_p=0.5, reorder_p=0.5)
    v = views(tok, same, cfg, n=1)[0]
    rows = {tuple(words_of(tok, i, m)) for i, m in zip(v["input_ids"], v["attention_mask"], strict=True)}
    assert len(rows) > 8
    again = views(tok, same, cfg, n=1)[0]
    assert torch.equal(v["input_ids"], again["input_ids"])  # same seed, same views: reproducible
    other = views(tok, same, cfg, n=1, seed=1)[0]
    assert not torch.equal(v["input_ids"], other["input_ids"])
    a, b = views(tok, same, cfg, n=2)  # views of one call differ from each other too
    assert not torch.equal(a["input_ids"], b["input_ids"])


def test_deletion_and_crop_remove_whole_words_in_order(tok):
    b = batch_of(tok, SENTENCES)
    cfg = TextViewsConfig(crop_p=1.0, crop_scale=(0.5, 0.5), delete_p=0.3)
    for seed in range(5):
        for v in views(tok, b, cfg, n=2, seed=seed):
            for i in range(len(SENTENCES)):
                orig = words_of(tok, b["input_ids"][i], b["attention_mask"][i])
                got = words_of(tok, v["input_ids"][i], v["attention_mask"][i])
                assert got[0] == "[CLS]" and got[-1] == "[SEP]" and len(got) >= 3  # never loses every word
                it = iter(orig)
                assert all(t in it for t in got)  # a subsequence: order kept
                assert not got[1].startswith("##")  # a word's pieces go together, so no view starts mid-word
                assert torch.all(v["input_ids"][i][v["attention_mask"][i] == 0] == tok.pad_token_id)


def test_crop_keeps_one_contiguous_span(tok):
    b = batch_of(tok, [SENTENCES[3]])
    words = b["word_ids"][0]
    cfg = TextViewsConfig(crop_p=1.0, crop_scale=(0.5, 0.5))
    n_words = int(words.max()) + 1
    for seed in range(8):
        v = views(tok, b, cfg, n=1, seed=seed)[0]
        got = words_of(tok, v["input_ids"][0], v["attention_mask"][0])[1:-1]
        orig = words_of(tok, b["input_ids"][0], b["attention_mask"][0])[1:-1]
        text = " ".join(orig)
        assert " ".join(got) in text  # contiguous
        kept_words = sum(1 for t in got if not t.startswith("##"))
        assert kept_words == -(-n_words // 2)  # ceil(0.5 * words)


def test_span_masking_and_reordering(tok):
    b = batch_of(tok, SENTENCES)
    masked = views(tok, b, TextViewsConfig(mask_p=1.0, mask_fraction=0.5), n=1)[0]
    assert torch.equal(masked["attention_mask"], b["attention_mask"])  # masking keeps the length
    hit = masked["input_ids"] == tok.mask_token_id
    assert hit.any(1).all()
    for i in range(len(SENTENCES)):  # one contiguous run of mask tokens per sentence
        idx = hit[i].nonzero().flatten()
        assert (idx.diff() == 1).all()
    shuffled = views(tok, b, TextViewsConfig(reorder_p=1.0, reorder_window=3.0), n=1, seed=2)[0]
    moved = False
    for i in range(len(SENTENCES)):
        orig = words_of(tok, b["input_ids"][i], b["attention_mask"][i])
        got = words_of(tok, shuffled["input_ids"][i], shuffled["attention_mask"][i])
        assert sorted(got) == sorted(orig) and got[0] == "[CLS]" and got[-1] == "[SEP]"
        moved |= got != orig
    assert moved


def test_views_config_errors(tok):
    with pytest.raises(UserError, match="views.delete_p"):
        TextViewsConfig(delete_p=1.5)
    with pytest.raises(UserError, match="views.max_length"):
        TextViewsConfig(max_length=2)
    b = batch_of(tok, SENTENCES)
    with pytest.raises(UserError, match="mask token"):
        make_views(b, 2, TextViewsConfig(mask_p=0.5), None, 0, torch.Generator())
