"""Time-series encoders: shapes, gradients, channel checks, lazy tsai import."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from gsg_domains.timeseries.encoders import TimeSeriesEncoderConfig, build_encoder
from gsg_multimodal.errors import UserError

# The tsai encoders take seconds the first time: importing any tsai module costs about 8 s.
NAMES = ["dilated_cnn", "inception_time", "resnet"]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("channels", [1, 6])
@pytest.mark.parametrize("length", [24, 512])
def test_features_are_n_by_out_dim(name: str, channels: int, length: int) -> None:
    encoder = build_encoder(TimeSeriesEncoderConfig(name=name), {"channels": channels})
    out = encoder(torch.randn(3, channels, length))
    assert isinstance(encoder.out_dim, int) and out.shape == (3, encoder.out_dim)
    assert torch.isfinite(out).all()


def test_out_dim_follows_the_config() -> None:
    assert build_encoder(TimeSeriesEncoderConfig(out_dim=48), {"channels": 2}).out_dim == 48
    assert build_encoder(TimeSeriesEncoderConfig(name="inception_time", nf=8), {"channels": 2}).out_dim == 32
    assert build_encoder(TimeSeriesEncoderConfig(name="resnet", nf=8), {"channels": 2}).out_dim == 16
    both = build_encoder(TimeSeriesEncoderConfig(out_dim=48, pooling="mean+max"), {"channels": 2})
    assert both.out_dim == 96 and both(torch.randn(2, 2, 30)).shape == (2, 96)


@pytest.mark.parametrize("name", NAMES)
def test_gradients_reach_every_parameter(name: str) -> None:
    encoder = build_encoder(TimeSeriesEncoderConfig(name=name, nf=8), {"channels": 3})
    encoder(torch.randn(4, 3, 40)).square().sum().backward()
    missing = [n for n, p in encoder.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing


@pytest.mark.parametrize("name", NAMES)
def test_wrong_channel_count_is_a_one_line_user_error(name: str) -> None:
    encoder = build_encoder(TimeSeriesEncoderConfig(name=name, nf=8), {"channels": 6})
    with pytest.raises(UserError, match="input has 3 channels but the encoder was built for 6") as info:
        encoder(torch.randn(2, 3, 24))
    assert "\n" not in str(info.value)


def test_dropout_is_off_in_eval_mode() -> None:
    encoder = build_encoder(TimeSeriesEncoderConfig(dropout=0.5), {"channels": 1}).eval()
    x = torch.randn(2, 1, 24)
    assert torch.equal(encoder(x), encoder(x))


@pytest.mark.parametrize("key, value", [("depth", 0), ("hidden", 0), ("nf", 0), ("dropout", 1.0)])
def test_bad_config_values_name_the_key(key: str, value: object) -> None:
    with pytest.raises(UserError, match=f"encoder.{key}"):
        TimeSeriesEncoderConfig(**{key: value})


def test_encoder_norm_is_refused_where_it_would_be_ignored() -> None:
    with pytest.raises(UserError, match="encoder.norm='batch' applies to dilated_cnn only"):
        TimeSeriesEncoderConfig(name="resnet", norm="batch")


def test_importing_the_encoders_does_not_import_tsai() -> None:
    code = "import sys, gsg_domains.timeseries.encoders; sys.exit(any(m.startswith('tsai') for m in sys.modules))"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
