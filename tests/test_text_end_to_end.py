"""Real tiny runs on real shipped text: fine-tune MiniLM / train a tiny BERT, export, reload, evaluate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from gsg_multimodal import load_encoder
from gsg_multimodal.cli import main

from .conftest import ROOT

CONFIG = str(ROOT / "configs" / "rt_gsg.yaml")
TINY_TEXT = [
    "data.limit=40",  # 32 train / 8 test snippets, fresh vs rotten
    "views.max_length=16",
    "model.projector_hidden=32",
    "model.projector_dim=32",
    "model.predictor_hidden=8",
    "train.batch_size=4",
    "train.log_every=1",
    "train.checkpoint_every=0",
    "train.progress_bar=false",
    "train.trackers=[none]",
    "eval.cv_folds=2",
    "eval.svm_c=[1.0]",
    "eval.logreg_c=[1.0]",
    "eval.knn_k=[1,5]",
]
TINY_BERT = ["encoder.name=scratch_bert", "encoder.hidden=32", "encoder.layers=2", "encoder.heads=2"]


@pytest.mark.slow
def test_minilm_gsg_fine_tune_exports_a_reloadable_sentence_encoder(tmp_path: Path) -> None:
    run = tmp_path / "gsg"
    extra = ["train.max_steps=2", "data.pretrain_limit=8", "views.mask_p=0.5", "views.reorder_p=0.5"]
    assert main(["pretrain", CONFIG, *TINY_TEXT, *extra, f"output_dir={run}"]) == 0
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2]
    assert all(-1.0 <= r["loss"] <= 1.0 for r in rows)

    encoder = load_encoder(str(run))
    again = load_encoder(str(run))
    from transformers import AutoModel, AutoTokenizer

    hf = run / "encoder" / "hf"
    tok = AutoTokenizer.from_pretrained(hf)
    model = AutoModel.from_pretrained(hf).eval()
    texts = ["a gorgeous, heartfelt film", "flat, lifeless and far too long"]
    enc = tok(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        ours = encoder({"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]})
        m = enc["attention_mask"].unsqueeze(-1).float()
        plain = (model(**enc).last_hidden_state * m).sum(1) / m.sum(1)
        torch.testing.assert_close(plain, ours, atol=1e-5, rtol=1e-4)
        assert torch.equal(again({"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}), ours)

    assert main(["evaluate", str(run)]) == 0
    tuned = json.loads((run / "eval.json").read_text())
    assert 0.0 <= tuned["knn"]["accuracy"] <= 1.0 and tuned["feature_dim"] == 384
    assert "Evaluation: pretrained encoder" in (run / "report.md").read_text()


def test_a_pretrained_encoder_trains_with_its_dropout_on(tmp_path: Path) -> None:
    # transformers' from_pretrained returns its model in eval mode; left so, dropout (the views' noise) is off.
    from gsg_multimodal.config import load_config
    from gsg_multimodal.trainer import Trainer

    extra = ["train.max_steps=1", "data.pretrain_limit=8", "objective.method=byol", f"output_dir={tmp_path / 'run'}"]
    trainer = Trainer(load_config(CONFIG, [*TINY_TEXT, *extra]))
    modes: list[bool] = []
    trainer.step_callbacks.append(
        lambda tr: modes.extend(m.training for net in (tr.model, tr.objective.target) for m in net.modules())
    )
    try:
        trainer.train()
    finally:
        trainer.close()
    assert modes and all(modes)


@pytest.mark.slow
def test_tiny_scratch_bert_byol_pretrains_and_resumes_exactly(tmp_path: Path) -> None:
    extra = [*TINY_BERT, "objective.method=byol", "train.epochs=2", "train.deterministic=true", "optim.lr=0.001"]
    assert main(["pretrain", CONFIG, *TINY_TEXT, *extra, f"output_dir={tmp_path / 'a'}"]) == 0
    assert main(["pretrain", CONFIG, *TINY_TEXT, *extra, "train.max_steps=11", f"output_dir={tmp_path / 'b'}"]) == 0
    assert main(["pretrain", CONFIG, *TINY_TEXT, *extra, f"output_dir={tmp_path / 'b'}", "--resume"]) == 0
    a, b = load_encoder(str(tmp_path / "a")), load_encoder(str(tmp_path / "b"))
    for (key, x), y in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(x, y), key  # views and dropout noise both come from the checkpointed generator
    run = tmp_path / "a"
    assert main(["evaluate", str(run), "--random-init"]) == 0
    assert main(["evaluate", str(run), "--floor"]) == 0
    assert json.loads((run / "eval_random.json").read_text())["encoder"] == "random init"
    floor = json.loads((run / "eval_floor.json").read_text())
    assert floor["name"] == "TF-IDF + logistic regression" and 0.0 <= floor["linear"]["accuracy"] <= 1.0
    assert "TF-IDF + logistic regression" in (run / "report.md").read_text()
