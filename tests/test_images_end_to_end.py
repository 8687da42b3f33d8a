"""Real runs on a small slice of the real Fashion-MNIST: pretrain -> evaluate (and random init) -> views PNG."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml
from PIL import Image
from safetensors.torch import load_file

from gsg_domains.images import data
from gsg_multimodal import load_encoder
from gsg_multimodal.cli import main
from gsg_multimodal.errors import UserError

from .conftest import ROOT

CONFIG = str(ROOT / "configs" / "fmnist_gsg.yaml")
TINY = [
    "data.max_train=256",
    "data.max_test=200",
    "encoder.width=4",
    "model.projector_hidden=32",
    "model.projector_dim=32",
    "model.predictor_hidden=8",
    "train.epochs=1",
    "train.steps=null",  # the recipe counts steps; these tiny runs count one epoch
    "train.batch_size=32",
    "train.log_every=1",
    "train.progress_bar=false",
    "train.trackers=[none]",
    "train.cpu=true",
    "eval.cv_folds=2",
    "eval.svm_c=[1.0]",
    "eval.logreg_c=[1.0]",
]
pytestmark = pytest.mark.skipif(
    not data.FASHION_MNIST_DIR.is_dir(), reason="apt-get install dataset-fashion-mnist (.ci/run does)"
)


@pytest.mark.slow
def test_gsg_pretrain_then_evaluate_on_real_fashion_mnist(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    run = tmp_path / "gsg"
    assert main(["pretrain", CONFIG, *TINY, f"output_dir={run}"]) == 0
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in rows if "loss" in r]
    assert len(losses) == 8 and all(-1.0 <= v <= 1.0 for v in losses)  # 256 images / batch 32
    assert main(["evaluate", str(run)]) == 0
    assert main(["evaluate", str(run), "--random-init"]) == 0
    assert "random init" in capsys.readouterr().out
    for name in ("eval.json", "eval_random.json"):
        res = json.loads((run / name).read_text())
        for probe in ("knn", "linear", "svm"):
            # 10 balanced classes: chance is 10 %; even a random CNN's features separate clothes far better.
            assert 0.3 < res[probe]["accuracy"] <= 1.0, (name, probe, res[probe])

    # A checkpoint's channel count is part of its data description: other data is refused, clearly.
    config = yaml.safe_load((run / "config.yaml").read_text())
    config["data"]["mode"] = "RGB"
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    assert main(["evaluate", str(run)]) == 2
    assert "'channels': 1" in capsys.readouterr().err
    encoder = load_encoder(str(run))
    with pytest.raises(UserError, match="built for 1-channel images"):
        encoder(torch.zeros(2, 3, 28, 28))


def test_same_seed_same_run_bit_for_bit(tmp_path: Path) -> None:
    short = [*TINY, "train.max_steps=3", "objective.gsg_views=2"]
    for name in ("a", "b"):
        assert main(["pretrain", CONFIG, *short, f"output_dir={tmp_path / name}"]) == 0
    last = [sorted((tmp_path / n / "checkpoints").glob("step-*"))[-1] for n in ("a", "b")]
    a, b = (load_file(str(path / "model.safetensors")) for path in last)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_views_png_shows_samples_and_their_views(tmp_path: Path) -> None:
    out = tmp_path / "views.png"
    assert main(["views", CONFIG, "data.max_train=16", "data.max_test=16", "--samples", "3", "--out", str(out)]) == 0
    with Image.open(out) as img:
        width, height = img.size
    assert width > 300 and height > 200  # 3 rows x (original + 4 views)


@pytest.mark.slow
def test_cifar_resnet18_recipe_takes_steps_on_an_image_folder(tmp_path: Path) -> None:
    """The GPU recipe's code path (RGB, cifar preset, ResNet-18 small stem) on a tiny folder, on the CPU."""
    from .test_images_data import make_folder

    folder = make_folder(tmp_path / "imgs", {"train": [("RGB", (16, 16))] * 4, "test": [("RGB", (16, 16))] * 2})
    config = str(ROOT / "configs" / "cifar10_resnet18_gpu.yaml")
    small = [f"data.path={folder}", "data.image_column=image", "train.batch_size=2", "train.max_steps=1",
             "train.mixed_precision='no'", "train.num_workers=0", "train.cpu=true", "train.progress_bar=false",
             "train.trackers=[none]", "monitor.knn_every=0", "model.projector_hidden=32", "model.projector_dim=32",
             "model.predictor_hidden=8", "train.log_every=1", f"output_dir={tmp_path / 'run'}"]  # fmt: skip
    assert main(["pretrain", config, *small]) == 0
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "loss" in r] == [1] and -1 <= rows[0]["loss"] <= 1
