"""scripts/make_spoken_words.py without espeak-ng (the noise it adds to each clip, its argument checks), and
scripts/regroup_by_voice.py."""

from __future__ import annotations

import math
import sys
import wave
from pathlib import Path

import numpy as np
import pytest

from .conftest import ROOT

sys.path.insert(0, str(ROOT / "scripts"))
try:
    import make_spoken_words
    import regroup_by_voice
finally:
    sys.path.pop(0)


def _write_wav(path: Path, samples: np.ndarray, rate: int = 22050) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.astype("<i2").tobytes())


def _read_wav(path: Path) -> np.ndarray:
    with wave.open(str(path), "rb") as w:
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float64)


def _word_like(n: int = 22050) -> np.ndarray:
    """A tone in the middle of silence, as espeak-ng's clips are: the SNR must ignore the silence."""
    x = np.zeros(n)
    t = np.arange(n // 2)
    x[n // 4 : n // 4 + n // 2] = 8000 * np.sin(2 * math.pi * 440 * t / 22050)
    return x


def test_noise_is_added_at_the_drawn_snr_over_the_voiced_part(tmp_path: Path) -> None:
    clean = _word_like()
    voiced = slice(len(clean) // 4, len(clean) // 4 + len(clean) // 2)
    for name in ("train/yes/a.wav", "train/yes/b.wav", "test/no/c.wav", "test/no/d.wav"):
        path = tmp_path / name.replace("/", "_")
        _write_wav(path, clean)
        make_spoken_words.add_noise(path, name, ["10"], seed=0)
        noise = _read_wav(path) - clean
        snr = 10 * math.log10(np.mean(clean[voiced] ** 2) / np.mean(noise**2))
        assert snr == pytest.approx(10.0, abs=0.3), name
        assert np.abs(noise[: len(clean) // 4]).max() > 0  # the silence gets noise too


def test_noise_depends_only_on_the_seed_and_the_clip_name(tmp_path: Path) -> None:
    def noisy(name: str, seed: int) -> bytes:
        path = tmp_path / "clip.wav"
        _write_wav(path, _word_like())
        make_spoken_words.add_noise(path, name, ["5", "20"], seed=seed)
        return path.read_bytes()

    assert noisy("train/go/v.wav", 0) == noisy("train/go/v.wav", 0)
    assert noisy("train/go/v.wav", 0) != noisy("train/go/w.wav", 0)
    assert noisy("train/go/v.wav", 0) != noisy("train/go/v.wav", 1)


def test_clean_leaves_the_clip_as_synthesised(tmp_path: Path) -> None:
    path = tmp_path / "clip.wav"
    _write_wav(path, _word_like())
    before = path.read_bytes()
    make_spoken_words.add_noise(path, "train/up/v.wav", ["clean"], seed=0)
    assert path.read_bytes() == before


def test_a_bad_snr_is_refused_before_anything_is_synthesised(tmp_path: Path) -> None:
    out = tmp_path / "words"
    # `true` stands in for espeak-ng: the arguments are checked before it is ever called.
    with pytest.raises(SystemExit, match="--snr-db value 'loud'"):
        make_spoken_words.main([str(out), "--snr-db", "clean,loud", "--espeak", "true"])
    assert not out.exists()


def test_regrouping_by_voice_puts_each_voice_in_both_splits_with_disjoint_words(tmp_path: Path) -> None:
    source = tmp_path / "words"
    for word in ("bed", "cat", "dog", "up"):
        for voice in ("en-us+m1", "en-gb+f2"):
            clip = source / "train" / word / f"{voice}_s140_p35.wav"
            clip.parent.mkdir(parents=True, exist_ok=True)
            _write_wav(clip, _word_like(2205))
    out = tmp_path / "voices"
    assert regroup_by_voice.regroup(source, out) == (4, 4)
    for split, words in (("train", {"bed", "cat"}), ("test", {"dog", "up"})):
        assert sorted(p.name for p in (out / split).iterdir()) == ["en-gb+f2", "en-us+m1"]
        links = list((out / split).glob("*/*.wav"))
        assert {p.name.split("_")[0] for p in links} == words and all(p.is_symlink() for p in links)
    with pytest.raises(SystemExit, match="exists"):
        regroup_by_voice.regroup(source, out)  # never writes into an existing folder
    with pytest.raises(SystemExit, match="fewer than two word folders"):
        regroup_by_voice.regroup(tmp_path / "nothing", tmp_path / "v2")
