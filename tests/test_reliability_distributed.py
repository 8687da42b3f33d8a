"""What launches really do on a machine without GPUs, and resuming under a different launch.

``accelerate launch --multi_gpu --num_processes 2`` (Accelerate 1.x) starts its processes through
torch's elastic launcher with RANK/WORLD_SIZE/MASTER_ADDR set. With ``train.cpu=true`` the trainer's
Accelerator(cpu=True) joins them in a gloo group: a real two-process CPU run, like ``torchrun``.
With ``train.cpu=false`` on a machine without GPUs each process sees DistributedType.NO and the
trainer refuses (``test_end_to_end.py::test_fake_multi_gpu_launch_is_refused``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from gsg_multimodal.cli import main

from .conftest import ROOT, TINY
from .test_reliability import CONFIG, checkpoint_steps, one_line_error_of


@pytest.mark.slow
@pytest.mark.skipif(torch.cuda.is_available(), reason="about machines without GPUs")
def test_accelerate_multi_gpu_launch_with_cpu_true_is_a_real_two_process_run_and_resumes_only_so(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "dist"
    cmd = [
        str(Path(sys.executable).parent / "accelerate"),
        "launch",
        "--multi_gpu",
        "--num_processes",
        "2",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "--main_process_port",
        "29561",
        str(ROOT / "tests" / "scripts" / "distributed_check.py"),
        CONFIG,
        *TINY,
        "train.cpu=true",
        "train.max_steps=3",
        "monitor.knn_every=0",
        "train.batch_size=4",
        f"output_dir={out}",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((out / "distributed_check.json").read_text())
    assert result["num_processes"] == 2 and "MULTI_CPU" in result["distributed_type"]
    assert result["max_param_diff_per_step"] == [0.0, 0.0, 0.0]  # gradients averaged: connected
    assert result["aug_draws_differ"]
    assert result["gathered_rows"] == result["dataset_rows"] == 40
    assert [json.loads(x)["step"] for x in (out / "metrics.jsonl").read_text().splitlines()] == [1, 2, 3]
    # Item 5: that run's checkpoint holds 2 processes' streams; resuming it in 1 process is refused.
    assert checkpoint_steps(out) == [3]
    extra = ["train.cpu=true", "monitor.knn_every=0", "train.batch_size=4", f"output_dir={out}"]
    assert main(["pretrain", CONFIG, *TINY, *extra, "--resume"]) == 2
    line = one_line_error_of(capsys)
    assert "made by 2 process(es), this launch has 1" in line
    assert checkpoint_steps(out) == [3]
