"""One rank of a multi-node ``gsg pretrain``, recording what it saw and everything it wrote into the run folder.

Run under a launcher, once per process: ``node_check.py DUMP_DIR <gsg pretrain arguments...>``. It runs the
real command line (``gsg_multimodal.cli.main``) and then writes ``DUMP_DIR/rank<R>.json`` (outside the run
folder) with:

- the launcher's and Accelerate's view of the process: ranks, world size, node, main / local main;
- a SHA-256 of the trained parameters (buffers left out: on CPU BatchNorm statistics are per process),
  and whether the exported encoder holds exactly this process's parameters;
- a draw from torch's global RNG after training (dropout draws from it: it must differ across ranks);
- every change this process made under ``output_dir``: Python's audit events (``open`` for writing,
  renames, deletions, new folders) plus ``torch.save`` and safetensors' ``save_file``, which write from
  C++/Rust without passing through Python's ``open``.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any

import safetensors.torch
import torch

WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


def output_dir_of(argv: list[str]) -> Path:
    values = [a.split("=", 1)[1] for a in argv if a.startswith("output_dir=")]
    if not values:
        sys.exit("node_check.py: pass output_dir=<folder> explicitly")
    return Path(os.path.realpath(values[-1]))


class WriteLog:
    """What this process changed under ``root``: ``[kind, path relative to root]`` pairs, in order."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.entries: list[list[str]] = []

    def note(self, kind: str, path: Any) -> None:
        if isinstance(path, int) or path is None:
            return  # a file descriptor: its opening was noted
        full = os.path.realpath(os.fsdecode(path))
        if full == str(self.root) or full.startswith(str(self.root) + os.sep):
            self.entries.append([kind, os.path.relpath(full, self.root)])

    def audit(self, event: str, args: tuple) -> None:
        if event == "open":
            path, mode, flags = args
            writing = any(c in mode for c in "wax+") if isinstance(mode, str) else bool((flags or 0) & WRITE_FLAGS)
            if writing:
                self.note("write", path)
        elif event == "os.rename":  # os.rename and os.replace; a dir_fd of -1 means none
            if args[2] in (None, -1) and args[3] in (None, -1):
                self.note("rename-from", args[0])
                self.note("rename-to", args[1])
        elif event in ("shutil.rmtree", "os.truncate"):
            self.note(event.split(".")[1], args[0])
        elif event in ("os.remove", "os.rmdir", "os.mkdir") and args[-1] in (None, -1):
            self.note(event.split(".")[1], args[0])  # with a dir_fd: rmtree's own deletions, noted as the rmtree

    def wrap(self, save: Any, kind: str) -> Any:
        def recorded(obj: Any, f: Any, *args: Any, **kwargs: Any) -> Any:
            if isinstance(f, (str, os.PathLike)):
                self.note(kind, f)
            return save(obj, f, *args, **kwargs)

        return recorded


def parameters_digest(module: torch.nn.Module) -> str:
    h = hashlib.sha256()
    for name, p in sorted(module.named_parameters()):
        h.update(name.encode())
        h.update(p.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def main() -> int:
    dump_dir, argv = Path(sys.argv[1]), sys.argv[2:]
    log = WriteLog(output_dir_of(argv))
    sys.addaudithook(log.audit)
    # Before anything imports them by name (Accelerate binds safetensors' save_file at import).
    torch.save = log.wrap(torch.save, "torch.save")
    safetensors.torch.save_file = log.wrap(safetensors.torch.save_file, "save_file")

    from gsg_multimodal import cli
    from gsg_multimodal.trainer import Trainer

    seen: dict[str, Any] = {}
    train = Trainer.train

    def train_and_look(self: Trainer) -> dict[str, Any]:
        summary = train(self)  # ends with the export and a barrier: the encoder folder is complete
        acc = self.accelerator
        model = acc.unwrap_model(self.model)
        exported = safetensors.torch.load_file(str(self.run_dir / "encoder" / "model.safetensors"))
        mine = dict(model.encoder.named_parameters())
        seen.update(
            distributed_type=str(acc.distributed_type),
            num_processes=acc.num_processes,
            process_index=acc.process_index,
            local_process_index=acc.local_process_index,
            is_main_process=acc.is_main_process,
            is_local_main_process=acc.is_local_main_process,
            steps=summary["steps"],
            parameters_sha256=parameters_digest(model),
            export_equals_my_parameters=all(torch.equal(exported[k], p.detach().cpu()) for k, p in mine.items()),
            global_rng_after_training=torch.rand(4).tolist(),
        )
        return summary

    Trainer.train = train_and_look
    code = cli.main(["pretrain", *argv])
    env = {k: os.environ.get(k) for k in ("RANK", "LOCAL_RANK", "GROUP_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE")}
    dump_dir.mkdir(parents=True, exist_ok=True)
    record = {"exit_code": code, "env": env, **seen, "writes": log.entries}
    (dump_dir / f"rank{env['RANK']}.json").write_text(json.dumps(record, indent=1))
    return code


if __name__ == "__main__":
    code = main()
    from gsg_multimodal.launch import exit_without_finalising

    exit_without_finalising(code)  # this rank's record is written; see gsg_multimodal/launch.py
