"""Interrupted runs lose nothing; damaged checkpoints are skipped; NaN and collapse stop a run cleanly."""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from gsg_multimodal.cli import main

from .conftest import ROOT, TINY

CONFIG = str(ROOT / "configs" / "acsf1_gsg.yaml")
EXACT = [*TINY, "train.deterministic=true", "train.checkpoint_every=1", "train.epochs=6", "monitor.knn_every=0"]
COMPARED = ("step", "epoch", "loss", "z_std", "pair_11_21", "pair_11_22", "pair_12_21", "pair_12_22")


def history(run: Path) -> list[dict]:
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    return [{k: r.get(k) for k in COMPARED} for r in rows]


def assert_same_weights(a: Path, b: Path) -> None:
    wa, wb = load_file(str(a / "encoder" / "model.safetensors")), load_file(str(b / "encoder" / "model.safetensors"))
    assert wa.keys() == wb.keys()
    for key in wa:
        assert torch.equal(wa[key], wb[key]), key


def checkpoint_steps(run: Path) -> list[int]:
    root = run / "checkpoints"
    return sorted(int(p.name.split("-")[1]) for p in root.glob("step-*")) if root.is_dir() else []


def wait_for(predicate, proc: subprocess.Popen, timeout: float = 120.0) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        if predicate():
            return True
        time.sleep(0.005)
    return False


@pytest.mark.slow
def test_sigkill_at_random_moments_then_resume_is_bit_exact(tmp_path: Path) -> None:
    reference, run = tmp_path / "reference", tmp_path / "killed"
    assert main(["pretrain", CONFIG, *EXACT, f"output_dir={reference}"]) == 0

    rng = random.Random(0)
    cmd = [sys.executable, "-m", "gsg_multimodal", "pretrain", CONFIG, *EXACT, f"output_dir={run}"]
    kills, mid_write = 0, 0
    for attempt in range(10):
        before = max(checkpoint_steps(run), default=0)
        proc = subprocess.Popen([*cmd, "--resume"] if attempt else cmd, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)  # fmt: skip
        if attempt < 5:
            if attempt % 2 == 0:  # the moment a checkpoint is being written
                hit = wait_for(lambda: any((run / "checkpoints").glob(".tmp-step-*")), proc)
                mid_write += hit
            else:  # a random moment once this process has made progress
                wait_for(lambda b=before: max(checkpoint_steps(run), default=0) > b, proc)
                time.sleep(rng.uniform(0.0, 0.4))
            if proc.poll() is None:
                proc.kill()
                proc.wait()
                kills += 1
                continue
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-2000:]
        break
    assert kills >= 4 and mid_write >= 2, (kills, mid_write)
    assert_same_weights(reference, run)
    assert history(run) == history(reference)  # every step logged once, with the same values
    assert not list((run / "checkpoints").glob(".*"))  # no leftovers of interrupted writes


@pytest.mark.slow
def test_damaged_newest_checkpoint_is_skipped_with_a_warning(tmp_path: Path) -> None:
    reference, run = tmp_path / "reference", tmp_path / "run"
    assert main(["pretrain", CONFIG, *EXACT, f"output_dir={reference}"]) == 0
    assert main(["pretrain", CONFIG, *EXACT, f"output_dir={run}", "train.max_steps=12"]) == 0
    assert checkpoint_steps(run) == [11, 12]  # keep-last-2
    newest = run / "checkpoints" / "step-000000012" / "model.safetensors"
    newest.write_bytes(newest.read_bytes()[:100])  # truncated, as by a full disk
    with pytest.warns(UserWarning, match=r"step-000000012.*damaged \(model.safetensors is truncated"):
        assert main(["pretrain", CONFIG, *EXACT, f"output_dir={run}", "--resume"]) == 0
    assert_same_weights(reference, run)


@pytest.mark.slow
def test_resume_before_the_first_checkpoint_starts_over(tmp_path: Path) -> None:
    run = tmp_path / "run"
    assert main(["pretrain", CONFIG, *EXACT, f"output_dir={run}", "train.max_steps=2"]) == 0
    shutil.rmtree(run / "checkpoints")  # as if killed before the first checkpoint was complete
    assert main(["pretrain", CONFIG, *EXACT, f"output_dir={run}", "--resume"]) == 0
    assert [r["step"] for r in history(run)] == list(range(1, 31))


def toy_config(tmp_path: Path, **sections: dict) -> Path:
    config = {"domain": "tests.toy_domain:DigitsDomain", "output_dir": str(tmp_path / "run"),
              "model": {"projector_hidden": 16, "projector_dim": 16, "predictor_hidden": 8},
              "train": {"epochs": 3, "batch_size": 32, "progress_bar": False, "trackers": ["none"], "cpu": True,
                        "checkpoint_every": 2, "log_every": 50}}  # fmt: skip
    for key, value in sections.items():
        config.setdefault(key, {}).update(value)
    path = tmp_path / "toy.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.slow
def test_nan_loss_stops_the_run_naming_the_step_and_keeps_the_good_checkpoint(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    # Views turn NaN only from step 5 on: steps 1-4 are good and checkpointed at 2 and 4.
    config = toy_config(tmp_path, views={"nan_after_step": 5})
    assert main(["pretrain", str(config)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: the loss became NaN or infinite at step 5") and "\n" not in err
    assert checkpoint_steps(tmp_path / "run") == [2, 4]
    weights = load_file(str(tmp_path / "run" / "checkpoints" / "step-000000004" / "model.safetensors"))
    assert all(torch.isfinite(w).all() for w in weights.values())


@pytest.mark.slow
def test_collapse_guard_warns_or_stops(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    # A threshold above any real std makes every step look collapsed: the guard must fire.
    always = {"collapse_fraction": 100.0, "collapse_patience": 3}
    config = toy_config(tmp_path, monitor={**always, "collapse_action": "stop"})
    assert main(["pretrain", str(config)]) == 2
    assert "representations collapsed" in capsys.readouterr().err
    config = toy_config(tmp_path, monitor={**always, "collapse_action": "warn"})
    with pytest.warns(UserWarning, match="representations collapsed"):
        assert main(["pretrain", str(config), "--overwrite"]) == 0
