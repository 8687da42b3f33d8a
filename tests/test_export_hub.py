"""`gsg export` from any checkpoint, `gsg evaluate RUN key=value` (transfer), scores to trackers, model cards,
and exports of every domain loadable with `GSGEncoder.from_pretrained` (no network anywhere)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from gsg_domains.audio.data import DRUMKITS_DIR
from gsg_domains.images import data as image_data
from gsg_multimodal import GSGEncoder, load_encoder
from gsg_multimodal.cli import main
from gsg_multimodal.runtime import reset_accelerate

from . import test_audio_end_to_end as audio_tests
from . import test_images_end_to_end as image_tests
from . import test_text_end_to_end as text_tests
from .conftest import ROOT, TINY

TS_CONFIG = str(ROOT / "configs" / "acsf1_gsg.yaml")
STOPPED = ["train.epochs=3", "train.max_steps=3", "monitor.knn_every=0"]  # 5 steps an epoch: stops mid-run


def _keys(file: Path) -> set[str]:
    with safe_open(str(file), "pt") as fh:
        return set(fh.keys())  # noqa: SIM118


def _stopped_run(tmp_path: Path, config: str, overrides: list[str]) -> Path:
    run = tmp_path / "run"
    assert main(["pretrain", config, *overrides, f"output_dir={run}"]) == 0
    reset_accelerate()
    return run


def test_export_a_stopped_run_load_it_everywhere_evaluate_and_transfer(tmp_path: Path) -> None:
    run = _stopped_run(tmp_path, TS_CONFIG, [*TINY, *STOPPED])
    assert not (run / "encoder").exists()  # max_steps: no export at the end of training
    assert main(["export", str(run)]) == 0
    export = run / "encoder"
    config = json.loads((export / "config.json").read_text())
    assert config["steps"] == 3 and config["domain"] == "timeseries"
    assert "Not evaluated yet" in (export / "README.md").read_text()

    bare = load_encoder(str(run))
    hub = GSGEncoder.from_pretrained(str(export))
    x = torch.randn(3, 6, 64)
    with torch.no_grad():
        assert torch.equal(hub(x), bare(x))
        hub.save_pretrained(tmp_path / "saved")  # the hub mixin's path: the same export format
        assert torch.equal(GSGEncoder.from_pretrained(str(tmp_path / "saved"))(x), bare(x))
    checkpoint_weights = run / "checkpoints" / "step-000000003" / "model.safetensors"
    with safe_open(str(checkpoint_weights), "pt") as fh:
        for key, value in bare.state_dict().items():
            assert torch.equal(fh.get_tensor(f"encoder.{key}"), value)

    # Evaluation: scores to eval.json, the model card and the run's trackers (TensorBoard here).
    assert main(["evaluate", str(run), "eval.cv_folds=2", "train.trackers=[tensorboard]"]) == 0
    reset_accelerate()
    card = (export / "README.md").read_text()
    assert "| this encoder |" in card and "Not evaluated yet" not in card
    # Transfer without a suite: the same encoder scored on other data named by overrides.
    assert main(["evaluate", str(run), "data.name=BasicMotions", "data.limit=30", "train.trackers=[tensorboard]"]) == 0
    reset_accelerate()
    transfer = json.loads((run / "eval_data.name-BasicMotions_data.limit-30.json").read_text())
    assert 0 <= transfer["svm"]["accuracy"] <= 1 and transfer["target"]["limit"] == 30

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run / "tensorboard" / "gsg"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"eval/knn_accuracy", "eval/svm_accuracy", "transfer/data.name-BasicMotions_data.limit-30/svm_accuracy"} <= (
        tags
    )
    assert [e.step for e in events.Scalars("eval/svm_accuracy")] == [3]


def test_export_an_older_or_damaged_checkpoint(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    run = _stopped_run(tmp_path, TS_CONFIG, [*TINY, *STOPPED, "train.checkpoint_every=1", "train.keep_checkpoints=3"])
    first = run / "checkpoints" / "step-000000001"
    assert main(["export", str(run), "--checkpoint", str(first)]) == 0
    assert json.loads((run / "encoder-step-1" / "config.json").read_text())["steps"] == 1
    assert main(["export", str(run), "--out", str(tmp_path / "latest")]) == 0
    assert json.loads((tmp_path / "latest" / "config.json").read_text())["steps"] == 3
    weights = first / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-10])  # a crash mid-copy, a bad disk
    capsys.readouterr()
    assert main(["export", str(run), "--checkpoint", str(first)]) == 2
    assert "model.safetensors is truncated" in capsys.readouterr().err


def test_push_to_hub_needs_a_token_and_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))  # no cached login either
    run = _stopped_run(tmp_path, TS_CONFIG, [*TINY, *STOPPED])
    assert main(["export", str(run), "--push-to-hub", "someone/encoder"]) == 2
    assert "no Hugging Face token" in capsys.readouterr().err
    assert callable(GSGEncoder.push_to_hub)


@pytest.mark.slow
def test_text_export_has_no_missing_pooler_report_and_no_weight_twice(tmp_path: Path, capfd) -> None:
    tiny = [*text_tests.TINY_TEXT, *text_tests.TINY_BERT, "train.max_steps=1", "data.pretrain_limit=8"]
    run = _stopped_run(tmp_path, text_tests.CONFIG, tiny)
    assert main(["export", str(run)]) == 0
    export = run / "encoder"
    ours, hf = _keys(export / "model.safetensors"), _keys(export / "hf" / "model.safetensors")
    assert not {f"model.{k}" for k in hf} & ours  # every transformer weight is stored once, in hf/
    assert {"pooler.dense.weight", "pooler.dense.bias"} <= hf  # so AutoModel finds nothing missing
    capfd.readouterr()
    from transformers import AutoModel, AutoTokenizer

    model = AutoModel.from_pretrained(export / "hf").eval()
    assert "MISSING" not in "".join(capfd.readouterr())
    bare, hub = load_encoder(str(export)), GSGEncoder.from_pretrained(str(export))
    tokenizer = AutoTokenizer.from_pretrained(export / "hf")
    enc = tokenizer(["a heartfelt film", "far too long"], padding=True, return_tensors="pt")
    with torch.no_grad():
        batch = {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}
        m = enc["attention_mask"].unsqueeze(-1).float()
        plain = (model(**enc).last_hidden_state * m).sum(1) / m.sum(1)
        torch.testing.assert_close(bare(batch), plain, atol=1e-5, rtol=1e-4)
        assert torch.equal(hub(batch), bare(batch))


def test_a_pretrained_text_export_keeps_the_shipped_pooler(tmp_path: Path) -> None:
    from safetensors.torch import save_file
    from transformers import BertConfig, BertModel

    from gsg_domains.text.encoders import TextEncoder, export_hf

    config = BertConfig(vocab_size=50, hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=16)
    source = tmp_path / "shipped"
    source.mkdir()
    shipped = BertModel(config).pooler.state_dict()
    save_file({f"pooler.{k}": v for k, v in shipped.items()}, str(source / "model.safetensors"))
    encoder = TextEncoder(BertModel(config, add_pooling_layer=False), "mean")
    shared = export_hf(encoder, tmp_path / "out", 8, str(source))
    assert shared == {"hf/model.safetensors": "model."}
    with safe_open(str(tmp_path / "out" / "hf" / "model.safetensors"), "pt") as fh:
        assert torch.equal(fh.get_tensor("pooler.dense.weight"), shipped["dense.weight"])


@pytest.mark.slow
@pytest.mark.skipif(not image_data.FASHION_MNIST_DIR.is_dir(), reason="apt-get install dataset-fashion-mnist")
def test_image_export_loads_with_from_pretrained(tmp_path: Path) -> None:
    overrides = [*image_tests.TINY, "train.max_steps=1", "train.epochs=2", "monitor.knn_every=0"]
    run = _stopped_run(tmp_path, image_tests.CONFIG, overrides)
    assert main(["export", str(run)]) == 0
    bare, hub = load_encoder(str(run)), GSGEncoder.from_pretrained(str(run / "encoder"))
    x = torch.randn(2, 1, 28, 28)
    with torch.no_grad():
        assert torch.equal(hub(x), bare(x))


@pytest.mark.slow
@pytest.mark.skipif(not Path(DRUMKITS_DIR).is_dir(), reason="apt-get install hydrogen-drumkits")
def test_audio_export_loads_with_from_pretrained(tmp_path: Path) -> None:
    config = str(ROOT / "configs" / "drums_gsg.yaml")
    overrides = [*audio_tests.TINY, "train.max_steps=1", "train.epochs=2", "monitor.knn_every=0"]
    run = _stopped_run(tmp_path, config, overrides)
    assert main(["export", str(run)]) == 0
    bare, hub = load_encoder(str(run)), GSGEncoder.from_pretrained(str(run / "encoder"))
    x = torch.randn(2, 1, bare.n_mels, 32)  # log-mel frames, what the audio encoder reads
    with torch.no_grad():
        assert torch.equal(hub(x), bare(x))
