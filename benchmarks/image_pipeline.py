"""Images per second of the image domain's data pipeline alone against a full training step.

    python benchmarks/image_pipeline.py                                  # Fashion-MNIST GSG config, CPU
    python benchmarks/image_pipeline.py configs/cifar10_resnet18_gpu.yaml data.path=/data/cifar10
    python benchmarks/image_pipeline.py --threads 1 --steps 20 train.batch_size=128 encoder.width=8

Rows (images per second, medians over ``--repeats`` interleaved repetitions, range in brackets):

- ``loader``: DataLoader + ``collate`` (stored bytes -> one uint8 tensor) + the copy to the device;
- ``loader + views``: that plus ``make_views`` for the objective's views (2 for SimSiam/BYOL, 4 for GSG),
  batched on the device;
- ``train step``: that plus the siamese forward, objective, backward and optimizer step, for the
  encoder as configured and, with ``--channels-last-both``, with ``encoder.channels_last`` flipped.

The pipeline does not starve training when ``loader + views`` is several times faster than ``train step``.
The loop is bare PyTorch around the core's ``SiameseNetwork`` and ``SiameseLoss`` (no
Accelerate, no checkpoints), so the numbers are the pipeline's and the model's, not the trainer's.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Bench:
    def __init__(self, cfg: Any, device: torch.device) -> None:
        from torch.utils.data import DataLoader

        from gsg_multimodal.model import SiameseNetwork, build_optimizer, parameter_groups
        from gsg_multimodal.losses import SiameseLoss
        from gsg_multimodal.trainer import build_domain

        torch.manual_seed(cfg.seed)
        self.device, self.batch_size = device, cfg.train.batch_size
        self.domain = build_domain(cfg)
        self.data = self.domain.load_data()
        self.model = SiameseNetwork(self.domain.build_encoder(self.data.info), cfg.model).to(device)
        self.optimizer = build_optimizer(parameter_groups(self.model, cfg.model.fixed_predictor_lr), cfg.optim, device)
        self.objective = SiameseLoss(
            gsg=cfg.objective.gsg, gsg_views=cfg.objective.gsg_views, derangement=cfg.objective.pairing == "derangement"
        )
        self.loader = DataLoader(
            self.data.pretrain,
            batch_size=cfg.train.batch_size,
            shuffle=True,
            drop_last=True,
            collate_fn=self.domain.collate,
            num_workers=cfg.train.num_workers,
            pin_memory=device.type == "cuda",
            persistent_workers=cfg.train.num_workers > 0,
            generator=torch.Generator().manual_seed(cfg.seed),
        )
        self.aug_rng = torch.Generator(device=device).manual_seed(cfg.seed + 1)
        self.pair_rng = torch.Generator().manual_seed(cfg.seed + 2)
        self.batches = self._batches()
        self.autocast = cfg.train.mixed_precision if device.type == "cuda" else "no"

    def _batches(self) -> Iterator[dict[str, torch.Tensor]]:
        while True:
            for batch in self.loader:
                yield {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}

    def load(self) -> None:
        next(self.batches)

    def views(self) -> list[torch.Tensor]:
        return self.domain.make_views(next(self.batches), self.objective.n_views, self.aug_rng)

    def step(self) -> None:
        views = self.views()
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.autocast)
        with torch.autocast(self.device.type, dtype=dtype, enabled=dtype is not None):
            z, p = self.model(views)
            out = self.objective(p, z, self.pair_rng)
        out.loss.backward()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)

    def rate(self, fn: Callable[[], Any], n: int) -> float:
        sync(self.device)
        start = time.perf_counter()
        for _ in range(n):
            fn()
        sync(self.device)
        return n * self.batch_size / (time.perf_counter() - start)


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

    from gsg_multimodal.cli import machine_summary
    from gsg_multimodal.config import load_config

    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = load_config(args.config, args.overrides)
    device = torch.device("cuda" if torch.cuda.is_available() and not cfg.train.cpu else "cpu")
    benches = {"": Bench(cfg, device)}
    if args.channels_last_both:
        flipped = load_config(args.config, [*args.overrides, f"encoder.channels_last={not cfg.encoder.channels_last}"])
        benches["flipped"] = Bench(flipped, device)
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
    rates: dict[str, list[float]] = {name: [] for name in jobs}
    names = list(jobs)
    for r in range(args.repeats):  # interleaved, order reversed every other repetition: drift hits all alike
        for name in names if r % 2 == 0 else names[::-1]:
            rates[name].append(main_bench.rate(jobs[name], args.steps))

    print(f"config: {args.config} {' '.join(args.overrides)}")
    print(f"machine: {machine_summary()}; torch threads {torch.get_num_threads()}; device {device}")
    print(f"batch {cfg.train.batch_size}, encoder {cfg.encoder.name}, {args.steps} calls x {args.repeats} repeats")
    print(f"{'':<36} {'images/s':>10}  range")
    for name, xs in rates.items():
        print(f"{name:<36} {statistics.median(xs):>10.0f}  [{min(xs):.0f}-{max(xs):.0f}]")
    pipe = statistics.median(rates[names[1]])
    step = statistics.median(rates[names[2]])
    print(f"pipeline / step ratio: {pipe / step:.1f}x (above 1: the pipeline is not what limits training)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
