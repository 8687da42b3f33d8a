"""Run under ``torchrun --nproc_per_node 2``: train a few steps, checking that the ranks really cooperate.

Writes ``<output_dir>/distributed_check.json`` from rank 0 with what every rank saw.
"""

from __future__ import annotations

import json
import sys

import torch

from gsg_multimodal.config import load_config
from gsg_multimodal.features import encode_split
from gsg_multimodal.launch import exit_without_finalising
from gsg_multimodal.trainer import Trainer


def main() -> None:
    cfg = load_config(sys.argv[1], sys.argv[2:])
    trainer = Trainer(cfg)
    acc = trainer.accelerator
    diffs: list[float] = []

    def weights_agree(t: Trainer) -> None:  # after every optimizer step
        params = torch.cat([p.detach().flatten() for p in acc.unwrap_model(t.model).parameters()])
        everyone = acc.gather(params.unsqueeze(0))
        diffs.append(float((everyone - everyone[0]).abs().max()))

    trainer.step_callbacks.append(weights_agree)
    summary = trainer.train()
    # The next augmentation draw of each rank: must differ across ranks.
    all_draws = acc.gather(torch.rand(4, generator=trainer.aug_rng).unsqueeze(0))
    # Features of the 40-row test split in batches of 16 over 2 ranks: the last batch is uneven and
    # padded with duplicates, which gather_for_metrics must drop.
    encoder = acc.unwrap_model(trainer.model).encoder
    feats, labels = encode_split(encoder, trainer.data.test, trainer.domain, acc, 16)
    if acc.is_main_process:
        full = trainer.domain.collate([trainer.data.test[i] for i in range(len(trainer.data.test))])
        with torch.no_grad():
            reference = encoder.eval()(trainer.domain.eval_input(full))
        result = {
            "distributed_type": str(acc.distributed_type),
            "num_processes": acc.num_processes,
            "steps": summary["steps"],
            "max_param_diff_per_step": diffs,
            "aug_draws_differ": bool(not torch.equal(all_draws[0], all_draws[1])),
            "gathered_rows": int(feats.shape[0]),
            "dataset_rows": len(trainer.data.test),
            "labels_match": bool(torch.equal(labels, full["label"])),
            "features_max_diff": float((feats - reference).abs().max()),
        }
        (trainer.run_dir / "distributed_check.json").write_text(json.dumps(result))
    # Leave together: a rank that tears down its process group while the other still works (rank 0's
    # reference encoding above) was seen to abort at exit (gloo: "terminate called without an active exception").
    acc.wait_for_everyone()
    trainer.close()


if __name__ == "__main__":
    main()
    # Everything this check writes is written and both ranks have left the process group: end without
    # interpreter finalisation, where gloo's teardown can abort a rank whose work is done.
    exit_without_finalising(0)
