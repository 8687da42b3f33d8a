"""Images per second of the image domain's data pipeline alone against a full training step.

    python benchmarks/image_pipeline.py                                  # Fashion-MNIST GSG config, CPU
    python benchmarks/image_pipeline.py configs/cifar10_resnet18_gpu.yaml data.path=/data/cifar10
    python benchmarks/image_pipeline.py --threads 1 --steps 20 train.batch_size=128 encoder.width=8

Rows (images per second, medians over ``--repeats`` interleaved repetitions, range in brackets):

- ``loader``: DataLoader + ``collate`` (stored bytes -> one uint8 tensor) + the copy to the device;
- ``loader + views``: that plus ``make_views`` for the objective's views (2 for SimSiam/BYOL, 4 for GSG),
  batched on the device;
- ``train step``: that plus the objective's forward and loss, backward and optimizer step, for the
  encoder as configured and, with ``--channels-last-both``, with ``encoder.channels_last`` flipped.

The pipeline does not starve training when ``loader + views`` is several times faster than ``train step``.
The loop is ``speed.py``'s bare loop (``speedlib.bare_loop``: the trainer's step on the objective API,
without Accelerate or checkpoints), so the numbers are the pipeline's and the model's, not the trainer's.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from speedlib.bare_loop import BareLoop, run_device
from speedlib.timing import interleaved, median

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", nargs="?", default=str(ROOT / "configs" / "fmnist_gsg.yaml"))
    parser.add_argument("overrides", nargs="*", help="key=value config overrides")
    parser.add_argument("--steps", type=int, default=10, help="timed calls per repetition")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--channels-last-both", action="store_true", help="also time the step with it flipped")
    args = parser.parse_args()

    from gsg_multimodal.config import load_config
    from gsg_multimodal.provenance import machine_summary

    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = load_config(args.config, args.overrides)
    device = run_device(cfg)
    benches = {"": BareLoop(cfg, device)}
    if args.channels_last_both:
        flipped = load_config(args.config, [*args.overrides, f"encoder.channels_last={not cfg.encoder.channels_last}"])
        benches["flipped"] = BareLoop(flipped, device)
    main_bench = benches[""]
    cl = cfg.encoder.channels_last
    jobs: dict[str, Callable[[], Any]] = {
        "loader": main_bench.load,
        f"loader + views ({main_bench.objective.n_views} views)": main_bench.views,
        f"train step (channels_last={cl})": main_bench.step,
    }
    if "flipped" in benches:
        jobs[f"train step (channels_last={not cl})"] = benches["flipped"].step
    for fn in jobs.values():  # warm-up: allocator, lazy init, first DataLoader workers
        main_bench.rate(fn, args.warmup)
    # Interleaved, the order reversed every other repetition: drift hits all alike.
    timed = {name: lambda fn=fn: main_bench.rate(fn, args.steps) for name, fn in jobs.items()}
    rates = interleaved(timed, args.repeats)
    names = list(jobs)

    print(f"config: {args.config} {' '.join(args.overrides)}")
    print(f"machine: {machine_summary()}; torch threads {torch.get_num_threads()}; device {device}")
    print(f"batch {cfg.train.batch_size}, encoder {cfg.encoder.name}, {args.steps} calls x {args.repeats} repeats")
    print(f"{'':<36} {'images/s':>10}  range")
    for name, xs in rates.items():
        print(f"{name:<36} {median(xs):>10.0f}  [{min(xs):.0f}-{max(xs):.0f}]")
    pipe = median(rates[names[1]])
    step = median(rates[names[2]])
    print(f"pipeline / step ratio: {pipe / step:.1f}x (above 1: the pipeline is not what limits training)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
