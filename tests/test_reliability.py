"""Interrupted runs lose nothing; damaged checkpoints are skipped; NaN and collapse stop a run cleanly."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from gsg_multimodal import checkpoints
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


def one_line_error_of(capsys: pytest.CaptureFixture) -> str:
    """The one ``error:`` line a failed command printed (and no traceback)."""
    err = capsys.readouterr().err.strip()
    lines = [x for x in err.splitlines() if x.startswith("error:") or "Traceback" in x]
    assert len(lines) == 1 and lines[0].startswith("error: "), err[-2000:]
    return lines[0]


def fresh_process() -> None:
    """What a new process would start with: no Accelerate singletons left over from a killed run."""
    from accelerate.state import AcceleratorState, GradientState, PartialState

    AcceleratorState._reset_state(reset_partial_state=True)
    PartialState._reset_state()
    GradientState._reset_state()


def killed_at(monkeypatch: pytest.MonkeyPatch, point: str, args: list[str]) -> None:
    """Run ``gsg pretrain args`` and kill it at ``point`` (``name:step``), as SIGKILL would, in this process."""
    monkeypatch.setenv(checkpoints.KILL_ENV, point)
    monkeypatch.setattr(checkpoints, "SIMULATE_KILL", True)
    with pytest.raises(checkpoints.SimulatedKill):
        main(["pretrain", *args])
    monkeypatch.delenv(checkpoints.KILL_ENV)
    fresh_process()


def full_history(run: Path) -> list[dict]:
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k not in ("time_s", "samples_per_s")} for r in rows]


# 5 steps per epoch, 30 steps; a checkpoint after every step, a kNN row every 2 epochs (steps 10, 20, 30):
# every epoch end is also a step checkpoint, the case that used to log a kNN row twice.
KILLS = ["step:3", "saving:6", "sealed:9", "knn:10", "published:20", "export:30"]


@pytest.mark.slow
def test_kill_at_chosen_points_then_resume_is_bit_exact(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Killed at six chosen moments (mid-step, inside checkpoint writes, after a kNN row, before the export),
    resumed each time: the same weights and the same metric files (kNN rows included) as an uninterrupted run."""
    exact = [CONFIG, *EXACT, "monitor.knn_every=2"]
    reference, run = tmp_path / "reference", tmp_path / "killed"
    assert main(["pretrain", *exact, f"output_dir={reference}"]) == 0
    fresh_process()
    for i, point in enumerate(KILLS):
        killed_at(monkeypatch, point, [*exact, f"output_dir={run}", *(["--resume"] if i else [])])
    assert not (run / "encoder").exists()  # killed before the export: not finished
    assert main(["pretrain", *exact, f"output_dir={run}", "--resume"]) == 0
    assert_same_weights(reference, run)
    assert full_history(run) == full_history(reference)  # every row once, kNN rows included
    assert (run / "metrics.csv").read_text().count("\n") == (reference / "metrics.csv").read_text().count("\n")
    assert not list((run / "checkpoints").glob(".*"))  # no leftovers of interrupted writes
    assert checkpoint_steps(run) == [29, 30]


@pytest.mark.slow
def test_real_sigkill_between_sealing_and_renaming_the_final_checkpoint(tmp_path: Path) -> None:
    """A real SIGKILL (GSG_KILL_AT in a child process) after the final checkpoint is sealed, before its rename:
    the next start finishes the rename; nothing is lost and the run ends as an uninterrupted one."""
    reference, run = tmp_path / "reference", tmp_path / "killed"
    assert main(["pretrain", CONFIG, *EXACT, f"output_dir={reference}", "train.max_steps=12"]) == 0
    fresh_process()
    cmd = [
        sys.executable,
        "-m",
        "gsg_multimodal",
        "pretrain",
        CONFIG,
        *EXACT,
        f"output_dir={run}",
        "train.max_steps=12",
    ]
    # The child computes with as many threads as this process did for the reference: float sums differ otherwise.
    env = {**os.environ, checkpoints.KILL_ENV: "sealed:12", "OMP_NUM_THREADS": str(torch.get_num_threads())}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert (run / "checkpoints" / ".tmp-step-000000012").is_dir() and checkpoint_steps(run) == [10, 11]
    assert main(["pretrain", CONFIG, *EXACT, f"output_dir={run}", "train.max_steps=12", "--resume"]) == 0
    assert checkpoint_steps(run) == [11, 12]
    name = "checkpoints/step-000000012/model.safetensors"
    wa, wb = load_file(str(reference / name)), load_file(str(run / name))
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    assert full_history(run) == full_history(reference)


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
