"""Random views of image batches: the SimSiam / MoCo-v2 recipe, per-sample parameters, batched on the device.

The recipe the GSG paper used (from SimSiam, itself MoCo v2's): random resized crop (area 0.2-1,
aspect 3/4-4/3), colour jitter 0.4/0.4/0.4/0.1 with p=0.8, grayscale p=0.2, Gaussian blur
(sigma 0.1-2) with p=0.5 on ImageNet-sized images only, horizontal flip p=0.5.

torchvision's v2 transform classes draw one set of parameters per call from the global RNG, so a
batch would share one crop and one jitter. Here every sample of every view draws its own
parameters from the caller's ``torch.Generator`` (reproducible, resumable) and the operations are
applied to the whole batch at once, following the definitions in
``torchvision.transforms.v2.functional`` (``resized_crop``, ``horizontal_flip``,
``adjust_brightness/contrast/saturation/hue``, ``rgb_to_grayscale``, ``gaussian_blur``);
``tests/test_images_augment.py`` checks each against torchvision on single images.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any, Literal

import torch
import torch.nn.functional as F

from gsg_multimodal.errors import UserError

# Values of each preset; a key set in the config overrides its preset's value.
PRESETS: dict[str, dict[str, Any]] = {
    # SimSiam's ImageNet augmentation (224 px): the full recipe, blur included.
    "imagenet": dict(crop_scale=(0.2, 1.0), crop_ratio=(3 / 4, 4 / 3), flip_p=0.5, jitter_p=0.8, brightness=0.4,
                     contrast=0.4, saturation=0.4, hue=0.1, grayscale_p=0.2, blur_p=0.5, blur_sigma=(0.1, 2.0)),
    # SimSiam's CIFAR-10 augmentation (32 px): the same without blur, which erases most of a tiny image.
    "cifar": dict(crop_scale=(0.2, 1.0), crop_ratio=(3 / 4, 4 / 3), flip_p=0.5, jitter_p=0.8, brightness=0.4,
                  contrast=0.4, saturation=0.4, hue=0.1, grayscale_p=0.2, blur_p=0.0, blur_sigma=(0.1, 2.0)),
    # Small grayscale images (28 px, Fashion-MNIST): saturation, hue and grayscale do nothing to one
    # channel, so they are off; brightness/contrast carry the photometric part. Flip is on (clothes are
    # mirror-symmetric as classes); set views.flip_p=0 for digits, where a mirrored 2 is not a 2.
    "small_gray": dict(crop_scale=(0.2, 1.0), crop_ratio=(3 / 4, 4 / 3), flip_p=0.5, jitter_p=0.8, brightness=0.4,
                       contrast=0.4, saturation=0.0, hue=0.0, grayscale_p=0.0, blur_p=0.0, blur_sigma=(0.1, 2.0)),
}  # fmt: skip


@dataclass
class ImageViewsConfig:
    """The ``views`` config section. ``preset`` gives every value; any key set here overrides it.

    ``auto`` picks ``small_gray`` for one channel, ``imagenet`` for colour images of 96 px or more,
    ``cifar`` for smaller colour images. Probabilities are per sample.
    """

    preset: Literal["auto", "imagenet", "cifar", "small_gray"] = "auto"
    crop_scale: tuple[float, float] | None = None  # area fraction of the random resized crop
    crop_ratio: tuple[float, float] | None = None  # aspect ratio range of the crop
    flip_p: float | None = None
    jitter_p: float | None = None  # probability of colour jitter (all four factors together)
    brightness: float | None = None  # factor ~ U[max(0, 1-b), 1+b]
    contrast: float | None = None
    saturation: float | None = None
    hue: float | None = None  # shift ~ U[-h, h], h <= 0.5
    grayscale_p: float | None = None
    blur_p: float | None = None
    blur_sigma: tuple[float, float] | None = None
    blur_kernel: int | None = None  # odd; None = about 10 % of the image side, as SimSiam's 23 px for 224

    def __post_init__(self) -> None:
        def bad(name: str, what: str) -> UserError:
            return UserError(f"views.{name}={getattr(self, name)!r} must be {what}; fix it in the views section")

        for name in ("crop_scale", "crop_ratio", "blur_sigma"):
            v = getattr(self, name)
            if v is not None:
                setattr(self, name, v := tuple(v))
                if not (len(v) == 2 and 0 < v[0] <= v[1]) or (name == "crop_scale" and v[1] > 1):
                    raise bad(name, "[min, max] with 0 < min <= max" + (" <= 1" if name == "crop_scale" else ""))
        for name in ("flip_p", "jitter_p", "grayscale_p", "blur_p"):
            v = getattr(self, name)
            if v is not None and not 0 <= v <= 1:
                raise bad(name, "a probability between 0 and 1")
        for name in ("brightness", "contrast", "saturation"):
            v = getattr(self, name)
            if v is not None and v < 0:
                raise bad(name, "a jitter strength >= 0")
        if self.hue is not None and not 0 <= self.hue <= 0.5:
            raise bad("hue", "between 0 and 0.5")
        if self.blur_kernel is not None and (self.blur_kernel < 1 or self.blur_kernel % 2 == 0):
            raise bad("blur_kernel", "an odd number of pixels")


@dataclass(frozen=True)
class ViewParams:
    """The resolved augmentation: preset values with the config's overrides, for one image shape."""

    preset: str
    crop_scale: tuple[float, float]
    crop_ratio: tuple[float, float]
    flip_p: float
    jitter_p: float
    brightness: float
    contrast: float
    saturation: float
    hue: float
    grayscale_p: float
    blur_p: float
    blur_sigma: tuple[float, float]
    blur_kernel: int


def resolve(cfg: ImageViewsConfig, channels: int, size: int) -> ViewParams:
    """Fill the config's unset keys from its preset (``auto``: chosen from the channel count and size)."""
    preset = cfg.preset
    if preset == "auto":
        preset = "small_gray" if channels == 1 else ("imagenet" if size >= 96 else "cifar")
    values = dict(PRESETS[preset])
    for f in fields(ImageViewsConfig):
        if f.name not in ("preset", "blur_kernel") and getattr(cfg, f.name) is not None:
            values[f.name] = getattr(cfg, f.name)
    kernel = cfg.blur_kernel or max(3, int(0.1 * size) // 2 * 2 + 1)
    return ViewParams(preset=preset, blur_kernel=kernel, **values)


# ---------------------------------------------------------------- geometry


def sample_crops(
    n: int,
    height: int,
    width: int,
    scale: tuple[float, float],
    ratio: tuple[float, float],
    g: torch.Generator,
    device: torch.device,
) -> torch.Tensor:
    """Per-sample ``[top, left, h, w]`` (int64 ``[n, 4]``) as ``v2.RandomResizedCrop.make_params`` draws them.

    torchvision tries up to 10 (area, aspect) draws and takes the first that fits, else a central
    crop of the whole image clipped to the ratio range; the 10 tries are drawn at once here.
    """
    tries = 10
    area = height * width * (scale[0] + (scale[1] - scale[0]) * torch.rand(n, tries, generator=g, device=device))
    lo, hi = math.log(ratio[0]), math.log(ratio[1])
    aspect = torch.exp(lo + (hi - lo) * torch.rand(n, tries, generator=g, device=device))
    w = torch.sqrt(area * aspect).round().long()
    h = torch.sqrt(area / aspect).round().long()
    ok = (w > 0) & (w <= width) & (h > 0) & (h <= height)
    first = ok.long().argmax(1, keepdim=True)  # index of the first fitting try (0 when none fits)
    w, h, found = w.gather(1, first)[:, 0], h.gather(1, first)[:, 0], ok.any(1)
    # Fallback, as torchvision: the whole image, clipped to the allowed aspect range, centred.
    in_ratio = width / height
    if in_ratio < ratio[0]:
        fw, fh = width, int(round(width / ratio[0]))
    elif in_ratio > ratio[1]:
        fw, fh = int(round(height * ratio[1])), height
    else:
        fw, fh = width, height
    w = torch.where(found, w, torch.full_like(w, fw))
    h = torch.where(found, h, torch.full_like(h, fh))
    u = torch.rand(n, 2, generator=g, device=device)
    top = torch.where(found, (u[:, 0] * (height - h + 1)).long(), torch.full_like(h, (height - fh) // 2))
    left = torch.where(found, (u[:, 1] * (width - w + 1)).long(), torch.full_like(w, (width - fw) // 2))
    return torch.stack([top, left, h, w], 1)


def _axis(start: torch.Tensor, length: torch.Tensor, out: int, size: int) -> torch.Tensor:
    """Source coordinates ``[n, out]`` (align_corners=True units) of a bilinear resize of ``[start, start+length)``.

    Half-pixel centres, as ``F.interpolate(mode="bilinear", align_corners=False)``, clamped inside the
    crop so edge pixels repeat the crop's border rather than reading the pixels beyond it.
    """
    j = torch.arange(out, device=start.device, dtype=torch.float32)
    src = (j + 0.5) * (length.float()[:, None] / out) - 0.5
    src = torch.minimum(src.clamp(min=0), (length - 1).float()[:, None]) + start.float()[:, None]
    return src * (2.0 / max(size - 1, 1)) - 1.0


def resized_crop(x: torch.Tensor, crops: torch.Tensor, size: tuple[int, int], flip: torch.Tensor) -> torch.Tensor:
    """Crop ``crops[i] = [top, left, h, w]`` of each image, resize it to ``size`` (bilinear), flip where ``flip``.

    One ``grid_sample`` for the whole batch. Matches ``v2.functional.resized_crop`` (+ ``horizontal_flip``)
    when the crop is not larger than ``size`` (always so for views at the stored resolution, where
    torchvision's antialiasing has nothing to do).
    """
    n, _, height, width = x.shape
    ys = _axis(crops[:, 0], crops[:, 2], size[0], height)
    xs = _axis(crops[:, 1], crops[:, 3], size[1], width)
    xs = torch.where(flip[:, None], xs.flip(1), xs)
    grid = torch.stack(torch.broadcast_tensors(xs[:, None, :], ys[:, :, None]), dim=-1)  # [n, H, W, (x, y)]
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=True)


# ---------------------------------------------------------------- colour (images in [0, 1], factors [n])


def _per_sample(f: torch.Tensor) -> torch.Tensor:
    return f.reshape(-1, 1, 1, 1)


def rgb_to_grayscale(x: torch.Tensor) -> torch.Tensor:
    """Luma ``[n, 1, H, W]`` with torchvision's (ITU-R 601) weights; a one-channel image is its own."""
    if x.shape[1] == 1:
        return x
    return x[:, 0:1] * 0.2989 + x[:, 1:2] * 0.587 + x[:, 2:3] * 0.114


def _blend(x: torch.Tensor, other: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    f = _per_sample(f)
    return (x * f + other * (1 - f)).clamp_(0, 1)


def adjust_brightness(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    return (x * _per_sample(f)).clamp_(0, 1)


def adjust_contrast(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    return _blend(x, rgb_to_grayscale(x).mean(dim=(1, 2, 3), keepdim=True), f)


def adjust_saturation(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    return x if x.shape[1] == 1 else _blend(x, rgb_to_grayscale(x), f)


def adjust_hue(x: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Rotate the hue by ``shift`` turns (HSV round trip, the formulas torchvision takes from Pillow)."""
    if x.shape[1] == 1:
        return x
    r, g, b = x.unbind(1)
    maxc, minc = x.amax(1), x.amin(1)
    span = maxc - minc
    gray = span == 0  # hue and saturation are undefined; the formulas below are guarded, then ignored
    s = span / torch.where(gray, torch.ones_like(maxc), maxc)
    d = torch.where(gray, torch.ones_like(span), span)
    rc, gc, bc = (maxc - r) / d, (maxc - g) / d, (maxc - b) / d
    h = torch.where(maxc == r, bc - gc, torch.where(maxc == g, 2.0 + rc - bc, 4.0 + gc - rc))
    h = torch.remainder(h / 6.0 + 1.0 + shift.reshape(-1, 1, 1), 1.0)
    # HSV -> RGB
    h6 = h * 6
    i = h6.floor()
    f = h6 - i
    i = i.long().remainder(6)
    v = maxc
    p = (v * (1 - s)).clamp(0, 1)
    q = (v * (1 - s * f)).clamp(0, 1)
    t = (v * (1 - s * (1 - f))).clamp(0, 1)
    vpqt = torch.stack([v, p, q, t], 1)  # [n, 4, H, W]
    return vpqt.gather(1, _hsv_table(x.device)[:, i].permute(1, 0, 2, 3))


_HSV_TABLES: dict[torch.device, torch.Tensor] = {}


def _hsv_table(device: torch.device) -> torch.Tensor:
    """Which of (v, p, q, t) feeds r, g, b in each of the six hue sectors; one copy per device, made once
    (a host-to-device copy in every view would be a stream sync on GPUs)."""
    if device not in _HSV_TABLES:
        table = [[0, 2, 1, 1, 3, 0], [3, 0, 0, 2, 1, 1], [1, 1, 3, 0, 0, 2]]
        _HSV_TABLES[device] = torch.tensor(table, device=device)
    return _HSV_TABLES[device]


def color_jitter(x: torch.Tensor, factors: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
    """``v2.ColorJitter`` with per-sample factors ``[n, 4]`` (brightness, contrast, saturation, hue) and order.

    ``order[i]`` is a permutation of 0..3, the order in which sample i's adjustments run (torchvision
    draws one per call). Each of the four steps applies every adjustment with an identity factor
    (1, or hue 0) for the samples not due for it, which keeps the batch whole and sync-free.
    """
    ops = (adjust_brightness, adjust_contrast, adjust_saturation, adjust_hue)
    # Saturation and hue leave one channel unchanged, so gray images skip them.
    active = [k for k in range(4) if k < 2 or x.shape[1] == 3]
    for step in range(4):
        for k in active:
            f = torch.where(order[:, step] == k, factors[:, k], 0.0 if k == 3 else 1.0)
            x = ops[k](x, f)
    return x


def gaussian_kernels(sigma: torch.Tensor, size: int) -> torch.Tensor:
    """Normalised 1-D Gaussian kernels ``[n, size]``, one per sigma, as ``v2.functional.gaussian_blur`` makes."""
    half = (size - 1) * 0.5
    xs = torch.linspace(-half, half, size, device=sigma.device)
    pdf = torch.exp(-0.5 * (xs[None, :] / sigma[:, None]) ** 2)
    return pdf / pdf.sum(1, keepdim=True)


def gaussian_blur(x: torch.Tensor, sigma: torch.Tensor, size: int) -> torch.Tensor:
    """Blur each image with its own sigma: separable, reflect padding, as torchvision (grouped convolutions)."""
    n, c, h, w = x.shape
    k = gaussian_kernels(sigma, size).repeat_interleave(c, 0)  # [n*c, size]
    pad = size // 2
    y = F.pad(x.reshape(1, n * c, h, w), [pad, pad, pad, pad], mode="reflect")
    y = F.conv2d(y, k[:, None, None, :], groups=n * c)  # along width
    y = F.conv2d(y, k[:, None, :, None], groups=n * c)  # along height
    return y.reshape(n, c, h, w)


# ---------------------------------------------------------------- views


def _uniform(n: int, lo: float, hi: float, g: torch.Generator, device: torch.device) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=g, device=device)


def normalize(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    return (x - mean.reshape(1, -1, 1, 1)) / std.reshape(1, -1, 1, 1)


def augment(x: torch.Tensor, p: ViewParams, g: torch.Generator) -> torch.Tensor:
    """One random view of float images ``[n, C, H, W]`` in [0, 1]; every sample draws its own parameters."""
    n, c, height, width = x.shape
    dev = x.device
    crops = sample_crops(n, height, width, p.crop_scale, p.crop_ratio, g, dev)
    flip = torch.rand(n, generator=g, device=dev) < p.flip_p
    x = resized_crop(x, crops, (height, width), flip)
    if p.jitter_p > 0 and (p.brightness or p.contrast or (c == 3 and (p.saturation or p.hue))):
        factors = torch.stack(
            [
                _uniform(n, max(0.0, 1 - p.brightness), 1 + p.brightness, g, dev),
                _uniform(n, max(0.0, 1 - p.contrast), 1 + p.contrast, g, dev),
                _uniform(n, max(0.0, 1 - p.saturation), 1 + p.saturation, g, dev),
                _uniform(n, -p.hue, p.hue, g, dev),
            ],
            1,
        )
        order = torch.rand(n, 4, generator=g, device=dev).argsort(1)
        skip = torch.rand(n, generator=g, device=dev) >= p.jitter_p
        identity = torch.ones_like(factors)
        identity[:, 3] = 0.0  # a fill on the device, not a host-to-device copy
        factors = torch.where(skip[:, None], identity, factors)
        x = color_jitter(x, factors, order)
    if p.grayscale_p > 0 and c == 3:
        gray = torch.rand(n, generator=g, device=dev) < p.grayscale_p
        x = torch.where(gray[:, None, None, None], rgb_to_grayscale(x).expand_as(x), x)
    if p.blur_p > 0:
        sigma = _uniform(n, p.blur_sigma[0], p.blur_sigma[1], g, dev)
        blur = torch.rand(n, generator=g, device=dev) < p.blur_p
        x = torch.where(blur[:, None, None, None], gaussian_blur(x, sigma, p.blur_kernel), x)
    return x


def to_float(pixels: torch.Tensor) -> torch.Tensor:
    """uint8 ``[n, C, H, W]`` -> float32 in [0, 1] (on the pixels' device)."""
    return pixels.float().div_(255.0)


def make_views(
    pixels: torch.Tensor, n_views: int, p: ViewParams, mean: torch.Tensor, std: torch.Tensor, g: torch.Generator
) -> list[torch.Tensor]:
    """``n_views`` standardised float views of a uint8 batch, each sample of each view its own randomness."""
    x = to_float(pixels)
    return [normalize(augment(x, p, g), mean, std) for _ in range(n_views)]
