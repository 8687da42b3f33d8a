"""Raw images as a user holds them -> rows as training made them (``GSGEncoder.embed``, ``gsg embed``).

An image goes the way its training data went in ``load_images``: a run on a built-in set stored its
uint8 arrays as they were (``data.mode`` applied with NumPy, no resizing), a run on an image folder or
hub set decoded each file with PIL (``prepare_image``: ``data.mode``, then ``data.image_size``). The
result must have the encoder's channels and size (``info``); the eval input (standardisation with the
training split's statistics, also in ``info``) is applied later by the domain.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from gsg_multimodal.domain import RawData
from gsg_multimodal.errors import UserError

from .data import ImageDataConfig, _convert, prepare_image


def _uint8(x: np.ndarray, what: str) -> np.ndarray:
    """uint8 as it is; floats must lie in [0, 1] (as ``ToTensor`` gives) and are rounded to 0..255."""
    if x.dtype == np.uint8:
        return x
    if x.dtype.kind == "f":
        if not np.isfinite(x).all() or x.min(initial=0) < 0 or x.max(initial=0) > 1:
            raise UserError(f"{what} holds floats outside [0, 1] (or NaN); pass uint8 0..255, or floats in [0, 1]")
        return np.round(x * 255).astype(np.uint8)
    if x.dtype.kind in "iu" and x.size and x.min() >= 0 and x.max() <= 255:
        return x.astype(np.uint8)
    raise UserError(f"{what} is {x.dtype}; pass uint8 pixels 0..255 or floats in [0, 1]")


def _to_chw(x: np.ndarray, what: str) -> np.ndarray:
    """One image ``[H, W]``, ``[H, W, C]`` (or ``[C, H, W]``) -> ``[C, H, W]``, C 1 or 3."""
    if x.ndim == 2:
        return x[None]
    if x.ndim == 3 and x.shape[-1] in (1, 3):
        return x.transpose(2, 0, 1)
    if x.ndim == 3 and x.shape[0] in (1, 3):
        return x
    raise UserError(
        f"{what} has shape {list(x.shape)}; give [H, W] (grayscale) or [H, W, 3] (RGB) per image"
        + (" (drop the alpha channel: x[..., :3])" if x.ndim == 3 and 4 in (x.shape[0], x.shape[-1]) else "")
    )


def _pil_image(item: Any, what: str) -> Any:
    """A PIL image from a PIL image, an image file (decoded as ``datasets`` decodes a folder) or an array."""
    import datasets
    from PIL import Image

    if isinstance(item, Image.Image):
        return item
    if isinstance(item, (str, Path)):
        if not Path(item).is_file():
            raise UserError(f"{what} '{item}' is not a file; give image files, arrays or PIL images")
        try:
            return datasets.Image().decode_example({"path": str(item), "bytes": None})
        except Exception as e:  # PIL raises many types for a file that is not an image
            raise UserError(f"cannot decode image file '{item}' ({type(e).__name__}); remove it or convert it") from e
    chw = _to_chw(_uint8(np.asarray(item), what), what)
    return Image.fromarray(chw[0] if chw.shape[0] == 1 else chw.transpose(1, 2, 0))


def image_rows(raw: Any, cfg: ImageDataConfig, info: dict[str, Any]) -> list[dict[str, Any]]:
    """Images -> rows ``{"pixels": bytes of uint8 [C, H, W]}`` of the encoder's channels and size."""
    if hasattr(raw, "detach"):  # a torch tensor
        raw = raw.detach().cpu().numpy()
    shape = (int(info["channels"]), int(info["height"]), int(info["width"]))
    mode = "L" if shape[0] == 1 else "RGB"  # the encoder's channels, whatever each input's own mode
    from_files = bool(cfg.path or cfg.hub)  # how the training images were decoded (see the module docstring)
    if isinstance(raw, np.ndarray):
        if raw.ndim not in (3, 4):
            raise UserError(
                f"got an array of shape {list(raw.shape)}; pass a batch [N, H, W] or [N, H, W, C] (one image: x[None])"
            )
        items: list[Any] = list(raw)
    elif isinstance(raw, (list, tuple)):
        items = list(raw)
    else:
        raise UserError(f"cannot embed a {type(raw).__name__}; pass an array [N, H, W(, C)] or a list of images")
    arrays = []
    for i, item in enumerate(items):
        what = f"image {i} of the input"
        if from_files or not isinstance(item, np.ndarray):
            _, chw = prepare_image(_pil_image(item, what), mode, cfg.image_size if from_files else None)
        else:  # built-in sets: uint8 arrays, data.mode by NumPy (load_images' _convert), never resized
            chw = _convert(_to_chw(_uint8(item, what), what)[None], mode)[0]
        if chw.shape != shape:
            size = f"{chw.shape[2]}x{chw.shape[1]}"
            fix = "data.image_size resizes only folder and hub images" if not from_files else "resize it"
            raise UserError(
                f"{what} is {size} with {chw.shape[0]} channel(s) after preprocessing, but the encoder reads "
                f"{shape[2]}x{shape[1]} with {shape[0]} (trained on {info.get('dataset')}); {fix}"
            )
        arrays.append({"pixels": np.ascontiguousarray(chw, dtype=np.uint8).tobytes()})
    return arrays


def image_files(folder: Path) -> list[Path]:
    from PIL import Image

    extensions = {e.lower() for e in Image.registered_extensions()}
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in extensions)


def read_images(path: Path) -> RawData:
    """An image folder (``<label>/<image>`` or images directly inside), one image file, or ``.npy`` / ``.npz``."""
    if path.is_dir():
        files = image_files(path)
        if not files:
            raise UserError(f"no image files under '{path}'; give a folder of PNG/JPEG images, a .npy or an image")
        parts = [f.relative_to(path).parts for f in files]
        # As the imagefolder builder: the folder an image lies in is its label, when every image lies in one.
        labelled = all(len(p) > 1 for p in parts)
        return RawData(files, [p[-2] for p in parts] if labelled else None, [str(Path(*p)) for p in parts])
    if path.suffix.lower() in (".npy", ".npz"):
        try:  # allow_pickle=False: a data file must not be able to run code
            loaded = np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError) as e:
            raise UserError(f"cannot read '{path}' as NumPy images; save uint8 [N, H, W(, C)] with numpy.save") from e
        if isinstance(loaded, np.ndarray):
            return RawData(loaded)
        with loaded:
            if "x" not in loaded:
                raise UserError(f"'{path}' has keys {list(loaded.keys())}; store the images as 'x' (labels as 'y')")
            labels = [str(v) for v in loaded["y"].tolist()] if "y" in loaded else None
            return RawData(loaded["x"], labels)
    return RawData([path], None, [path.name])
