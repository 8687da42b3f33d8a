"""Audio front end and views: shapes, reproducibility, per-sample randomness, short / silent clips."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gsg_domains.audio.augment import (
    AudioViewsConfig,
    Views,
    collate_audio,
    frames_per_view,
    log_mixup_exp,
    random_resized_crop,
    spec_masks,
)
from gsg_domains.audio.data import AudioDataConfig
from gsg_domains.audio.frontend import LogMel
from gsg_multimodal.errors import UserError

DATA = AudioDataConfig(sample_rate=8000, n_mels=32, win_ms=32, hop_ms=10, f_max=3900)
INFO = {"sample_rate": 8000, "n_mels": 32, "logmel_mean": -5.0, "logmel_std": 4.0, "wave_std": 0.1}
OFF = dict(shift_seconds=0.0, gain_db=0.0, noise_p=0.0, mixup_p=0.0, rrc_p=0.0, freq_mask_p=0.0, time_mask_p=0.0)


def clips(lengths: list[int], seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.normal(0, 0.1, n).astype(np.float32) for n in lengths]


def batch_of(xs: list[np.ndarray]) -> dict[str, torch.Tensor]:
    return collate_audio([{"audio": x, "length": len(x), "label": i % 2} for i, x in enumerate(xs)])


def views(waveform: bool = False, **cfg: object) -> Views:
    return Views(AudioViewsConfig(crop_seconds=0.25, **cfg), DATA, INFO, waveform=waveform)


def test_views_have_one_shape_and_are_reproducible() -> None:
    v = views()
    batch = batch_of(clips([4000, 1000, 200, 2000]))
    a = v.make_views(batch, 4, torch.Generator().manual_seed(3))
    b = v.make_views(batch, 4, torch.Generator().manual_seed(3))
    width = frames_per_view(v.cfg, DATA)
    assert width == 26  # 0.25 s at 10 ms hops, centred frames
    for x, y in zip(a, b, strict=True):
        assert x.shape == (4, 1, 32, width) and torch.isfinite(x).all()
        assert torch.equal(x, y)
    assert not torch.equal(a[0], a[1])  # views differ from each other


def test_every_sample_draws_its_own_parameters() -> None:
    same = clips([3000])[0]
    batch = batch_of([same] * 6)
    for kind in (False, True):
        out = views(waveform=kind, mixup_p=0.0).make_views(batch, 1, torch.Generator().manual_seed(0))[0]
        flat = out.flatten(1)
        assert len({tuple(np.round(r.numpy(), 4)) for r in flat}) == 6  # identical clips, six different views


def test_with_every_augmentation_off_a_view_is_the_eval_input() -> None:
    v = views(**OFF)
    batch = batch_of(clips([2000, 900, 2500]))  # 0.25 s = 2000 samples: exact, shorter, longer
    (view,) = v.make_views(batch, 1, torch.Generator().manual_seed(0))
    assert torch.allclose(view, v.eval_input(batch), atol=1e-5)


def test_short_and_silent_clips_are_padded_with_silence_and_stay_finite() -> None:
    v = views()
    batch = batch_of([np.zeros(3000, np.float32), clips([100])[0]])
    silence = (np.log(torch.finfo(torch.float32).eps) - INFO["logmel_mean"]) / INFO["logmel_std"]
    ev = v.eval_input(batch)
    assert torch.allclose(ev[0], torch.full_like(ev[0], silence), atol=1e-4)  # a silent clip is kept, as silence
    assert torch.allclose(ev[1, :, :, 3:], torch.full_like(ev[1, :, :, 3:], silence), atol=1e-4)  # after its end
    for x in v.make_views(batch, 4, torch.Generator().manual_seed(0)):
        assert torch.isfinite(x).all()


def test_eval_input_of_a_clip_does_not_depend_on_its_batch() -> None:
    v = views()
    short, long = clips([700, 5000])
    alone = v.eval_input(batch_of([short]))
    together = v.eval_input(batch_of([short, long]))[:1]
    assert torch.allclose(alone, together, atol=1e-5)


def test_logmel_front_end_matches_torchaudio() -> None:
    import torchaudio

    x = torch.from_numpy(clips([4000])[0])[None]
    ref = torchaudio.transforms.MelSpectrogram(
        sample_rate=8000, n_fft=256, win_length=256, hop_length=80, f_min=60.0, f_max=3900, n_mels=32
    )(torch.nn.functional.pad(x, (0, 128)))[..., :51]
    assert torch.allclose(LogMel(DATA)(x), (ref + torch.finfo(torch.float32).eps).log(), atol=1e-5)


def test_log_mixup_exp_and_crops_and_masks() -> None:
    g = torch.Generator().manual_seed(0)
    m = torch.randn(5, 1, 32, 26)
    cfg = AudioViewsConfig(mixup_ratio=0.0)
    assert torch.allclose(log_mixup_exp(m, cfg, g), m, atol=1e-6)  # weight 0: the clip itself
    mixed = log_mixup_exp(m, AudioViewsConfig(mixup_ratio=0.5), g)
    lo, hi = torch.minimum(m, m.roll(1, 0)).amin(0), torch.maximum(m, m.roll(1, 0)).amax(0)
    assert (mixed >= lo.min() - 1e-5).all() and (mixed <= hi.max() + 1e-5).all()  # a mix stays within the range
    assert torch.equal(random_resized_crop(m, AudioViewsConfig(rrc_p=0.0), g), m)
    masked = spec_masks(m, AudioViewsConfig(freq_mask_p=1.0, time_mask_p=1.0, freq_mask_bins=4, time_mask_frames=3), g)
    zero_rows = (masked == 0).all(dim=3).sum(dim=2).squeeze(1)  # whole frequency bands set to the mean
    zero_cols = (masked == 0).all(dim=2).sum(dim=2).squeeze(1)
    assert ((zero_rows >= 1) & (zero_rows <= 4)).all() and ((zero_cols >= 1) & (zero_cols <= 3)).all()


def test_waveform_views_for_the_series_encoders() -> None:
    v = views(waveform=True)
    batch = batch_of(clips([3000, 500]))
    out = v.make_views(batch, 2, torch.Generator().manual_seed(0))
    assert all(x.shape == (2, 1, 2000) for x in out)
    ev = v.eval_input(batch)
    assert ev.shape == (2, 1, 2000) and torch.equal(ev[1, 0, 500:], torch.zeros(1500))


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("crop_seconds", 0.0),
        ("noise_p", 1.5),
        ("mixup_ratio", 1.0),
        ("rrc_scale", (0.5, 0.2)),
        ("rrc_canvas", (0.5, 1)),
    ],
)
def test_bad_view_settings(key: str, value: object) -> None:
    with pytest.raises(UserError, match=f"views.{key}"):
        AudioViewsConfig(**{key: value})
