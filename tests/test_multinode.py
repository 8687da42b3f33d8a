"""Several machines, tested as two "nodes" on 127.0.0.1: the launch command started twice, once per "machine".

Each launch is what one machine of a cluster runs: one process, joined to the other on a free port, CPU and
gloo (``train.cpu=true``); by ``torchrun`` (c10d rendezvous) and by ``accelerate launch --num_machines 2``.
Both share one output folder, as machines of a cluster share a run folder on shared storage. Each process is
``tests/scripts/node_check.py``: the real ``gsg pretrain`` command line, recording what its process saw and
wrote (see there).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

import pytest
import torch

from gsg_multimodal import checkpoints
from gsg_multimodal.cli import main

from .conftest import ROOT, TINY
from .test_reliability import one_line_error_of

CONFIG = str(ROOT / "configs" / "acsf1_gsg.yaml")
SCRIPT = ROOT / "tests" / "scripts" / "node_check.py"
TIMEOUT_S = 150  # the run takes about 20 s on 2 busy cores; this only bounds a hang


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch_node(launcher: str, node: int, port: int, dump: Path, out: Path, log: IO[str]) -> subprocess.Popen:
    """One "machine" of two, one process on it, meeting the other on 127.0.0.1:port; as docs/scale.md shows.

    ``torchrun``: the c10d rendezvous, the same command on every machine (torchrun ignores ``--node_rank`` with
    c10d: ranks are assigned at the rendezvous); ``is_host`` says which launch serves the rendezvous store,
    instead of both guessing from the address. ``accelerate``: ``--num_machines`` with a ``--machine_rank``
    each, the main process's address and port (a static rendezvous).
    """
    if launcher == "torchrun":
        cmd = [
            sys.executable, "-m", "torch.distributed.run",
            "--nnodes", "2", "--nproc_per_node", "1",
            "--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{port}", "--rdzv-id", "gsg-two-nodes",
            "--rdzv-conf", f"is_host={int(node == 0)},join_timeout=60",
            "--local_addr", "127.0.0.1", "--max-restarts", "0",
        ]  # fmt: skip
    else:
        cmd = [
            str(Path(sys.executable).parent / "accelerate"), "launch", "--multi_gpu",
            "--num_machines", "2", "--machine_rank", str(node), "--num_processes", "2",
            "--main_process_ip", "127.0.0.1", "--main_process_port", str(port),
            "--mixed_precision", "no", "--dynamo_backend", "no",
        ]  # fmt: skip
    cmd += [
        str(SCRIPT),
        str(dump),
        CONFIG,
        *TINY,
        "train.batch_size=4",
        "train.checkpoint_every=4",
        f"output_dir={out}",
    ]
    path = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": path}
    # Its own session, so a hang is ended by killing the launch's whole process group (ours, by id).
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)


def run_two_nodes(launcher: str, tmp_path: Path, attempt: int) -> tuple[list[int | None], list[str], Path, Path]:
    out, dump = tmp_path / f"run{attempt}", tmp_path / f"ranks{attempt}"
    port = free_port()
    logs = [tmp_path / f"node{i}-{attempt}.log" for i in (0, 1)]
    with logs[0].open("w") as log0, logs[1].open("w") as log1:
        nodes = [launch_node(launcher, 0, port, dump, out, log0), launch_node(launcher, 1, port, dump, out, log1)]
        deadline = time.monotonic() + TIMEOUT_S
        while any(node.poll() is None for node in nodes) and time.monotonic() < deadline:
            if any(node.returncode for node in nodes):  # one failed: the other would wait for it until gloo gives up
                deadline = min(deadline, time.monotonic() + 10)
            time.sleep(0.2)
        for node in nodes:
            if node.poll() is None:
                os.killpg(node.pid, signal.SIGKILL)  # the launch's own process group: torchrun and its worker
                node.wait()
    return [node.returncode for node in nodes], [log.read_text() for log in logs], out, dump


@pytest.mark.slow
@pytest.mark.parametrize(
    "launcher",
    [
        "torchrun",
        pytest.param(
            "accelerate",
            marks=pytest.mark.skipif(torch.cuda.is_available(), reason="--multi_gpu would use this machine's GPUs"),
        ),
    ],
)
def test_two_node_launch_on_localhost_finishes_with_identical_parameters_on_both_ranks(
    launcher: str, tmp_path: Path
) -> None:
    for attempt in range(3):  # the free port can be taken between choosing it and binding it: try another
        codes, logs, out, dump = run_two_nodes(launcher, tmp_path, attempt)
        if not any("address already in use" in text.lower() for text in logs):
            break
    shown = "\n".join(f"--- node {i} (exit {codes[i]}):\n{log[-3000:]}" for i, log in enumerate(logs))
    assert codes == [0, 0], f"a node failed or hung (limit {TIMEOUT_S} s)\n{shown}"
    ranks = {r: json.loads((dump / f"rank{r}.json").read_text()) for r in (0, 1)}

    # Two machines, one process each, one group of two: each process is its machine's local main process.
    for r, seen in ranks.items():
        assert seen["exit_code"] == 0 and seen["steps"] == 10  # 40 rows / (4 x 2 processes) x 2 epochs
        assert seen["env"]["WORLD_SIZE"] == "2" and seen["env"]["LOCAL_WORLD_SIZE"] == "1"
        assert seen["num_processes"] == 2 and "MULTI_CPU" in seen["distributed_type"]
        assert seen["process_index"] == r and seen["local_process_index"] == 0 and seen["is_local_main_process"]
        assert seen["is_main_process"] == (r == 0)
    assert {ranks[r]["env"]["GROUP_RANK"] for r in (0, 1)} == {"0", "1"}  # two nodes, not one

    # Gradients were averaged across the machines: the same parameters on both, and they are what was exported.
    assert ranks[0]["parameters_sha256"] == ranks[1]["parameters_sha256"]
    assert ranks[0]["export_equals_my_parameters"] and ranks[1]["export_equals_my_parameters"]
    # Randomness drawn while training (dropout) is each rank's own, not the same stream repeated.
    assert ranks[0]["global_rng_after_training"] != ranks[1]["global_rng_after_training"]

    # One writer: the other machine's local main process wrote only its own per-process checkpoint files
    # (and created the checkpoint's temp folder, which both do); every run file came from the global main.
    own = ("generators_1.pt", "random_states_1.pkl")
    for kind, path in ranks[1]["writes"]:
        assert kind == "mkdir" or (path.startswith("checkpoints/.tmp-step-") and path.endswith(own)), (kind, path)
    assert any(path.endswith(own) for _, path in ranks[1]["writes"])  # the record does see its writes
    written = {path for _, path in ranks[0]["writes"]}
    for expected in ("config.yaml.tmp", checkpoints.RUN_FILE + ".tmp", "metrics.jsonl", "report.md",
                     "encoder.tmp/model.safetensors"):  # fmt: skip
        assert expected in written

    # The shared folder holds one run: one metric row per step, sealed checkpoints with both processes' streams.
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "loss" in r] == list(range(1, 11))
    kept = sorted(p.name for p in (out / "checkpoints").iterdir())
    assert kept == ["step-000000008", "step-000000010"]  # keep-last-2; no temp leftovers
    for name in kept:
        folder = out / "checkpoints" / name
        assert checkpoints.verify(folder) is None
        assert json.loads((folder / checkpoints.STATE_FILE).read_text())["num_processes"] == 2
        assert {p.name for p in folder.glob("generators_*.pt")} == {"generators_0.pt", "generators_1.pt"}


@pytest.mark.parametrize(
    "argv",
    [
        ["export", "runs/x"],
        ["evaluate", "runs/x", "--floor"],
        ["compare", CONFIG],
        ["views", CONFIG],
        ["benchmark", "smoke"],
    ],
)
def test_one_process_commands_are_refused_under_a_multi_process_launch(
    argv: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """Only pretrain and evaluate share work across processes; the others would write the same files N times."""
    monkeypatch.setenv("WORLD_SIZE", "2")  # what torchrun / accelerate launch give each process
    assert main(argv) == 2
    line = one_line_error_of(capsys)
    assert "runs in one process, but this launch started 2" in line and "without accelerate launch" in line
    assert main(["domains"]) == 0  # reads only


def test_as_a_program_in_a_multi_process_launch_a_process_ends_with_its_code_and_its_output(tmp_path: Path) -> None:
    """The program skips interpreter finalisation under a launch (gloo can abort there, after the work is
    done), so what it printed and its exit code must survive ``os._exit``: both a success and a refusal."""
    env = {**os.environ, "WORLD_SIZE": "2"}
    ok = subprocess.run([sys.executable, "-m", "gsg_multimodal", "domains"], capture_output=True, text=True, env=env)
    assert ok.returncode == 0 and "timeseries" in ok.stdout
    refused = subprocess.run(
        [sys.executable, "-m", "gsg_multimodal", "export", str(tmp_path / "x")], capture_output=True, text=True, env=env
    )
    assert refused.returncode == 2 and "runs in one process, but this launch started 2" in refused.stderr
