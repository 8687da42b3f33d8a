"""Optimizer step time on MiniLM's parameters: torch's plain loop, foreach and fused, SGD and AdamW.

    OMP_NUM_THREADS=1 python benchmarks/optimizer_speed.py [--threads 1] [--steps 10]

Why the trainer builds fused optimizers (``gsg_multimodal.model.build_optimizer``): on the CPU the
default AdamW loops over the tensors in Python. Random gradients; milliseconds per ``step()``, mean
over ``--steps`` steps after one warm-up step.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from transformers import AutoModel

    from gsg_domains.text.encoders import resolve_source

    params = list(AutoModel.from_pretrained(resolve_source("all-MiniLM-L6-v2")).parameters())
    for p in params:
        p.grad = torch.randn_like(p)
    print(f"{len(params)} tensors, {sum(p.numel() for p in params) / 1e6:.1f} M parameters, {args.threads} thread(s)")
    for impl, kw in (("loop", {"foreach": False}), ("foreach", {"foreach": True}), ("fused", {"fused": True})):
        for name, make in (
            ("SGD", lambda kw=kw: torch.optim.SGD(params, lr=1e-5, momentum=0.9, **kw)),
            ("AdamW", lambda kw=kw: torch.optim.AdamW(params, lr=1e-5, **kw)),
        ):
            opt = make()
            opt.step()  # allocates the state
            start = time.perf_counter()
            for _ in range(args.steps):
                opt.step()
            print(f"{name:<6} {impl:<8} {1000 * (time.perf_counter() - start) / args.steps:7.1f} ms per step")


if __name__ == "__main__":
    main()
