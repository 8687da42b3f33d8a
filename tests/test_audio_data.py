"""Audio data: drum-type rules, the Hydrogen kits, audio folders, decoding and its errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from gsg_domains.audio.data import (
    DRUM_CLASSES,
    DRUMKITS_DIR,
    AudioDataConfig,
    drum_class,
    load_audio,
    read_clip,
    resample_clips,
    scan_drumkits,
)
from gsg_multimodal.errors import UserError

needs_drums = pytest.mark.skipif(
    not Path(DRUMKITS_DIR).is_dir(), reason="Debian package hydrogen-drumkits is not installed"
)


@pytest.mark.parametrize(
    ("name", "label"),
    [
        ('Kick (Tama Superstar 22")', "kick"),
        ("BassDrum", "kick"),
        ("c3 - bass drum 1", "kick"),
        ("Snare Rimshot (Pearl Free Floating Maple 14x3.5)", "snare"),
        ("Closed HH", "hihat"),
        ("Side OHH", "hihat"),
        ("VariBreaks Hat 1 Cl", "hihat"),
        ('Hi-Hat Pedal (Paiste Alpha Metal edge 14")', "hihat"),
        ("Floor Tom", "tom"),
        ("tomhi2", "tom"),
        ("ride-cup", "cymbal"),
        ('Crash/Ride Bell (Paiste Rude Crash/Ride 18")', "cymbal"),
        ("Zildjian Splash Choke", "cymbal"),
        ("Djembe1 Bass", "percussion"),  # a djembe's bass tone, not a bass drum
        ("Tambourine Pedal (Pearl PTM-10GH)", "percussion"),
        ("Hand Clap", "percussion"),
        # Left out: no drum named, or between classes.
        ("15", None),
        ("", None),
        ("f#4 - ", None),
        ("Sample: beats_01-39.flac", None),
        ("VariBreaks Drum 1", None),
        ("Stick", None),
        ("Rim Click (Pearl Free Floating Maple 14x3.5)", None),
        ("Whistle", None),
        ("FX", None),
        ("redo super opaco", None),
    ],
)
def test_drum_class_rules(name: str, label: str | None) -> None:
    assert drum_class(name) == label


@needs_drums
def test_scan_drumkits_labels_every_kept_file_once() -> None:
    rows, counts = scan_drumkits()
    paths = [r["path"] for r in rows]
    assert len(paths) == len(set(paths)) > 500
    assert {r["label"] for r in rows} == set(DRUM_CLASSES)
    assert all(p.is_file() for p in paths)
    assert counts["ambiguous"] > 0  # the numbered and 'Sample:' slots are left out, not guessed


@needs_drums
def test_drums_split_keeps_each_instrument_on_one_side(monkeypatch: pytest.MonkeyPatch) -> None:
    import gsg_domains.audio.data as data

    seen: dict[str, np.ndarray] = {}
    real = data.split_rows

    def spy(labels: np.ndarray, groups: np.ndarray, cfg: AudioDataConfig) -> tuple[np.ndarray, np.ndarray]:
        tr, te = real(labels, groups, cfg)
        seen.update(labels=labels, groups=groups, tr=tr, te=te)
        return tr, te

    monkeypatch.setattr(data, "split_rows", spy)
    splits = load_audio(AudioDataConfig(limit=24, max_seconds=0.2))
    assert not set(seen["groups"][seen["tr"]]) & set(seen["groups"][seen["te"]])
    assert set(seen["labels"][seen["te"]]) == set(range(len(DRUM_CLASSES)))  # stratified: every type in test
    assert splits.label_names == DRUM_CLASSES
    assert len(splits.train) == len(splits.test) == 24 and len(splits.pretrain) == 24
    assert splits.info["sample_rate"] == 16000 and splits.info["logmel_std"] > 0
    assert max(splits.train["length"]) <= 0.2 * 16000


def write(path: Path, x: np.ndarray, sr: int = 16000, **kw: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), x, sr, **kw)
    return path


def tone(seconds: float, sr: int = 16000, freq: float = 440.0) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_folder_decodes_formats_mixes_down_resamples_and_keeps_silence(tmp_path: Path) -> None:
    root = tmp_path / "clips"
    stereo = np.stack([tone(0.5, 44100), -tone(0.5, 44100)], 1)  # mixes down to silence
    write(root / "a" / "stereo44k.wav", stereo, 44100)
    write(root / "a" / "short.flac", tone(0.05))  # shorter than any crop: kept, padded later
    write(root / "a" / "tone.aiff", tone(0.3, 22050), 22050, format="AIFF")
    write(root / "b" / "silent.wav", np.zeros(8000, np.float32))
    for i in range(4):
        write(root / "b" / f"noise{i}.wav", np.random.default_rng(i).normal(0, 0.1, 4000).astype(np.float32))
    for i in range(2):
        write(root / "a" / f"tone{i}.wav", tone(0.2, freq=300 + 100 * i))
    splits = load_audio(AudioDataConfig(path=str(root), test_fraction=0.34))
    assert splits.label_names == ["a", "b"]
    assert len(splits.train) + len(splits.test) == 10
    lengths = sorted([*splits.train["length"], *splits.test["length"]])
    assert 8000 in lengths and 800 in lengths and 4800 in lengths  # 0.3 s at 22.05 kHz -> 16 kHz
    clips = [np.asarray(c) for c in [*splits.train["audio"], *splits.test["audio"]]]
    assert all(np.isfinite(c).all() for c in clips)
    assert sum(1 for c in clips if np.abs(c).max() < 1e-3) == 2  # the silent clip, the cancelled stereo one (16-bit)


def test_folder_with_train_and_test_subfolders_and_unlabelled_folder(tmp_path: Path) -> None:
    for split in ("train", "test"):
        for label in ("x", "y"):
            write(tmp_path / "split" / split / label / "c.wav", tone(0.1, freq=200 if label == "x" else 900))
            write(tmp_path / "split" / split / label / "d.wav", tone(0.2, freq=250 if label == "x" else 950))
    s = load_audio(AudioDataConfig(path=str(tmp_path / "split")))
    assert (len(s.train), len(s.test), s.label_names) == (4, 4, ["x", "y"])
    write(tmp_path / "flat" / "one.wav", tone(0.1))
    write(tmp_path / "flat" / "two.wav", tone(0.1))
    s = load_audio(AudioDataConfig(path=str(tmp_path / "flat")))
    assert s.train is None and s.test is None and len(s.pretrain) == 2


def test_unreadable_and_empty_files_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF not really a wav")
    with pytest.raises(UserError, match="bad.wav"):
        read_clip(bad, AudioDataConfig(), str(bad))
    empty = write(tmp_path / "empty.wav", np.zeros(0, np.float32))
    with pytest.raises(UserError, match="empty.wav.*no samples"):
        read_clip(empty, AudioDataConfig(), str(empty))
    write(tmp_path / "f" / "lab" / "ok.wav", tone(0.1))
    write(tmp_path / "f" / "other" / "ok.wav", tone(0.1))
    (tmp_path / "f" / "lab" / "broken.flac").write_bytes(b"\x00" * 100)
    with pytest.raises(UserError, match=r"broken\.flac") as info:
        load_audio(AudioDataConfig(path=str(tmp_path / "f")))
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"path": "/no/such/folder"}, "not a folder"),
        ({"name": "speech"}, "unknown built-in"),
        ({"name": None}, "no audio data"),
    ],
)
def test_config_mistakes_are_user_errors(overrides: dict, match: str) -> None:
    with pytest.raises(UserError, match=match):
        load_audio(AudioDataConfig(**overrides))


@pytest.mark.parametrize(
    ("key", "value"), [("sample_rate", 100), ("hop_ms", 100.0), ("f_max", 9000.0), ("test_fraction", 1.0)]
)
def test_bad_front_end_settings(key: str, value: object) -> None:
    with pytest.raises(UserError, match=f"data.{key}"):
        AudioDataConfig(**{key: value})


def test_loose_clip_next_to_label_folders_is_refused(tmp_path: Path) -> None:
    write(tmp_path / "a" / "x.wav", tone(0.1))
    write(tmp_path / "loose.wav", tone(0.1))
    with pytest.raises(UserError, match="loose.wav"):
        load_audio(AudioDataConfig(path=str(tmp_path)))


def test_batched_resampling_matches_one_clip_at_a_time() -> None:
    import torch
    import torchaudio.functional as AF

    cfg = AudioDataConfig(max_seconds=None)
    clips = [(tone(0.3, 44100, 500), 44100), (tone(0.1, 44100, 700), 44100), (tone(0.2, 16000), 16000)]
    out = resample_clips(clips, cfg)
    for (x, sr), y in zip(clips, out, strict=True):
        ref = AF.resample(torch.from_numpy(x), sr, 16000).numpy() if sr != 16000 else x
        assert y.shape == ref.shape
        np.testing.assert_allclose(y, ref, atol=1e-5)
