"""Training speed: lightly's SimSiam against ours (SimSiam and GSG), same images, same backbone, same heads.

lightly is a benchmark-only dependency; install it beside our environment, sharing its torch:

    . .venv/bin/activate && python3 -m venv --system-site-packages /tmp/lightly-venv
    # --system-site-packages from a venv sees the base interpreter, not our venv: point a .pth at it
    echo "$PWD/.venv/lib/python3.11/site-packages" > /tmp/lightly-venv/lib/python3.11/site-packages/zz_gsg.pth
    /tmp/lightly-venv/bin/pip install lightly==1.6.0      # torch is found, not reinstalled
    OMP_NUM_THREADS=1 /tmp/lightly-venv/bin/python benchmarks/lightly_compare.py

Both sides train the same ``small_cnn`` (width 16) on the first ``--images`` Fashion-MNIST training
images, batch 256, SGD, a 3-layer 512-d projector and a 512-128-512 predictor (lightly's head shapes).
lightly's side is its documented recipe: ``SimSiamTransform`` (per-image torchvision transforms on PIL
images in the DataLoader; set here to 28 px, no blur, no grayscale, our normalisation, like our
``small_gray`` preset), ``SimSiamProjectionHead`` / ``SimSiamPredictionHead`` and
``NegativeCosineSimilarity``. Ours is the image domain's batched views and the ``simsiam`` / ``gsg``
objectives in the bare loop of ``speed.py`` and ``image_pipeline.py`` (``speedlib.bare_loop``).
Images per second of whole training steps (data included), medians of interleaved repetitions.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import torch
from speedlib.bare_loop import BareLoop
from speedlib.bench_domains import variant_overrides
from speedlib.timing import interleaved, median, rate, ratios

ROOT = Path(__file__).resolve().parents[1]


class LightlySimSiam:
    def __init__(self, images: Any, mean: float, std: float, batch: int, workers: int, seed: int) -> None:
        from lightly.loss import NegativeCosineSimilarity
        from lightly.models.modules.heads import SimSiamPredictionHead, SimSiamProjectionHead
        from lightly.transforms import SimSiamTransform
        from PIL import Image
        from torch.utils.data import DataLoader

        from gsg_domains.images.encoders import ImageEncoderConfig, build_encoder

        transform = SimSiamTransform(
            input_size=28, gaussian_blur=0.0, random_gray_scale=0.0, normalize={"mean": [mean], "std": [std]}
        )
        pil = [Image.fromarray(img[0]) for img in images]

        class Views(torch.utils.data.Dataset):
            def __len__(self) -> int:
                return len(pil)

            def __getitem__(self, i: int) -> list[torch.Tensor]:
                return transform(pil[i])

        torch.manual_seed(seed)
        self.backbone = build_encoder(ImageEncoderConfig(width=16), {"channels": 1, "height": 28, "width": 28})
        self.projection = SimSiamProjectionHead(self.backbone.out_dim, 512, 512)
        self.prediction = SimSiamPredictionHead(512, 128, 512)
        self.criterion = NegativeCosineSimilarity()
        params = [*self.backbone.parameters(), *self.projection.parameters(), *self.prediction.parameters()]
        self.optimizer = torch.optim.SGD(params, lr=0.06, momentum=0.9, weight_decay=5e-4)
        self.loader = DataLoader(
            Views(), batch_size=batch, shuffle=True, drop_last=True, num_workers=workers,
            persistent_workers=workers > 0, generator=torch.Generator().manual_seed(seed),
        )  # fmt: skip
        self.batches = self._batches()

    def _batches(self) -> Any:
        while True:
            yield from self.loader

    def step(self) -> None:
        x0, x1 = next(self.batches)
        z0, z1 = self.projection(self.backbone(x0)), self.projection(self.backbone(x1))
        p0, p1 = self.prediction(z0), self.prediction(z1)
        loss = 0.5 * (self.criterion(z0, p1) + self.criterion(z1, p0))  # lightly detaches z inside
        loss.backward()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=5120)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=0, help="lightly's DataLoader workers (its transforms run)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from gsg_multimodal.config import load_config
    from gsg_multimodal.provenance import machine_summary

    common = [f"data.max_train={args.images}", "data.max_test=10", "encoder.width=16", "model.projector_layers=3",
              "model.projector_hidden=512", "model.projector_dim=512", "model.predictor_hidden=128",
              "train.cpu=true"]  # fmt: skip
    config = str(ROOT / "configs" / "fmnist_gsg.yaml")
    ours = {
        label: BareLoop(load_config(config, [*common, *variant_overrides(variant)]), torch.device("cpu"))
        for label, variant in (("ours SimSiam (2 views)", "simsiam"), ("ours GSG (4 views)", "gsg"))
    }
    simsiam = ours["ours SimSiam (2 views)"]
    images = [simsiam.domain.collate([row])["pixels"][0].numpy() for row in simsiam.data.pretrain]
    mean, std = simsiam.data.info["mean"][0], simsiam.data.info["std"][0]
    lightly = LightlySimSiam(images, mean, std, simsiam.batch_size, args.workers, seed=0)
    jobs = {"lightly SimSiam (2 views)": lightly.step, **{k: b.step for k, b in ours.items()}}
    batch = simsiam.batch_size
    for fn in jobs.values():
        fn()  # warm-up
    rates = interleaved({k: lambda fn=fn: rate(fn, args.steps, batch) for k, fn in jobs.items()}, args.repeats)

    import lightly as lightly_pkg

    print(f"machine: {machine_summary()}; torch threads {torch.get_num_threads()}; lightly {lightly_pkg.__version__}")
    print(f"{args.images} Fashion-MNIST images, batch {batch}, small_cnn width 16, {args.steps} steps x {args.repeats}")
    print(f"{'':<28} {'images/s':>9}  range")
    for name, xs in rates.items():
        print(f"{name:<28} {median(xs):>9.0f}  [{min(xs):.0f}-{max(xs):.0f}]")
    ratio = ratios(rates["ours SimSiam (2 views)"], rates["lightly SimSiam (2 views)"])
    print(f"ours SimSiam / lightly SimSiam: {median(ratio):.2f}x (median of per-repetition ratios)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
