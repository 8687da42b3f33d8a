"""Audio encoders (log-mel CNN, waveform series encoders) and the MFCC floor's features."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gsg_domains.audio.data import AudioDataConfig, _to_dataset
from gsg_domains.audio.encoders import AudioEncoderConfig, LogMelCNN, build_encoder
from gsg_domains.audio.floor import N_MFCC, mfcc_statistics
from gsg_domains.timeseries.encoders import TimeSeriesEncoder
from gsg_multimodal.errors import UserError


def test_logmel_cnn_pools_any_length_to_out_dim() -> None:
    enc = build_encoder(AudioEncoderConfig(channels=8, out_dim=24), {"n_mels": 32})
    assert isinstance(enc, LogMelCNN) and enc.out_dim == 24
    enc.eval()
    for frames in (8, 26, 101):
        assert enc(torch.randn(3, 1, 32, frames)).shape == (3, 24)
    x = torch.randn(2, 1, 32, 40)
    frames = enc.frame_features(x)
    assert torch.allclose(enc(x), frames.mean(1) + frames.amax(1))  # BYOL-A: mean + max over time
    enc_mean = build_encoder(AudioEncoderConfig(channels=8, out_dim=24, pooling="mean"), {"n_mels": 32}).eval()
    enc_mean.load_state_dict(enc.state_dict())
    assert torch.allclose(enc_mean(x), frames.mean(1))


def test_logmel_cnn_refuses_wrong_inputs() -> None:
    enc = build_encoder(AudioEncoderConfig(channels=8, out_dim=16), {"n_mels": 32})
    with pytest.raises(UserError, match="data.n_mels"):
        enc(torch.randn(2, 1, 64, 30))
    with pytest.raises(UserError, match="crop_seconds"):
        enc(torch.randn(2, 1, 32, 4))
    with pytest.raises(UserError, match="at least 16 mel bands"):
        build_encoder(AudioEncoderConfig(blocks=4), {"n_mels": 8})
    with pytest.raises(UserError, match="encoder.channels"):
        AudioEncoderConfig(channels=0)


def test_waveform_option_reuses_the_time_series_encoders() -> None:
    cfg = AudioEncoderConfig(name="dilated_cnn", hidden=8, depth=2, out_dim=16, dropout=0.0)
    enc = build_encoder(cfg, {"n_mels": 32})
    assert isinstance(enc, TimeSeriesEncoder) and enc.in_channels == 1
    assert enc(torch.randn(2, 1, 800)).shape == (2, enc.out_dim)


def test_mfcc_statistics_of_short_and_silent_clips() -> None:
    cfg = AudioDataConfig(sample_rate=8000, n_mels=32, win_ms=32, f_max=3900)
    rng = np.random.default_rng(0)
    clips = [rng.normal(0, 0.1, 4000).astype(np.float32), np.zeros(2000, np.float32), rng.normal(0, 0.1, 50)]
    clips[2] = clips[2].astype(np.float32)
    feats = mfcc_statistics(_to_dataset(clips, [0, 1, 0]), cfg, max_samples=2000)
    assert feats.shape == (3, 4 * N_MFCC) and np.isfinite(feats).all()
    assert np.allclose(feats[1, 2 * N_MFCC :], 0, atol=1e-4)  # silence: constant MFCCs, zero spread
    # Only the first max_samples count: the first clip's statistics equal those of its first 2000 samples.
    cut = mfcc_statistics(_to_dataset([clips[0][:2000]], [0]), cfg, max_samples=2000)
    assert np.allclose(feats[0], cut[0], atol=1e-4)
