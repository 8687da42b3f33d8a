"""Time-series batching, resampling and random views."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gsg_domains.timeseries.augment import (
    TimeSeriesViewsConfig,
    collate_series,
    eval_view,
    make_views,
    resample,
    resolve_length,
)
from gsg_multimodal.errors import UserError

# Every augmentation off and no crop: a view must then be exactly the eval input.
OFF = dict(
    crop_scale=(1.0, 1.0),
    jitter_sigma=0.0,
    scaling_sigma=0.0,
    magnitude_warp_p=0.0,
    time_warp_p=0.0,
    mask_p=0.0,
    permute_p=0.0,
    flip_p=0.0,
)


def batch_of(lengths: list[int], channels: int = 3, pad: float = 0.0, seed: int = 0) -> dict[str, torch.Tensor]:
    rng = np.random.default_rng(seed)
    rows = [{"series": rng.standard_normal((channels, n)).astype(np.float32), "length": n} for n in lengths]
    batch = collate_series(rows)
    for i, n in enumerate(lengths):
        batch["x"][i, :, n:] = pad
    return batch


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ---------------------------------------------------------------------------- collate


def test_collate_pads_with_zeros_and_keeps_labels() -> None:
    rows = [
        {"series": [[1.0, 2.0, 3.0]], "length": 3, "label": 2},  # nested lists, as `datasets` returns them
        {"series": np.array([[4.0]], dtype=np.float32), "length": 1, "label": 0},
    ]
    batch = collate_series(rows)
    assert batch["x"].dtype == torch.float32 and batch["x"].shape == (2, 1, 3)
    assert batch["x"].tolist() == [[[1.0, 2.0, 3.0]], [[4.0, 0.0, 0.0]]]
    assert batch["lengths"].dtype == torch.int64 and batch["lengths"].tolist() == [3, 1]
    assert batch["label"].dtype == torch.int64 and batch["label"].tolist() == [2, 0]


def test_collate_leaves_out_labels_unless_every_row_has_one() -> None:
    rows = [{"series": [[1.0, 2.0]], "length": 2, "label": 1}, {"series": [[3.0, 4.0]], "length": 2}]
    assert "label" not in collate_series(rows)


# ---------------------------------------------------------------------------- resample


def test_resample_of_the_whole_valid_region_at_its_length_is_exact() -> None:
    batch = batch_of([50, 50, 50, 60], pad=1e30)  # the first three have 10 padding steps
    x, lengths = batch["x"], torch.full((4,), 50)
    assert torch.equal(resample(x, lengths, torch.zeros(4), lengths - 1, 50), x[..., :50])


def test_resample_interpolates_linearly_between_steps() -> None:
    x = torch.arange(5.0).view(1, 1, 5)
    out = resample(x, torch.tensor([5]), torch.tensor([1.0]), torch.tensor([3.0]), 5)
    assert torch.allclose(out, torch.tensor([[[1.0, 1.5, 2.0, 2.5, 3.0]]]))


def test_resample_never_reads_padding() -> None:
    lengths = [7, 29, 12, 2, 1]
    clean, dirty = batch_of(lengths), batch_of(lengths, pad=1e30)
    n = torch.tensor(lengths)
    for out_len in (2, 29, 64):
        a = resample(clean["x"], n, torch.zeros(5), n - 1, out_len)
        b = resample(dirty["x"], n, torch.zeros(5), n - 1, out_len)
        assert torch.equal(a, b) and a.abs().max() < 100
        # The ends of the valid region map onto the ends of the output.
        for i, length in enumerate(lengths):
            assert torch.allclose(a[i, :, 0], clean["x"][i, :, 0])
            assert torch.allclose(a[i, :, -1], clean["x"][i, :, length - 1])


def test_resample_of_a_single_step_is_constant() -> None:
    x = torch.tensor([[[3.0, 99.0, 99.0]]])
    out = resample(x, torch.tensor([1]), torch.zeros(1), torch.zeros(1), 8)
    assert torch.equal(out, torch.full((1, 1, 8), 3.0))


def test_eval_view_is_deterministic_and_resamples_the_whole_series() -> None:
    batch = batch_of([7, 29, 15], pad=1e30)
    cfg = TimeSeriesViewsConfig()
    out = eval_view(batch, cfg, 29)
    assert out.shape == (3, 3, 29) and out.dtype == torch.float32
    assert torch.equal(out, eval_view(batch, cfg, 29))
    assert torch.equal(out[1], batch["x"][1])  # the longest series is already 29 steps


# ---------------------------------------------------------------------------- views


def test_views_have_the_asked_shape_for_variable_lengths() -> None:
    batch = batch_of([7, 29, 15, 1, 2], channels=6)
    cfg = TimeSeriesViewsConfig(permute_p=0.5, flip_p=0.5)
    for length in (2, 24, 100):
        views = make_views(batch, 4, cfg, length, gen())
        assert len(views) == 4
        for v in views:
            assert v.shape == (5, 6, length) and v.dtype == torch.float32 and torch.isfinite(v).all()


def test_every_sample_and_every_view_gets_its_own_randomness() -> None:
    one = batch_of([100])
    batch = {"x": one["x"].repeat(8, 1, 1), "lengths": one["lengths"].repeat(8)}
    v1, v2 = make_views(batch, 2, TimeSeriesViewsConfig(), 64, gen())
    for views in (v1, v2):
        flat = views.flatten(1)
        assert (torch.cdist(flat, flat) + torch.eye(8)).min() > 0  # no two samples alike
    assert not torch.equal(v1, v2)


def test_each_augmentation_alone_changes_the_view() -> None:
    batch = batch_of([100] * 4)
    for key, value in [
        ("crop_scale", (0.5, 0.5)),
        ("jitter_sigma", 0.1),
        ("scaling_sigma", 0.1),
        ("magnitude_warp_p", 1.0),
        ("time_warp_p", 1.0),
        ("mask_p", 1.0),
        ("permute_p", 1.0),
        ("flip_p", 1.0),
    ]:
        cfg = TimeSeriesViewsConfig(**{**OFF, key: value})
        assert not torch.equal(make_views(batch, 1, cfg, 100, gen())[0], eval_view(batch, cfg, 100)), key


def test_same_generator_state_gives_the_same_views() -> None:
    batch = batch_of([7, 29, 15])
    cfg = TimeSeriesViewsConfig(permute_p=0.5, flip_p=0.5)
    a, b = make_views(batch, 3, cfg, 32, gen(1)), make_views(batch, 3, cfg, 32, gen(1))
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert not torch.equal(a[0], make_views(batch, 1, cfg, 32, gen(2))[0])


def test_with_every_augmentation_off_a_view_is_the_eval_input() -> None:
    batch = batch_of([7, 29, 15], pad=1e30)
    cfg = TimeSeriesViewsConfig(**OFF)
    assert torch.equal(make_views(batch, 1, cfg, 40, gen())[0], eval_view(batch, cfg, 40))


def test_time_warp_keeps_order_and_ends() -> None:
    ramp = torch.linspace(-1, 1, 100).expand(64, 2, 100).contiguous()
    batch = {"x": ramp, "lengths": torch.full((64,), 100)}
    cfg = TimeSeriesViewsConfig(**{**OFF, "time_warp_p": 1.0, "time_warp_sigma": 0.5})
    view = make_views(batch, 1, cfg, 100, gen())[0]
    assert (view.diff(dim=2) > -1e-6).all()  # monotone warp of an increasing series stays increasing
    assert torch.allclose(view[..., 0], ramp[..., 0]) and torch.allclose(view[..., -1], ramp[..., -1], atol=1e-5)
    assert not torch.allclose(view, ramp, atol=1e-3)


def test_permutation_only_reorders_steps() -> None:
    batch = batch_of([96] * 16)
    cfg = TimeSeriesViewsConfig(**{**OFF, "permute_p": 1.0, "permute_segments": 4})
    view, ref = make_views(batch, 1, cfg, 96, gen())[0], eval_view(batch, cfg, 96)
    assert torch.equal(view.sort(2).values, ref.sort(2).values)


def test_masking_zeroes_one_segment_of_about_the_configured_size() -> None:
    n, length = 2000, 100
    batch = {"x": torch.ones(n, 3, length), "lengths": torch.full((n,), length)}
    cfg = TimeSeriesViewsConfig(**{**OFF, "mask_p": 0.5, "mask_max_fraction": 0.2})
    zero = make_views(batch, 1, cfg, length, gen())[0] == 0
    assert torch.equal(zero, zero[:, :1].expand_as(zero))  # across all channels at once
    steps = zero[:, 0].sum(1)
    assert steps.max() <= 20
    assert 0.4 < (steps > 0).float().mean() < 0.6  # mask_p
    # Segments of 1..20 steps in half the samples: 0.5 * 10.5 / 100 of all steps.
    assert 0.045 < zero[:, 0].float().mean() < 0.06
    edges = zero[:, 0].int().diff(dim=1).abs().sum(1)
    assert edges.max() <= 2  # one contiguous segment


def test_views_of_a_large_batch_are_vectorised() -> None:
    # 4096 x 3 x 256 takes a fraction of a second when vectorised; a loop over samples takes far longer.
    batch = {"x": torch.randn(4096, 3, 256), "lengths": torch.randint(100, 257, (4096,))}
    views = make_views(batch, 2, TimeSeriesViewsConfig(permute_p=0.5, flip_p=0.5), 256, gen())
    assert [v.shape for v in views] == [(4096, 3, 256)] * 2


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_views_on_the_gpu_with_a_gpu_generator() -> None:
    batch = {k: v.cuda() for k, v in batch_of([7, 29, 15]).items()}
    g = torch.Generator(device="cuda").manual_seed(0)
    views = make_views(batch, 2, TimeSeriesViewsConfig(permute_p=0.5, flip_p=0.5), 32, g)
    assert all(v.is_cuda and v.shape == (3, 3, 32) for v in views)
    assert eval_view(batch, TimeSeriesViewsConfig(), 32).is_cuda


# ---------------------------------------------------------------------------- config


@pytest.mark.parametrize(
    "key, value",
    [
        ("length", 1),
        ("max_train_length", 1),
        ("crop_min_length", 0),
        ("overlap_min_length", 0),
        ("crop_scale", (0.0, 1.0)),
        ("crop_scale", (0.8, 0.5)),
        ("crop_scale", (0.5, 1.5)),
        ("jitter_sigma", -0.1),
        ("scaling_sigma", float("nan")),
        ("time_warp_p", 1.5),
        ("mask_p", -0.1),
        ("flip_p", 2.0),
        ("mask_max_fraction", 1.2),
        ("magnitude_warp_knots", -1),
        ("permute_segments", 0),
    ],
)
def test_bad_config_values_name_the_key_in_one_line(key: str, value: object) -> None:
    with pytest.raises(UserError) as info:
        TimeSeriesViewsConfig(**{key: value})
    message = str(info.value)
    assert f"views.{key}" in message and "\n" not in message


def test_resolve_length() -> None:
    # Issue 15: null no longer means "the data's max length capped at 512" but native resolution.
    assert resolve_length(TimeSeriesViewsConfig(length=64), {"max_length": 1000}) == 64
    assert resolve_length(TimeSeriesViewsConfig(), {"max_length": 1344}) is None
