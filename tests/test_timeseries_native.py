"""Issue 15: native-resolution views, exact masked encoding of padded batches, aligned sequence views."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gsg_domains.timeseries import SeriesBatch, TimeSeriesDomain
from gsg_domains.timeseries.augment import (
    TimeSeriesViewsConfig,
    collate_series,
    eval_view,
    make_sequence_views,
    make_views,
)
from gsg_domains.timeseries.data import TimeSeriesDataConfig
from gsg_domains.timeseries.encoders import TimeSeriesEncoderConfig, build_encoder

OFF = {  # every augmentation but the crop off
    "jitter_sigma": 0.0,
    "scaling_sigma": 0.0,
    "magnitude_warp_p": 0.0,
    "time_warp_p": 0.0,
    "mask_p": 0.0,
}


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def batch_of(lengths: list[int], channels: int = 2, seed: int = 0) -> dict[str, torch.Tensor]:
    rng = np.random.default_rng(seed)
    rows = [{"series": rng.standard_normal((channels, n)).astype(np.float32), "length": n} for n in lengths]
    return collate_series(rows)


@pytest.mark.parametrize(
    ("pooling", "norm"), [("max", "none"), ("mean", "none"), ("mean+max", "none"), ("max", "batch")]
)
def test_padded_batch_encodes_each_series_as_if_alone(pooling: str, norm: str) -> None:
    torch.manual_seed(0)
    encoder = build_encoder(
        TimeSeriesEncoderConfig(hidden=16, depth=4, out_dim=24, pooling=pooling, norm=norm), {"channels": 2}
    )
    lengths = [57, 3, 120, 1, 64]
    batch = batch_of(lengths)
    padded = SeriesBatch(batch["x"], batch["lengths"])
    if norm == "batch":
        with torch.no_grad():
            encoder.train()(SeriesBatch(3 * batch["x"] + 1, batch["lengths"]))  # running statistics away from 0 / 1
    encoder.eval()
    with torch.no_grad():
        feats = encoder(padded)
        seq = encoder.encode_sequence(padded)
        for i, n in enumerate(lengths):
            alone = batch["x"][i : i + 1, :, :n]
            torch.testing.assert_close(feats[i : i + 1], encoder(alone), atol=1e-6, rtol=1e-6)
            torch.testing.assert_close(seq[i : i + 1, :n], encoder.encode_sequence(alone), atol=1e-6, rtol=1e-6)
            assert torch.all(seq[i, n:] == 0)  # padding zeroed
    assert seq.shape == (5, 120, 24)


def test_batchnorm_statistics_count_the_valid_steps_only() -> None:
    """Training mode: the masked BatchNorm gives each valid step what a plain BatchNorm gives it on the
    valid steps alone (laid end to end), running statistics included; the padding stays zero."""
    from gsg_domains.timeseries.encoders import _MaskedBatchNorm1d

    torch.manual_seed(0)
    lengths = [5, 9, 2]
    x = torch.randn(3, 4, 9) * 2 + 1
    mask = (torch.arange(9)[None, :] < torch.tensor(lengths)[:, None]).float()[:, None, :]
    x = x * mask + (1 - mask) * 1e3  # garbage in the padding must not leak into the statistics
    masked, plain = _MaskedBatchNorm1d(4), torch.nn.BatchNorm1d(4)
    with torch.no_grad():
        for bn in (masked, plain):
            bn.weight.copy_(torch.tensor([1.0, 2.0, 0.5, -1.0]))
            bn.bias.copy_(torch.tensor([0.0, 1.0, -1.0, 3.0]))
    out = masked(x, mask)
    valid = torch.cat([x[i, :, :n] for i, n in enumerate(lengths)], dim=1)[None]
    expected = plain(valid)[0]
    got = torch.cat([out[i, :, :n] for i, n in enumerate(lengths)], dim=1)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(masked.running_mean, plain.running_mean)
    torch.testing.assert_close(masked.running_var, plain.running_var)


def test_garbage_in_the_padding_does_not_change_the_features() -> None:
    torch.manual_seed(0)
    encoder = build_encoder(TimeSeriesEncoderConfig(hidden=8, depth=3, out_dim=8), {"channels": 2}).eval()
    batch = batch_of([10, 40])
    dirty = batch["x"].clone()
    dirty[0, :, 10:] = 1e6
    with torch.no_grad():
        clean_f = encoder(SeriesBatch(batch["x"], batch["lengths"]))
        dirty_f = encoder(SeriesBatch(dirty, batch["lengths"]))
    assert torch.equal(clean_f, dirty_f)


def test_tsai_backbones_pool_over_valid_steps_only() -> None:
    encoder = build_encoder(TimeSeriesEncoderConfig(name="resnet", nf=4, pooling="max"), {"channels": 2}).eval()
    batch = batch_of([30, 50])
    with torch.no_grad():
        seq = encoder.encode_sequence(SeriesBatch(batch["x"], batch["lengths"]))
    assert seq.shape[:2] == (2, 50) and torch.all(seq[0, 30:] == 0)


def test_eval_input_keeps_every_series_at_full_length() -> None:
    lengths = [7, 29, 12]
    batch = batch_of(lengths)
    out = eval_view(batch, TimeSeriesViewsConfig(), None)
    assert isinstance(out, SeriesBatch) and out.lengths.tolist() == lengths
    assert torch.equal(out.x, batch["x"]) and out.shape == (3, 2, 29)
    assert torch.equal(eval_view(batch, TimeSeriesViewsConfig(), None).x, out.x)  # deterministic


def test_native_views_are_crops_at_the_series_own_resolution() -> None:
    lengths = [40, 100, 9]
    batch = batch_of(lengths)
    cfg = TimeSeriesViewsConfig(crop_scale=(0.3, 0.9), crop_min_length=8, **OFF)
    for view in make_views(batch, 4, cfg, None, gen()):
        assert isinstance(view, SeriesBatch) and view.shape[-1] == int(view.lengths.max())
        for i, n in enumerate(lengths):
            k = int(view.lengths[i])
            assert min(n, 8) <= k <= n
            crop = view.x[i, :, :k]
            # the crop is a contiguous run of the original samples (no resampling)
            starts = [s for s in range(n - k + 1) if torch.equal(batch["x"][i, :, s : s + k], crop)]
            assert starts and torch.all(view.x[i, :, k:] == 0)


def test_native_views_with_augmentations_stay_finite_and_padded() -> None:
    batch = batch_of([5, 80, 33, 1])
    cfg = TimeSeriesViewsConfig(permute_p=1.0, flip_p=0.5, time_warp_p=1.0, magnitude_warp_p=1.0, mask_p=1.0)
    for view in make_views(batch, 3, cfg, None, gen()):
        assert torch.isfinite(view.x).all()
        assert not view.x[~view.mask()[:, None, :].expand_as(view.x)].any()


def test_max_train_length_caps_the_crops() -> None:
    batch = batch_of([300, 120])
    views = make_views(batch, 2, TimeSeriesViewsConfig(max_train_length=64), None, gen())
    assert all(int(v.lengths.max()) <= 64 for v in views)


def test_views_are_reproducible_from_the_generator() -> None:
    batch = batch_of([40, 100, 9, 77])
    cfg = TimeSeriesViewsConfig(time_warp_p=0.5, permute_p=0.3)
    a, b = make_views(batch, 3, cfg, None, gen(1)), make_views(batch, 3, cfg, None, gen(1))
    for va, vb in zip(a, b, strict=True):
        assert torch.equal(va.x, vb.x) and torch.equal(va.lengths, vb.lengths)
    assert not torch.equal(a[0].x, make_views(batch, 1, cfg, None, gen(2))[0].x)
    g = gen(3)
    first = make_sequence_views(batch, 2, cfg, g)
    state = g.get_state()
    second = make_sequence_views(batch, 2, cfg, g)
    g.set_state(state)  # resuming from a saved generator state replays the same draw
    again = make_sequence_views(batch, 2, cfg, g)
    assert first.overlap != second.overlap or not torch.equal(first.views[0].x, second.views[0].x)
    assert second.overlap == again.overlap and torch.equal(second.views[1].x, again.views[1].x)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("n_views", [2, 3])
def test_sequence_views_share_an_aligned_overlap(seed: int, n_views: int) -> None:
    lengths = [60, 200, 31, 128, 97]
    batch = batch_of(lengths, seed=seed)
    # The raw sample index as the series: the view at a position tells where it came from.
    idx = torch.arange(200, dtype=torch.float32).expand(5, 1, 200).clone()
    idx = idx * (idx < torch.tensor(lengths)[:, None, None])
    batch["x"] = torch.cat([batch["x"], idx], 1)
    sv = make_sequence_views(batch, n_views, TimeSeriesViewsConfig(**OFF), gen(seed))
    assert len(sv.views) == len(sv.overlap) == n_views
    overlap = {length for _, length in sv.overlap}
    assert len(overlap) == 1 and overlap.pop() >= 1
    for view, (start, length) in zip(sv.views, sv.overlap, strict=True):
        assert isinstance(view, SeriesBatch) and torch.all(view.lengths >= start + length)
        assert torch.all(view.lengths <= torch.tensor(lengths))
    (sa, la), (sb, _) = sv.overlap[0], sv.overlap[1]
    for i in range(5):
        a = sv.views[0].x[i, :, sa : sa + la]
        b = sv.views[1].x[i, :, sb : sb + la]
        assert torch.equal(a, b)  # the same raw samples, channel values and index alike
        raw = a[-1].long()
        assert torch.equal(raw, torch.arange(int(raw[0]), int(raw[0]) + la))  # a contiguous run
        assert int(raw[-1]) < lengths[i]


def test_series_batch_moves_like_a_tensor() -> None:
    sb = SeriesBatch.full(torch.randn(2, 3, 5))
    half = sb.to(torch.float64)
    assert half.x.dtype == torch.float64 and half.lengths.dtype == torch.int64
    from accelerate.utils import send_to_device

    moved = send_to_device(sb, torch.device("cpu"))
    assert isinstance(moved, SeriesBatch) and torch.equal(moved.x, sb.x)


def test_views_grid_draws_a_png(tmp_path) -> None:
    domain = TimeSeriesDomain(TimeSeriesDataConfig(), TimeSeriesViewsConfig(), TimeSeriesEncoderConfig())
    domain.bind({"channels": 3})
    batch = batch_of([50, 80, 20], channels=3)
    views = domain.make_views(batch, 2, gen())
    domain.save_views_grid(batch, views, tmp_path / "v.png")
    assert (tmp_path / "v.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
