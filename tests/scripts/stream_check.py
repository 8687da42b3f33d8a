"""Run under ``torchrun --nproc_per_node 2``: a streaming run, recording which shard files each rank reads.

Writes ``<output_dir>/stream_check_<rank>.json``: the shards the rank opened while training (loading
opens every shard once, to check its schema; that is not counted), the examples it trained on as
``(shard, row, window start)`` references, its steps and the largest weight difference across ranks
after each step.
"""

from __future__ import annotations

import json
import sys

import torch

from gsg_multimodal import streaming
from gsg_multimodal.config import load_config
from gsg_multimodal.launch import exit_without_finalising
from gsg_multimodal.trainer import Trainer


def main() -> None:
    cfg = load_config(sys.argv[1], sys.argv[2:])
    trainer = Trainer(cfg)
    acc = trainer.accelerator
    opened: list[str] = []
    real_open = streaming.StreamSource.open

    def counting_open(self: streaming.StreamSource, index: int) -> streaming.Shard:
        opened.append(self.shards[index].name)
        return real_open(self, index)

    streaming.StreamSource.open = counting_open  # from here on: only what training reads
    refs: list[list[int]] = []
    real_next = streaming.ExampleStream.next

    def recording_next(self: streaming.ExampleStream) -> object:
        item = real_next(self)
        if item is not None:
            refs.append(list(item[0]))
        return item

    streaming.ExampleStream.next = recording_next
    diffs: list[float] = []

    def weights_agree(t: Trainer) -> None:
        params = torch.cat([p.detach().flatten() for p in acc.unwrap_model(t.model).parameters()])
        everyone = acc.gather(params.unsqueeze(0))
        diffs.append(float((everyone - everyone[0]).abs().max()))

    trainer.step_callbacks.append(weights_agree)
    summary = trainer.train()
    result = {
        "rank": acc.process_index,
        "num_processes": acc.num_processes,
        "steps": summary["steps"],
        "opened": sorted(set(opened)),
        "refs": refs,
        "max_param_diff_per_step": diffs,
    }
    (trainer.run_dir / f"stream_check_{acc.process_index}.json").write_text(json.dumps(result))
    acc.wait_for_everyone()
    trainer.close()


if __name__ == "__main__":
    main()
    exit_without_finalising(0)  # both ranks have written and left the group; see gsg_multimodal/launch.py
