"""Image encoders ``[N, C, H, W] -> [N, D]``: torchvision ResNets (with the small-image stem) and a light CNN.

The small-image stem is the one SimSiam and the GSG paper use for CIFAR: the first convolution
becomes 3x3 with stride 1 and the max-pool is dropped, so a 32 px image keeps 32x32 feature maps
into the first stage instead of 8x8. ``stem: auto`` takes it for images up to 64 px.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn

from gsg_multimodal.errors import UserError

SMALL_IMAGE_MAX = 64  # stem: auto uses the small-image stem up to this side length


@dataclass
class ImageEncoderConfig:
    """The ``encoder`` config section."""

    name: Literal["small_cnn", "resnet18", "resnet50"] = "small_cnn"
    stem: Literal["auto", "small", "imagenet"] = "auto"  # ResNets: small = 3x3 stride-1 conv, no max-pool
    width: int = 32  # small_cnn: channels of the stem, doubled by each of the three stages (8 x width features)
    zero_init_residual: bool = True  # ResNets: last BN of each block starts at 0 (each block starts as identity)
    channels_last: bool = True  # NHWC memory format: small_cnn forward+backward 1.3x faster on our 2-core CPU

    def __post_init__(self) -> None:
        if self.width < 1:
            raise UserError(f"encoder.width={self.width} must be at least 1; fix it in the config")


def _conv_bn(c_in: int, c_out: int, stride: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]


def small_cnn(channels: int, width: int) -> tuple[nn.Module, int]:
    """A VGG-like CNN, cheap enough to pretrain on a CPU: a stem, then three stages of two 3x3 convolutions,
    each halving the resolution and doubling the width (28 px -> 14 -> 7 -> 4), then global average pooling."""
    layers = _conv_bn(channels, width, 1)
    c = width
    for _ in range(3):
        layers += _conv_bn(c, 2 * c, 2) + _conv_bn(2 * c, 2 * c, 1)
        c *= 2
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    return nn.Sequential(*layers), c


def resnet(name: str, channels: int, small_stem: bool, zero_init_residual: bool) -> tuple[nn.Module, int]:
    """torchvision's ResNet-18/50 without its classifier (random weights: nothing is downloaded)."""
    import torchvision

    net = getattr(torchvision.models, name)(weights=None, zero_init_residual=zero_init_residual)
    if small_stem or channels != 3:
        net.conv1 = nn.Conv2d(channels, 64, *((3, 1, 1) if small_stem else (7, 2, 3)), bias=False)
        nn.init.kaiming_normal_(net.conv1.weight, mode="fan_out", nonlinearity="relu")  # torchvision's own init
    if small_stem:
        net.maxpool = nn.Identity()
    width = net.fc.in_features
    net.fc = nn.Identity()  # the projector and the probes bring their own heads
    return net, width


class ImageEncoder(nn.Module):
    """A backbone plus the input check: the channel count it was built for, 4-D input."""

    def __init__(self, body: nn.Module, channels: int, out_dim: int, channels_last: bool) -> None:
        super().__init__()
        self.body, self.in_channels, self.out_dim = body, channels, out_dim
        self.channels_last = channels_last
        if channels_last:
            self.body.to(memory_format=torch.channels_last)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            got = f"{x.shape[1]} channels" if x.ndim == 4 else f"shape {tuple(x.shape)}"
            raise UserError(
                f"input has {got} but the encoder was built for {self.in_channels}-channel images [N, C, H, W]; "
                f"set data.mode={'L' if self.in_channels == 1 else 'RGB'} or pretrain a new encoder on this data"
            )
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.body(x)


def build_encoder(cfg: ImageEncoderConfig, info: dict[str, Any]) -> ImageEncoder:
    """The configured encoder for images of ``info["channels"]`` channels and ``info["height"]`` px."""
    channels, side = int(info["channels"]), min(int(info["height"]), int(info["width"]))
    if cfg.name == "small_cnn":
        body, width = small_cnn(channels, cfg.width)
    else:
        small = cfg.stem == "small" or (cfg.stem == "auto" and side <= SMALL_IMAGE_MAX)
        body, width = resnet(cfg.name, channels, small, cfg.zero_init_residual)
    return ImageEncoder(body, channels, width, cfg.channels_last)
