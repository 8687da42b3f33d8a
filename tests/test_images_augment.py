"""Image views: each batched op equals torchvision's v2.functional on single images; per-sample randomness."""

from __future__ import annotations

import math

import pytest
import torch
from torchvision.transforms.v2 import functional as TF

from gsg_domains.images import augment as A
from gsg_multimodal.errors import UserError

TOL = dict(atol=2e-5, rtol=0)


def images(n: int, c: int, h: int = 17, w: int = 23, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, c, h, w, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("c", [1, 3])
def test_colour_ops_match_torchvision(c: int) -> None:
    x = images(4, c)
    factors = torch.tensor([0.6, 1.0, 1.3, 1.4])
    shifts = torch.tensor([-0.1, 0.0, 0.05, 0.5])
    ours = {
        "brightness": A.adjust_brightness(x.clone(), factors),
        "contrast": A.adjust_contrast(x.clone(), factors),
        "saturation": A.adjust_saturation(x.clone(), factors),
        "hue": A.adjust_hue(x.clone(), shifts),
    }
    for i in range(len(x)):
        f, s = float(factors[i]), float(shifts[i])
        torch.testing.assert_close(ours["brightness"][i], TF.adjust_brightness(x[i], f), **TOL)
        torch.testing.assert_close(ours["contrast"][i], TF.adjust_contrast(x[i], f), **TOL)
        torch.testing.assert_close(ours["saturation"][i], TF.adjust_saturation(x[i], f), **TOL)
        torch.testing.assert_close(ours["hue"][i], TF.adjust_hue(x[i], s), atol=1e-4, rtol=0)
    if c == 3:
        torch.testing.assert_close(A.rgb_to_grayscale(x)[1], TF.rgb_to_grayscale(x[1]), **TOL)


def test_hue_handles_gray_and_saturated_pixels() -> None:
    x = torch.tensor([[0.5, 1.0, 0.0, 0.2], [0.5, 0.0, 1.0, 0.2], [0.5, 0.0, 0.0, 0.9]]).reshape(1, 3, 2, 2)
    for shift in (-0.5, -0.25, 0.3):
        torch.testing.assert_close(A.adjust_hue(x, torch.tensor([shift]))[0], TF.adjust_hue(x[0], shift), **TOL)


def test_colour_jitter_applies_each_samples_own_order() -> None:
    x = images(3, 3)
    factors = torch.tensor([[1.3, 0.7, 1.2, 0.08], [0.8, 1.4, 0.6, -0.05], [1.0, 1.0, 1.0, 0.0]])
    order = torch.tensor([[0, 1, 2, 3], [3, 2, 1, 0], [2, 0, 3, 1]])
    out = A.color_jitter(x, factors, order)
    ops = (TF.adjust_brightness, TF.adjust_contrast, TF.adjust_saturation, TF.adjust_hue)
    for i in range(3):
        ref = x[i]
        for k in order[i].tolist():
            ref = ops[k](ref, float(factors[i, k]))
        torch.testing.assert_close(out[i], ref, atol=1e-4, rtol=0)
    torch.testing.assert_close(out[2], x[2])  # identity factors leave the image as it was


def test_gaussian_blur_matches_torchvision_per_sample_sigma() -> None:
    x = images(3, 3, 20, 20)
    sigma = torch.tensor([0.1, 0.8, 2.0])
    out = A.gaussian_blur(x, sigma, 5)
    for i in range(3):
        ref = TF.gaussian_blur(x[i], kernel_size=[5, 5], sigma=[float(sigma[i])] * 2)
        torch.testing.assert_close(out[i], ref, **TOL)


@pytest.mark.parametrize("flip", [False, True])
def test_resized_crop_matches_torchvision(flip: bool) -> None:
    x = images(4, 3, 28, 32)
    crops = torch.tensor([[0, 0, 28, 32], [3, 5, 12, 20], [10, 0, 18, 9], [27, 31, 1, 1]])
    out = A.resized_crop(x, crops, (28, 32), torch.full((4,), flip))
    for i, (top, left, h, w) in enumerate(crops.tolist()):
        ref = TF.resized_crop(x[i], top, left, h, w, [28, 32], antialias=True)
        ref = TF.horizontal_flip(ref) if flip else ref
        torch.testing.assert_close(out[i], ref, atol=1e-5, rtol=0)


def test_sampled_crops_fit_the_image_and_follow_scale_and_ratio() -> None:
    g = torch.Generator().manual_seed(0)
    crops = A.sample_crops(4000, 28, 28, (0.2, 1.0), (3 / 4, 4 / 3), g, torch.device("cpu"))
    top, left, h, w = crops.T
    assert (top >= 0).all() and (left >= 0).all() and (top + h <= 28).all() and (left + w <= 28).all()
    assert (h >= 1).all() and (w >= 1).all()
    area = (h * w).float() / 28**2
    # Rounding to whole pixels moves the area a little past the scale bounds; not far.
    assert area.min() > 0.15 and area.max() <= 1.0
    ratio = (w / h).float()
    assert ratio.min() > 0.6 and ratio.max() < 1.6
    assert area.std() > 0.15 and len({tuple(c) for c in crops.tolist()}) > 1000  # really drawn per sample
    # A ratio range no crop can satisfy falls back to torchvision's central crop.
    wide = A.sample_crops(5, 10, 10, (1.0, 1.0), (3.0, 4.0), g, torch.device("cpu"))
    assert wide.tolist() == [[(10 - 3) // 2, 0, 3, 10]] * 5


def _params(**overrides: object) -> A.ViewParams:
    return A.resolve(A.ImageViewsConfig(**overrides), 3, 32)


def test_views_differ_per_sample_and_per_view_and_come_only_from_the_generator() -> None:
    pixels = (images(1, 3, 32, 32) * 255).to(torch.uint8).expand(16, -1, -1, -1).contiguous()
    mean, std = torch.full((3,), 0.5), torch.full((3,), 0.25)
    p = _params()
    torch.manual_seed(1)
    views = A.make_views(pixels, 4, p, mean, std, torch.Generator().manual_seed(7))
    assert len(views) == 4 and all(v.shape == (16, 3, 32, 32) and v.dtype == torch.float32 for v in views)
    # Sixteen copies of one image: every sample of every view must still look different.
    flat = torch.cat([v.flatten(1) for v in views])
    assert torch.cdist(flat, flat).add(torch.eye(64) * 1e9).min() > 1e-3
    torch.manual_seed(2)  # the global RNG must not matter, only the generator
    again = A.make_views(pixels, 4, p, mean, std, torch.Generator().manual_seed(7))
    for a, b in zip(views, again, strict=True):
        assert torch.equal(a, b)
    other = A.make_views(pixels, 4, p, mean, std, torch.Generator().manual_seed(8))
    assert not torch.equal(views[0], other[0])


def test_identity_settings_return_the_standardised_image() -> None:
    pixels = (images(5, 3, 32, 32) * 255).to(torch.uint8)
    p = _params(crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0), flip_p=0.0, jitter_p=0.0, grayscale_p=0.0, blur_p=0.0)
    mean, std = torch.tensor([0.4, 0.5, 0.6]), torch.tensor([0.2, 0.25, 0.3])
    (view,) = A.make_views(pixels, 1, p, mean, std, torch.Generator().manual_seed(0))
    expected = A.normalize(A.to_float(pixels), mean, std)
    torch.testing.assert_close(view, expected, atol=1e-4, rtol=0)  # grid_sample at exact pixels, then / std


def test_probabilities_are_per_sample() -> None:
    x = images(2000, 3, 8, 8)
    g = torch.Generator().manual_seed(0)
    p = _params(crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0), flip_p=0.0, jitter_p=0.0, grayscale_p=0.3, blur_p=0.0)
    out = A.augment(x, p, g)
    gray = (out[:, 0] == out[:, 1]).flatten(1).all(1) & (out[:, 1] == out[:, 2]).flatten(1).all(1)
    assert abs(gray.float().mean().item() - 0.3) < 0.05  # binomial std ~ 0.01
    flipped = A.augment(x, _params(crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0), flip_p=0.5, jitter_p=0.0,
                                   grayscale_p=0.0, blur_p=0.0), g)  # fmt: skip
    is_flip = torch.isclose(flipped, x.flip(-1), atol=1e-5).flatten(1).all(1)
    assert abs(is_flip.float().mean().item() - 0.5) < 0.05


def test_presets_resolve_and_overrides_win() -> None:
    assert A.resolve(A.ImageViewsConfig(), 1, 28).preset == "small_gray"
    assert A.resolve(A.ImageViewsConfig(), 3, 32).preset == "cifar"
    big = A.resolve(A.ImageViewsConfig(), 3, 224)
    assert big.preset == "imagenet" and big.blur_p == 0.5 and big.blur_kernel == 23  # SimSiam's kernel for 224 px
    assert (big.brightness, big.contrast, big.saturation, big.hue, big.jitter_p) == (0.4, 0.4, 0.4, 0.1, 0.8)
    assert math.isclose(big.crop_scale[0], 0.2) and big.grayscale_p == 0.2 and big.flip_p == 0.5
    assert A.resolve(A.ImageViewsConfig(preset="cifar", flip_p=0.0), 1, 28).flip_p == 0.0


@pytest.mark.parametrize(
    ("key", "value", "words"),
    [("crop_scale", (0.5, 1.5), "crop_scale"), ("flip_p", 1.2, "probability"), ("hue", 0.7, "hue"),
     ("blur_kernel", 4, "odd")],
)  # fmt: skip
def test_bad_view_settings_name_the_key(key: str, value: object, words: str) -> None:
    with pytest.raises(UserError, match=words):
        A.ImageViewsConfig(**{key: value})
