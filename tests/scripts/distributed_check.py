"""Run under ``torchrun --nproc_per_node 2``: train a few steps, then check the ranks really cooperate.

Writes ``<output_dir>/distributed_check.json`` from rank 0 with what every rank saw.
"""

from __future__ import annotations

import json
import sys

import torch

from gsg_multimodal.config import load_config
from gsg_multimodal.trainer import Trainer


def main() -> None:
    cfg = load_config(sys.argv[1], sys.argv[2:])
    trainer = Trainer(cfg)
    summary = trainer.train()
    acc = trainer.accelerator
    params = torch.cat([p.detach().flatten() for p in acc.unwrap_model(trainer.model).parameters()])
    all_params = acc.gather(params.unsqueeze(0))
    # The next augmentation draw of each rank: must differ across ranks.
    draw = torch.rand(4, generator=trainer.aug_rng).unsqueeze(0)
    all_draws = acc.gather(draw)
    if acc.is_main_process:
        result = {
            "distributed_type": str(acc.distributed_type),
            "num_processes": acc.num_processes,
            "steps": summary["steps"],
            "max_param_diff_across_ranks": float((all_params - all_params[0]).abs().max()),
            "param_norm": float(all_params[0].norm()),
            "aug_draws_differ": bool(not torch.equal(all_draws[0], all_draws[1])),
        }
        (trainer.run_dir / "distributed_check.json").write_text(json.dumps(result))
    trainer.close()


if __name__ == "__main__":
    main()
