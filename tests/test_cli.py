"""The command line: fast help, and one clear line for each mistake a user can make."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from gsg_multimodal.cli import main

from .conftest import ROOT, TINY

CONFIG = str(ROOT / "configs" / "acsf1_gsg.yaml")


def test_help_imports_no_heavy_library() -> None:
    code = (
        "import sys; from gsg_multimodal.cli import build_parser; build_parser().format_help(); "
        "print(sorted(m for m in ('torch', 'tsai', 'transformers', 'accelerate') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    help_text = subprocess.run([sys.executable, "-m", "gsg_multimodal", "--help"], capture_output=True, text=True)
    assert help_text.returncode == 0 and "pretrain" in help_text.stdout


def one_line_error(capsys: pytest.CaptureFixture, argv: list[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err, err
    return err


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["objective.gsg_view=2"], "unknown config key 'objective.gsg_view' (did you mean 'gsg_views'?)"),
        (["trian.epochs=2"], "unknown config key 'trian' (did you mean 'train'?)"),
        (["encoder.hiden=3"], "unknown config key 'encoder.hiden' (did you mean 'hidden'?)"),
        (["train.epochs=many"], "config key 'train.epochs' must be int"),
        (["objective.gsg_views=3"], "config key 'objective.gsg_views' must be 2 | 4"),
        (["data.path=/nonexistent/series.csv"], "/nonexistent/series.csv"),
        (["data.name=NoSuchSet"], "NoSuchSet"),
        (["domain=nosuchdomain"], "unknown domain 'nosuchdomain'"),
        (["train.batch_size=64"], "larger than the data set (40 rows)"),
        (["oops"], "not of the form key=value"),
    ],
)
def test_bad_input_gives_one_clear_line(
    capsys: pytest.CaptureFixture, tmp_path: Path, overrides: list[str], expected: str
) -> None:
    err = one_line_error(capsys, ["pretrain", CONFIG, *TINY, f"output_dir={tmp_path / 'r'}", *overrides])
    assert expected in err


def test_a_bare_yaml_no_means_the_string_no() -> None:
    from gsg_multimodal.config import load_config

    # YAML 1.1 reads `no` as false; for a choice that includes "no" the user meant the word.
    assert load_config(CONFIG, ["train.mixed_precision=no"]).train.mixed_precision == "no"


def test_domains_lists_the_built_in_data_sets(capsys: pytest.CaptureFixture) -> None:
    assert main(["domains"]) == 0
    out = capsys.readouterr().out
    assert "timeseries" in out and all(name in out for name in ("ACSF1", "PLAID", "BasicMotions", "JapaneseVowels"))


def test_missing_config_file(capsys: pytest.CaptureFixture) -> None:
    assert "does not exist" in one_line_error(capsys, ["pretrain", "no/such/config.yaml"])


def test_evaluate_a_folder_that_is_not_a_run(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    assert "not a run directory" in one_line_error(capsys, ["evaluate", str(tmp_path)])


@pytest.fixture
def finished_run(tmp_path: Path) -> Path:
    run = tmp_path / "run"
    assert main(["pretrain", CONFIG, *TINY, f"output_dir={run}", "train.epochs=1", "monitor.knn_every=0"]) == 0
    return run


@pytest.mark.slow
def test_run_dir_mistakes(capsys: pytest.CaptureFixture, finished_run: Path) -> None:
    base = ["pretrain", CONFIG, *TINY, f"output_dir={finished_run}", "train.epochs=1", "monitor.knn_every=0"]
    # Starting again over a run would destroy it.
    assert "already holds a run" in one_line_error(capsys, base)
    # Resuming with a different config would silently mix two experiments.
    err = one_line_error(capsys, [*base, "objective.method=simsiam", "--resume"])
    assert "different config" in err and "objective.method" in err
    # Resuming from a run with a checkpoint made by another domain.
    toy = finished_run.parent / "toy.yaml"
    toy.write_text(yaml.safe_dump({"domain": "tests.toy_domain:DigitsDomain", "output_dir": str(finished_run)}))
    err = one_line_error(capsys, ["pretrain", str(toy), "--resume"])
    assert "different config" in err and "domain" in err


@pytest.mark.slow
def test_encoder_from_other_data_or_domain(capsys: pytest.CaptureFixture, finished_run: Path) -> None:
    config_file = finished_run / "config.yaml"
    cfg = yaml.safe_load(config_file.read_text())
    cfg["data"]["name"] = "GunPoint"  # 1 channel; the encoder was trained on 6
    config_file.write_text(yaml.safe_dump(cfg))
    assert "does not match the data" in one_line_error(capsys, ["evaluate", str(finished_run)])

    export = finished_run / "encoder" / "config.json"
    meta = json.loads(export.read_text())
    meta["encoder"]["hidden"] = 8  # weights no longer fit the described encoder
    export.write_text(json.dumps(meta))
    from gsg_multimodal import load_encoder
    from gsg_multimodal.errors import UserError

    with pytest.raises(UserError, match="do not fit"):
        load_encoder(str(finished_run))
    meta["domain"] = "tests.toy_domain:DigitsDomain"
    export.write_text(json.dumps(meta))
    with pytest.raises(UserError, match="does not fit domain"):
        load_encoder(str(finished_run))
    meta.update(encoder={"hidden": 32}, data={}, views={})
    export.write_text(json.dumps(meta))
    with pytest.raises(UserError, match="do not fit"):
        load_encoder(str(finished_run))


@pytest.mark.slow
def test_a_new_domain_plugs_in_without_touching_the_core(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    run = tmp_path / "digits"
    config = tmp_path / "digits.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "domain": "tests.toy_domain:DigitsDomain",
                "output_dir": str(run),
                "encoder": {"hidden": 32},
                "model": {"projector_hidden": 32, "projector_dim": 32, "predictor_hidden": 8},
                "train": {"epochs": 2, "batch_size": 32, "progress_bar": False, "trackers": ["none"], "cpu": True},
                "eval": {"cv_folds": 2},
            }
        )
    )
    assert main(["pretrain", str(config)]) == 0
    assert main(["evaluate", str(run)]) == 0
    assert json.loads((run / "eval.json").read_text())["knn"]["accuracy"] > 0.5
    # A section of another domain is refused by key name.
    err = one_line_error(capsys, ["pretrain", str(config), "data.name=ACSF1", f"output_dir={tmp_path / 'x'}"])
    assert "unknown config key 'data.name'" in err


@pytest.mark.parametrize(
    ("flag", "expected"), [(["--workers", "0"], "--workers must be 1 or more"), (["--max-cells", "-1"], "--max-cells")]
)
def test_benchmark_rejects_bad_counts_in_one_line(
    capsys: pytest.CaptureFixture, flag: list[str], expected: str
) -> None:
    assert expected in one_line_error(capsys, ["benchmark", "smoke", *flag])
