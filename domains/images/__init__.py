"""The image domain: Fashion-MNIST / MNIST offline or any image set through ``datasets``, SimSiam views, ResNets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from gsg_multimodal.domain import DataSplits, Domain, RawData
from gsg_multimodal.errors import UserError

from .augment import ImageViewsConfig, ViewParams, make_views, normalize, resolve, to_float
from .data import BUILTIN_DATASETS, ImageDataConfig, load_images
from .encoders import ImageEncoderConfig, build_encoder


class ImageDomain(Domain[ImageDataConfig, ImageViewsConfig, ImageEncoderConfig]):
    """Images ``[C, H, W]`` of one size, stored as uint8, augmented in float on the batch's device."""

    name = "images"
    data_config = ImageDataConfig
    views_config = ImageViewsConfig
    encoder_config = ImageEncoderConfig
    builtin = BUILTIN_DATASETS

    def __init__(self, data: ImageDataConfig, views: ImageViewsConfig, encoder: ImageEncoderConfig) -> None:
        super().__init__(data, views, encoder)
        self._params: ViewParams | None = None
        self._stats: dict[torch.device, tuple[torch.Tensor, torch.Tensor]] = {}

    def load_data(self) -> DataSplits:
        return load_images(self.data_cfg)

    def on_bind(self, info: dict[str, Any]) -> None:
        self._params = resolve(self.views_cfg, info["channels"], min(info["height"], info["width"]))

    @property
    def params(self) -> ViewParams:
        """The resolved augmentation (preset + overrides) for this data's channel count and size."""
        if self._params is None:
            raise RuntimeError("domain 'images' is not bound: call bind(info) (after load_data) first")
        return self._params

    def collate(self, rows: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        """Rows -> ``{"pixels": uint8 [N, C, H, W], "label": [N] if every row has one}``: one copy, no decoding."""
        shape = (self.info["channels"], self.info["height"], self.info["width"])
        size = int(np.prod(shape))
        buf = b"".join(r["pixels"] for r in rows)
        if len(buf) != size * len(rows):
            raise UserError(
                f"rows hold images of another size than {shape}; rebuild the data with this run's config "
                "(data.image_size, data.mode) or start a new run"
            )
        pixels = torch.frombuffer(bytearray(buf), dtype=torch.uint8).view(len(rows), *shape)
        batch = {"pixels": pixels}
        if all("label" in r for r in rows):
            batch["label"] = torch.tensor([r["label"] for r in rows], dtype=torch.int64)
        return batch

    def _mean_std(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        # Cached per device: the statistics are tiny, but a host->device copy per step is a sync on GPUs.
        if device not in self._stats:
            mean = torch.tensor(self.info["mean"], dtype=torch.float32, device=device)
            std = torch.tensor(self.info["std"], dtype=torch.float32, device=device)
            self._stats[device] = (mean, std)
        return self._stats[device]

    def make_views(self, batch: dict[str, torch.Tensor], n_views: int, generator: torch.Generator) -> list[Any]:
        pixels = batch["pixels"]
        return make_views(pixels, n_views, self.params, *self._mean_std(pixels.device), generator)

    def eval_input(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The whole image, standardised: no crop (images are stored at the training resolution)."""
        pixels = batch["pixels"]
        return normalize(to_float(pixels), *self._mean_std(pixels.device))

    def encoder_input(self) -> str | None:
        # Every backbone pools globally, so images of another size fit; the channel count must agree.
        return f"image[channels={int(self.info['channels'])}]"

    def build_encoder(self) -> torch.nn.Module:
        return build_encoder(self.encoder_cfg, self.info)

    def raw_rows(self, raw: Any, **options: Any) -> list[dict[str, Any]]:
        """uint8 (or [0, 1] float) ``[N, H, W(, C)]``, or a list of PIL images, arrays or image paths -> rows."""
        from .raw import image_rows

        if options:
            raise UserError(f"unknown option(s) {sorted(options)} for images")
        return image_rows(raw, self.data_cfg, self.info)

    def read_raw(self, path: Path) -> RawData:
        from .raw import read_images

        return read_images(path)

    def save_views_grid(self, batch: dict[str, Any], views: list[Any], path: Path) -> None:
        from .views_figure import save_grid

        mean, std = self._mean_std(torch.device("cpu"))
        undo = [(v.cpu() * std.reshape(1, -1, 1, 1) + mean.reshape(1, -1, 1, 1)) for v in views]
        p = self.params
        title = (
            f"{self.info['dataset']}: preset {p.preset}, crop {p.crop_scale[0]:g}-{p.crop_scale[1]:g}, "
            f"flip {p.flip_p:g}, jitter {p.jitter_p:g}, gray {p.grayscale_p:g}, blur {p.blur_p:g}"
        )
        save_grid(to_float(batch["pixels"].cpu()), undo, path, title)
