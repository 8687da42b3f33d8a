"""`gsg embed` and `GSGEncoder.embed`: raw data in, the features evaluation computed out, for every domain.

The key property, per domain, on a tiny real run: embedding the raw test data (the file as it ships, or
the arrays / images / clips / texts a user holds) gives the features ``features.encode_split`` gave the
run's own loaded test split. Then the command's file format, its refusals, and exports made before
they carried their preprocessing.
"""

from __future__ import annotations

import json
import re
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

from gsg_domains.images import data as image_data
from gsg_domains.timeseries.data import _builtin_files, read_ts_file
from gsg_multimodal import GSGEncoder
from gsg_multimodal.cli import main
from gsg_multimodal.embed import METADATA_KEY, read_features
from gsg_multimodal.errors import UserError
from gsg_multimodal.evaluate import run_features
from gsg_multimodal.runtime import reset_accelerate

from . import test_audio_end_to_end as audio_tests
from . import test_images_end_to_end as image_tests
from . import test_text_end_to_end as text_tests
from .conftest import ROOT, TINY

TS_CONFIG = str(ROOT / "configs" / "arrowhead_gsg.yaml")  # data.normalize: dataset, native length
TS_TINY = [*TINY, "data.name=ItalyPowerDemand", "views.length=null", "train.steps=2", "monitor.knn_every=0"]
TIGHT = {"rtol": 1e-5, "atol": 1e-6}


def _pretrain(config: str, overrides: list[str], run: Path) -> Path:
    assert main(["pretrain", config, *overrides, f"output_dir={run}", "monitor.knn_every=0"]) == 0
    reset_accelerate()
    return run


def _eval_features(run: Path) -> np.ndarray:
    """What evaluation computed: ``encode_split`` on the run's own loaded test split."""
    feats = run_features(run, random_init=False, splits=("test",))[0]["test"][0]
    reset_accelerate()
    return feats


def _embed(capsys: pytest.CaptureFixture, *argv: str) -> str:
    assert main(["embed", *argv]) == 0, capsys.readouterr().err
    return capsys.readouterr().out


def _one_line_error(capsys: pytest.CaptureFixture, *argv: str) -> str:
    assert main(["embed", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err, err
    return err


@pytest.fixture(scope="module")
def ts_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    """A tiny GSG run on ItalyPowerDemand (data.normalize=dataset) and its evaluation features of the test split."""
    run = _pretrain(TS_CONFIG, TS_TINY, tmp_path_factory.mktemp("ts") / "run")
    return run, _eval_features(run)


# ---------------------------------------------------------------- the key property, per domain


def test_timeseries_raw_ts_file_gives_the_evaluation_features(ts_run, tmp_path: Path, capsys) -> None:
    run, expected = ts_run
    config = json.loads((run / "encoder" / "config.json").read_text())
    assert config["version"] == 3 and config["data"]["normalize"] == "dataset"
    assert len(config["info"]["channel_mean"]) == len(config["info"]["channel_std"]) == 1  # in the export
    test_file = _builtin_files("ItalyPowerDemand")[2]
    raw, labels = read_ts_file(test_file)  # the raw values as the .ts file ships them

    out = tmp_path / "features.parquet"
    printed = _embed(capsys, str(run), str(test_file), "--out", str(out), "--batch-size", "50")
    assert f"{len(raw)} rows x 32 features" in printed
    features, columns = read_features(out)
    np.testing.assert_allclose(features, expected, **TIGHT)
    assert columns["index"] == list(range(len(raw))) and columns["label"] == labels

    encoder = GSGEncoder.from_pretrained(str(run / "encoder"))
    np.testing.assert_allclose(encoder.embed(raw, batch_size=7), expected, **TIGHT)  # a list of [C, T]
    np.testing.assert_allclose(encoder.embed(np.stack(raw)[:, 0]), expected, **TIGHT)  # [N, T]
    assert encoder.embed(np.stack(raw)).dtype == np.float32 and not encoder.training  # [N, C, T]


def test_timeseries_resampled_and_per_series_normalised_run(tmp_path: Path) -> None:
    run = _pretrain(TS_CONFIG, [*TS_TINY, "views.length=16", "data.normalize=series"], tmp_path / "run")
    raw, _ = read_ts_file(_builtin_files("ItalyPowerDemand")[2])
    features = GSGEncoder.from_pretrained(str(run)).embed(raw)
    np.testing.assert_allclose(features, _eval_features(run), **TIGHT)


def test_variable_length_series_embed_as_each_would_alone(ts_run) -> None:
    run, _ = ts_run
    rng = np.random.default_rng(0)
    series = [rng.standard_normal((1, n)).astype(np.float32) for n in (5, 24, 40, 9)]
    encoder = GSGEncoder.from_pretrained(str(run))
    together = encoder.embed(series, batch_size=4)
    alone = np.concatenate([encoder.embed([s]) for s in series])
    np.testing.assert_allclose(together, alone, rtol=1e-4, atol=1e-5)  # padding never leaks into features


@pytest.mark.slow
@pytest.mark.skipif(not image_data.FASHION_MNIST_DIR.is_dir(), reason="apt-get install dataset-fashion-mnist")
def test_images_builtin_arrays_and_pil_images_give_the_evaluation_features(tmp_path: Path, capsys) -> None:
    from PIL import Image

    overrides = [*image_tests.TINY, "data.max_train=64", "data.max_test=40"]
    run = _pretrain(image_tests.CONFIG, overrides, tmp_path / "run")
    expected = _eval_features(run)
    raw = image_data.read_idx(image_data.FASHION_MNIST_DIR / "t10k-images-idx3-ubyte.gz")[:40]  # uint8 [N, H, W]
    encoder = GSGEncoder.from_pretrained(str(run))
    for images in (raw, raw[..., None], raw.astype(np.float32) / 255, [Image.fromarray(a) for a in raw]):
        np.testing.assert_allclose(encoder.embed(images, batch_size=16), expected, **TIGHT)
    np.save(tmp_path / "images.npy", raw)
    _embed(capsys, str(run), str(tmp_path / "images.npy"), "--out", str(tmp_path / "f.parquet"))
    np.testing.assert_allclose(read_features(tmp_path / "f.parquet")[0], expected, **TIGHT)
    with pytest.raises(UserError, match="encoder reads 28x28"):
        encoder.embed(np.zeros((2, 32, 32), dtype=np.uint8))


def _image_folder(root: Path) -> None:
    """RGB PNGs of mixed sizes in <split>/<label>/, like a user's photo folder."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, n in (("train", 6), ("test", 4)):
        for label, tint in (("red", (200, 40, 40)), ("blue", (40, 40, 200))):
            (root / split / label).mkdir(parents=True)
            for i in range(n):
                h, w = rng.integers(18, 30, size=2)
                pixels = np.clip(rng.normal(tint, 40, size=(h, w, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(root / split / label / f"{i}.png")


@pytest.mark.slow
def test_image_folder_run_resized_by_data_image_size(tmp_path: Path, capsys) -> None:
    _image_folder(tmp_path / "photos")
    overrides = [*image_tests.TINY, f"data.path={tmp_path / 'photos'}", "data.image_size=16", "train.batch_size=4"]
    run = _pretrain(image_tests.CONFIG, overrides, tmp_path / "run")
    expected = _eval_features(run)
    out = tmp_path / "f.parquet"
    _embed(capsys, str(run), str(tmp_path / "photos" / "test"), "--out", str(out))
    features, columns = read_features(out)
    np.testing.assert_allclose(features, expected, **TIGHT)
    assert columns["id"][:2] == ["blue/0.png", "blue/1.png"] and columns["label"] == ["blue"] * 4 + ["red"] * 4
    files = [tmp_path / "photos" / "test" / i for i in columns["id"]]
    np.testing.assert_allclose(GSGEncoder.from_pretrained(str(run)).embed(files), expected, **TIGHT)


def _audio_folder(root: Path, rate: int = 22050) -> None:
    """Decaying tones of two pitches at 22.05 kHz (the encoder works at 16 kHz), in <split>/<label>/."""
    import soundfile as sf

    rng = np.random.default_rng(0)
    for split, n in (("train", 8), ("test", 4)):
        for label, freq in (("low", 220.0), ("high", 1760.0)):
            (root / split / label).mkdir(parents=True)
            for i in range(n):
                t = np.arange(int(rate * rng.uniform(0.2, 0.8))) / rate
                x = 0.5 * np.sin(2 * np.pi * freq * t) * np.exp(-4 * t) + 0.01 * rng.standard_normal(len(t))
                sf.write(root / split / label / f"{i}.wav", x.astype(np.float32), rate)


@pytest.mark.slow
def test_audio_files_and_waveforms_give_the_evaluation_features(tmp_path: Path, capsys) -> None:
    import soundfile as sf

    _audio_folder(tmp_path / "clips")
    overrides = [*audio_tests.TINY, f"data.path={tmp_path / 'clips'}", "data.limit=null"]
    run = _pretrain(str(ROOT / "configs" / "drums_gsg.yaml"), overrides, tmp_path / "run")
    expected = _eval_features(run)
    out = tmp_path / "f.parquet"
    _embed(capsys, str(run), str(tmp_path / "clips" / "test"), "--out", str(out))
    features, columns = read_features(out)
    np.testing.assert_allclose(features, expected, **TIGHT)
    assert columns["label"] == ["high"] * 4 + ["low"] * 4
    files = [tmp_path / "clips" / "test" / i for i in columns["id"]]
    encoder = GSGEncoder.from_pretrained(str(run))
    np.testing.assert_allclose(encoder.embed(files, batch_size=3), expected, **TIGHT)
    waves = [sf.read(f, dtype="float32")[0] for f in files]  # resampled from 22.05 kHz as training did
    np.testing.assert_allclose(encoder.embed(waves, sample_rate=22050), expected, rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_texts_give_the_evaluation_features(tmp_path: Path, capsys) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from gsg_multimodal.evaluate import load_run_config
    from gsg_multimodal.runtime import load_bound

    overrides = [*text_tests.TINY_TEXT, *text_tests.TINY_BERT, "train.max_steps=1", "data.pretrain_limit=8"]
    run = _pretrain(text_tests.CONFIG, [*overrides, "train.cpu=true"], tmp_path / "run")
    texts = list(load_bound(load_run_config(run))[1].test["text"])
    pq.write_table(pa.table({"review": texts}), tmp_path / "texts.parquet")
    out = tmp_path / "f.parquet"
    printed = _embed(capsys, str(run), str(tmp_path / "texts.parquet"), "data.text_column=review", "--out", str(out))
    assert "checkpoint" in printed and not (run / "encoder").exists()  # stopped by max_steps: the run is left as is
    assert main(["export", str(run)]) == 0
    expected = _eval_features(run)
    np.testing.assert_allclose(read_features(out)[0], expected, **TIGHT)
    np.testing.assert_allclose(GSGEncoder.from_pretrained(str(run)).embed(texts, batch_size=3), expected, **TIGHT)


# ---------------------------------------------------------------- the command: file, sources, refusals


def test_the_parquet_file_and_a_run_without_export(ts_run, tmp_path: Path, capsys) -> None:
    run, expected = ts_run
    stopped = tmp_path / "stopped"
    shutil.copytree(run, stopped)
    shutil.rmtree(stopped / "encoder")  # as after train.max_steps or a crash: only checkpoints
    test_file = _builtin_files("ItalyPowerDemand")[2]
    out = tmp_path / "sub" / "f.parquet"
    assert "checkpoint" in _embed(capsys, str(stopped), str(test_file), "--out", str(out))
    assert not (stopped / "encoder").exists() and not list(out.parent.glob(".*tmp*"))
    np.testing.assert_allclose(read_features(out)[0], expected, **TIGHT)

    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(out)
    assert table.schema.field("features").type == pa.list_(pa.float32(), 32)  # fixed size: D known from the schema
    meta = json.loads(table.schema.metadata[METADATA_KEY])
    assert meta["domain"] == "timeseries" and meta["out_dim"] == 32 and meta["data"] == str(test_file)
    assert "gsg embed" in (run / "encoder" / "README.md").read_text()  # the model card shows the way in

    assert "already exists" in _one_line_error(capsys, str(run), str(test_file), "--out", str(out))
    _embed(capsys, str(run), str(test_file), "--out", str(out), "--overwrite")


def test_bad_input_gives_one_clear_line(ts_run, tmp_path: Path, capsys) -> None:
    run, _ = ts_run
    ts = str(_builtin_files("ItalyPowerDemand")[2])
    out = str(tmp_path / "f.parquet")
    six_channels = str(_builtin_files("BasicMotions")[2])
    np.save(tmp_path / "nan.npy", np.array([[1.0, np.nan, 3.0, 4.0]], dtype=np.float32))
    (tmp_path / "words.txt").write_text("not a series\n")
    cases = {
        "does not exist": [str(run), str(tmp_path / "missing.ts")],
        "has 6 channel(s), but the encoder reads 1": [str(run), six_channels],
        "NaN or infinite": [str(run), str(tmp_path / "nan.npy")],
        "cannot tell the format": [str(run), str(tmp_path / "words.txt")],
        "data.normalize cannot be set": [str(run), ts, "data.normalize=series"],
        "unknown data option 'data.colour'": [str(run), ts, "data.colour=red"],
        "takes data.* options": [str(run), ts, "train.steps=3"],
        "neither an encoder export": [str(tmp_path), ts],
    }
    for expected, argv in cases.items():
        assert expected in _one_line_error(capsys, *argv, "--out", out), expected
    assert not Path(out).exists()
    _embed(capsys, str(run), str(tmp_path / "nan.npy"), "data.nan_policy=interpolate", "--out", out)  # how to read
    encoder = GSGEncoder.from_pretrained(str(run))
    with pytest.raises(UserError, match="pass a batch"):
        encoder.embed(np.zeros(24, dtype=np.float32))
    with pytest.raises(UserError, match="has 3 channel"):
        encoder.embed(np.zeros((2, 3, 24), dtype=np.float32))


def test_an_export_without_statistics_recomputes_them_or_says_why(ts_run, tmp_path: Path) -> None:
    """Exports of format v2 lack the channel statistics: embed re-reads the training data, evaluation still runs."""
    run, expected = ts_run
    old = tmp_path / "old"
    shutil.copytree(run, old)
    config_file = old / "encoder" / "config.json"
    config = json.loads(config_file.read_text())
    config["version"] = 2
    config["info"] = {k: v for k, v in config["info"].items() if k not in ("channel_mean", "channel_std")}
    config_file.write_text(json.dumps(config))
    raw, _ = read_ts_file(_builtin_files("ItalyPowerDemand")[2])
    with pytest.warns(UserWarning, match="recomputed"):
        np.testing.assert_allclose(GSGEncoder.from_pretrained(str(old)).embed(raw), expected, **TIGHT)
    np.testing.assert_allclose(_eval_features(old), expected, **TIGHT)  # its info still matches the data

    config["data"] = {**config["data"], "name": None, "path": str(tmp_path / "gone.npy")}
    config_file.write_text(json.dumps(config))
    with warnings.catch_warnings(), pytest.raises(UserError, match="exported before exports carried"):
        GSGEncoder.from_pretrained(str(old)).embed(raw)


def test_each_domain_refuses_raw_data_of_the_wrong_kind_by_name() -> None:
    from gsg_domains.audio.data import AudioDataConfig
    from gsg_domains.audio.raw import audio_rows
    from gsg_domains.images.data import ImageDataConfig
    from gsg_domains.images.raw import image_rows
    from gsg_domains.text.raw import text_rows
    from gsg_domains.timeseries.raw import as_series

    image_info = {"channels": 1, "height": 8, "width": 8, "dataset": "x"}
    cases = [
        (lambda: as_series("series.npy"), "not a file name"),
        (lambda: as_series({"x": 1}), "cannot embed a dict"),
        (lambda: as_series([np.array(["a", "b"])]), "series 0 of the input is <U1"),
        (lambda: image_rows(np.zeros((8, 8)), ImageDataConfig(), image_info), "pass a batch"),
        (lambda: image_rows(np.full((1, 8, 8), 2.0), ImageDataConfig(), image_info), "floats outside [0, 1]"),
        (lambda: image_rows(np.zeros((1, 8, 8, 4), np.uint8), ImageDataConfig(), image_info), "drop the alpha"),
        (lambda: image_rows(["/nowhere.png"], ImageDataConfig(), image_info), "is not a file"),
        (lambda: audio_rows(np.zeros(100), AudioDataConfig()), "pass a list of clips"),
        (lambda: audio_rows([np.zeros((2, 100))], AudioDataConfig()), "mix channels down"),
        (lambda: audio_rows([np.array([0.0, np.nan])], AudioDataConfig()), "NaN"),
        (lambda: text_rows("one text"), "not one string"),
        (lambda: text_rows(["fine", None]), "text 1 of the input is NoneType"),
    ]
    for call, message in cases:
        with pytest.raises(UserError, match=re.escape(message)):
            call()


def test_info_without_keys_a_domain_added_later_still_matches() -> None:
    """Checkpoints and exports written before the channel statistics joined info still resume and evaluate."""
    from gsg_domains.timeseries import TimeSeriesDomain
    from gsg_domains.timeseries.augment import TimeSeriesViewsConfig
    from gsg_domains.timeseries.data import TimeSeriesDataConfig
    from gsg_domains.timeseries.encoders import TimeSeriesEncoderConfig

    domain = TimeSeriesDomain(TimeSeriesDataConfig(), TimeSeriesViewsConfig(), TimeSeriesEncoderConfig())
    old = {"channels": 1, "max_length": 24, "min_length": 24, "num_classes": 2, "dataset": "X"}
    domain.bind({**old, "channel_mean": [0.5], "channel_std": [2.0]})
    assert domain.info_matches(old) and domain.info_matches(dict(domain.info))
    assert not domain.info_matches({**old, "channel_mean": [0.4], "channel_std": [2.0]})  # other statistics
    assert not domain.info_matches({**old, "channels": 2})
    assert not domain.info_matches({k: v for k, v in old.items() if k != "channels"})  # not a later key
