"""Real runs with tiny budgets on a real shipped data set: pretrain -> checkpoints -> resume -> export -> evaluate."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from gsg_multimodal import load_encoder
from gsg_multimodal.cli import main

from .conftest import ROOT, TINY

CONFIG = str(ROOT / "configs" / "acsf1_gsg.yaml")


def pretrain(out: Path, *extra: str) -> int:
    return main(["pretrain", CONFIG, *TINY, f"output_dir={out}", *extra])


def encoder_weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(str(run / "encoder" / "model.safetensors"))


@pytest.mark.slow
def test_gsg_pretrain_then_evaluate(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    run = tmp_path / "gsg"
    assert pretrain(run, "train.trackers=[auto]") == 0
    assert list((run / "tensorboard").rglob("events.out.tfevents.*"))  # TensorBoard is installed with [test]
    for name in (
        "config.yaml",
        "metrics.jsonl",
        "metrics.csv",
        "report.md",
        "encoder/model.safetensors",
        "encoder/config.json",
    ):
        assert (run / name).is_file(), name
    assert len(list((run / "checkpoints").glob("step-*"))) == 2  # keep_checkpoints default
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in rows if "loss" in r]
    assert [r["step"] for r in steps] == list(range(1, 11))  # 40 rows / batch 8 = 5 steps x 2 epochs
    for r in steps:
        assert -1.0 <= r["loss"] <= 1.0
        assert r["z_std_ref"] == pytest.approx(1 / 32**0.5)
        fractions = [r[k] for k in ("pair_11_21", "pair_11_22", "pair_12_21", "pair_12_22")]
        assert sum(fractions) == pytest.approx(1.0)
    assert [r["epoch"] for r in rows if "knn_acc" in r] == [1, 2]

    assert main(["evaluate", str(run)]) == 0
    assert main(["evaluate", str(run), "--random-init"]) == 0
    table = capsys.readouterr().out
    assert "kNN" in table and "random init" in table
    for name in ("eval.json", "eval_random.json"):
        res = json.loads((run / name).read_text())
        for probe in ("knn", "linear", "svm"):
            assert 0.0 <= res[probe]["accuracy"] <= 1.0
            assert 0.0 <= res[probe]["macro_f1"] <= 1.0
    assert "Evaluation: pretrained encoder" in (run / "report.md").read_text()


@pytest.mark.slow
def test_exported_encoder_rebuilds_without_the_trainer(tmp_path: Path) -> None:
    run = tmp_path / "run"
    assert pretrain(run, "train.epochs=1", "monitor.knn_every=0") == 0
    encoder = load_encoder(str(run))
    assert not encoder.training
    # The exported weights are the trained online encoder's, as saved in the last checkpoint.
    last = sorted((run / "checkpoints").glob("step-*"))[-1]
    model_state = load_file(str(last / "model.safetensors"))
    for key, value in encoder.state_dict().items():
        assert torch.equal(value, model_state[f"encoder.{key}"]), key
    x = torch.randn(3, 6, 64)
    assert encoder(x).shape == (3, encoder.out_dim)
    # In a fresh interpreter that never imports the trainer, the same features come out.
    code = (
        "import sys, torch, gsg_multimodal as g; e = g.load_encoder(sys.argv[1]); torch.manual_seed(0); "
        "print(e(torch.randn(2, 6, 64)).sum().item()); assert 'gsg_multimodal.trainer' not in sys.modules"
    )
    out = subprocess.run([sys.executable, "-c", code, str(run)], capture_output=True, text=True, check=True)
    torch.manual_seed(0)
    assert float(out.stdout.strip()) == pytest.approx(encoder(torch.randn(2, 6, 64)).sum().item(), rel=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("method", ["simsiam", "byol"])
def test_resume_mid_epoch_matches_an_uninterrupted_run(tmp_path: Path, method: str) -> None:
    extra = [f"objective.method={method}", "train.epochs=3", "train.deterministic=true", "monitor.knn_every=0"]
    assert pretrain(tmp_path / "straight", *extra) == 0
    # Stop after 7 steps (in the middle of epoch 2 of 3), then resume to the end.
    assert pretrain(tmp_path / "resumed", *extra, "train.max_steps=7") == 0
    assert not (tmp_path / "resumed" / "encoder").exists()
    assert pretrain(tmp_path / "resumed", *extra, "--resume") == 0
    a, b = encoder_weights(tmp_path / "straight"), encoder_weights(tmp_path / "resumed")
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    steps = [json.loads(x)["step"] for x in (tmp_path / "resumed" / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 16))  # history continues without gaps or repeats


@pytest.mark.slow
def test_variable_length_multichannel_data_with_other_training_options(tmp_path: Path) -> None:
    """JapaneseVowels (12 channels, 7-29 steps) with 2-view GSG, no predictor, AdamW, warmup, accumulation."""
    extra = [
        "data.name=JapaneseVowels",
        "data.limit=48",
        "objective.gsg_views=2",
        "objective.pairing=permutation",
        "model.predictor=false",
        "optim.name=adamw",
        "optim.lr=0.001",
        "optim.warmup_fraction=0.5",
        "train.grad_accum=2",
        "train.epochs=2",
        "monitor.knn_every=0",
    ]
    assert pretrain(tmp_path / "run", *extra) == 0
    rows = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3, 4, 5, 6]  # 48 rows / 8 = 6 batches / 2 = 3 steps per epoch
    assert rows[0]["lr"] < rows[2]["lr"]  # warming up over the first epoch
    assert load_encoder(str(tmp_path / "run")).in_channels == 12


def test_heads_learn_at_a_multiple_of_the_encoder_lr_along_the_whole_schedule(tmp_path: Path) -> None:
    from gsg_multimodal.config import load_config
    from gsg_multimodal.trainer import Trainer

    extra = ["optim.lr=0.01", "optim.head_lr_scale=10", "model.fixed_predictor_lr=false", "monitor.knn_every=0"]
    trainer = Trainer(load_config(CONFIG, [*TINY, *extra, f"output_dir={tmp_path / 'run'}"]))
    seen: list[tuple[float, list[float]]] = []

    def record(tr: Trainer) -> None:
        encoder = {id(p) for p in tr.accelerator.unwrap_model(tr.model).encoder.parameters()}
        groups = tr.optimizer.optimizer.param_groups
        body = [g["lr"] for g in groups if all(id(p) in encoder for p in g["params"])]
        heads = [g["lr"] for g in groups if not any(id(p) in encoder for p in g["params"])]
        assert len(body) + len(heads) == len(groups)  # no group mixes encoder and head parameters
        seen.append((body[0], heads))

    trainer.step_callbacks.append(record)
    try:
        trainer.train()
    finally:
        trainer.close()
    assert len(seen) > 2 and all(len(heads) == 2 for _, heads in seen)  # projector and predictor groups
    assert all(h == pytest.approx(10 * body) for body, heads in seen for h in heads)
    assert 0 < seen[0][0] <= 0.01 and seen[1][0] < seen[0][0]  # the encoder follows the cosine from 0.01


@pytest.mark.slow
def test_torchrun_two_processes_are_really_distributed(tmp_path: Path) -> None:
    script = ROOT / "tests" / "scripts" / "distributed_check.py"
    out = tmp_path / "dist"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_port",
        "29533",
        str(script),
        CONFIG,
        *TINY,
        "train.max_steps=3",
        "monitor.knn_every=0",
        f"output_dir={out}",
        "train.batch_size=4",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((out / "distributed_check.json").read_text())
    assert result["num_processes"] == 2
    assert "MULTI_CPU" in result["distributed_type"]
    assert result["steps"] == 3
    # After every step both ranks hold identical weights: gradients were averaged across ranks...
    assert result["max_param_diff_per_step"] == [0.0, 0.0, 0.0]
    assert result["aug_draws_differ"]  # ...while each rank drew its own augmentations
    # Evaluation features gathered from both ranks: every row once, in order, as computed in one process.
    assert result["gathered_rows"] == result["dataset_rows"] == 40
    assert result["labels_match"]
    assert result["features_max_diff"] < 1e-5
    # Only the main process writes: one metrics row per step, not one per rank.
    steps = [json.loads(x)["step"] for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3]


@pytest.mark.slow
def test_fake_multi_gpu_launch_is_refused(tmp_path: Path) -> None:
    """``accelerate launch --multi_gpu`` without GPUs starts unconnected processes: refuse, name torchrun.

    (With ``train.cpu=true`` the same launch forms a real multi-CPU group, which is fine.)
    """
    out = tmp_path / "fake"
    cmd = [
        str(Path(sys.executable).parent / "accelerate"),
        "launch",
        "--multi_gpu",
        "--num_processes",
        "2",
        "--main_process_port",
        "29544",
        "-m",
        "gsg_multimodal",
        "pretrain",
        CONFIG,
        *TINY,
        "train.cpu=false",
        f"output_dir={out}",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert "not connected" in proc.stderr and "torchrun --nproc_per_node" in proc.stderr
    assert not (out / "checkpoints").exists()  # nothing was trained or written
