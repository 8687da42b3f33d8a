"""Mixed precision: the launcher's choice (``accelerate launch --mixed_precision`` / ``accelerate config``,
seen by the process as ACCELERATE_MIXED_PRECISION) wins unless the run's config sets it explicitly."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from gsg_multimodal import runtime
from gsg_multimodal.config import load_config

ROOT = Path(__file__).resolve().parents[1]


def _accelerator(tmp_path: Path, *overrides: str):
    cfg = load_config(ROOT / "configs" / "acsf1_gsg.yaml", ["train.cpu=true", *overrides])
    return runtime.make_accelerator(cfg, tmp_path, with_trackers=False)


def _autocast_dtype(accelerator) -> torch.dtype:
    with accelerator.autocast():
        return (torch.ones(4, 4) @ torch.ones(4, 4)).dtype


def test_launcher_bf16_wins_over_the_config_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", "bf16")
    acc = _accelerator(tmp_path)  # the config leaves train.mixed_precision at its default
    assert acc.mixed_precision == "bf16"
    assert _autocast_dtype(acc) == torch.bfloat16  # CPU autocast really runs in bf16


def test_no_launcher_and_no_config_value_is_full_precision(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ACCELERATE_MIXED_PRECISION", raising=False)
    acc = _accelerator(tmp_path)
    assert acc.mixed_precision == "no"
    assert _autocast_dtype(acc) == torch.float32


def test_an_explicit_config_value_wins_over_the_launcher(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", "no")
    acc = _accelerator(tmp_path, "train.mixed_precision=bf16")
    assert acc.mixed_precision == "bf16"
    assert _autocast_dtype(acc) == torch.bfloat16


def test_explicit_no_wins_once_the_config_default_is_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With ``train.mixed_precision: ... | None = None`` in config.py, a written ``no`` is a choice too."""
    monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", "bf16")
    monkeypatch.setattr(runtime, "_config_default_precision", lambda: None)
    assert runtime.resolve_precision(None) is None  # not set: Accelerate reads the launcher's bf16
    acc = _accelerator(tmp_path, "train.mixed_precision=no")
    assert acc.mixed_precision == "no"
    assert _autocast_dtype(acc) == torch.float32


def test_fp16_without_a_gpu_falls_back_to_full_precision(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", "fp16")
    assert runtime.resolve_precision("no") == "no"
    assert runtime.resolve_precision("fp16") == "no"
    monkeypatch.delenv("ACCELERATE_MIXED_PRECISION")
    assert runtime.resolve_precision("bf16") == "bf16"
