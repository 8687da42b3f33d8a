"""Image encoders: the small-image stem keeps CIFAR-sized feature maps; channel checks; channels_last."""

from __future__ import annotations

import pytest
import torch

from gsg_domains.images.encoders import ImageEncoderConfig, build_encoder
from gsg_multimodal.errors import UserError


def info(channels: int, side: int) -> dict:
    return {"channels": channels, "height": side, "width": side}


def test_resnet18_small_stem_keeps_full_resolution_into_the_first_stage() -> None:
    enc = build_encoder(ImageEncoderConfig(name="resnet18", channels_last=False), info(3, 32)).eval()
    body = enc.body
    assert body.conv1.kernel_size == (3, 3) and body.conv1.stride == (1, 1)
    assert isinstance(body.maxpool, torch.nn.Identity)
    x = torch.randn(2, 3, 32, 32)
    stem = body.relu(body.bn1(body.conv1(x)))
    assert body.layer1(body.maxpool(stem)).shape == (2, 64, 32, 32)  # the ImageNet stem would give 8x8
    assert body.layer4(body.layer3(body.layer2(body.layer1(stem)))).shape == (2, 512, 4, 4)
    assert enc(x).shape == (2, 512) and enc.out_dim == 512


def test_imagenet_stem_for_large_images_and_grayscale_resnet50() -> None:
    big = build_encoder(ImageEncoderConfig(name="resnet18", channels_last=False), info(3, 96))
    assert big.body.conv1.kernel_size == (7, 7) and not isinstance(big.body.maxpool, torch.nn.Identity)
    r50 = build_encoder(ImageEncoderConfig(name="resnet50", stem="small"), info(1, 28)).eval()
    assert r50.body.conv1.in_channels == 1
    assert r50(torch.randn(2, 1, 28, 28)).shape == (2, 2048) and r50.out_dim == 2048


def test_small_cnn_shape_and_channels_last_gives_the_same_features() -> None:
    torch.manual_seed(0)
    a = build_encoder(ImageEncoderConfig(width=8, channels_last=False), info(1, 28)).eval()
    b = build_encoder(ImageEncoderConfig(width=8, channels_last=True), info(1, 28)).eval()
    b.load_state_dict(a.state_dict())
    x = torch.randn(3, 1, 28, 28)
    assert a(x).shape == (3, 64) and a.out_dim == 64
    torch.testing.assert_close(a(x), b(x), atol=1e-5, rtol=1e-4)
    assert b.body[0].weight.is_contiguous(memory_format=torch.channels_last)


def test_wrong_channel_count_is_refused_with_the_fix() -> None:
    enc = build_encoder(ImageEncoderConfig(width=4), info(1, 28))
    with pytest.raises(UserError, match="built for 1-channel images.*data.mode=L"):
        enc(torch.randn(2, 3, 28, 28))
    with pytest.raises(UserError, match="shape"):
        enc(torch.randn(2, 28, 28))
    with pytest.raises(UserError, match="encoder.width"):
        ImageEncoderConfig(width=0)
