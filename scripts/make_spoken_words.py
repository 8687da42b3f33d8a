#!/usr/bin/env python3
"""Build a small, SYNTHETIC spoken-word data set with espeak-ng, as an ``audiofolder``.

    python scripts/make_spoken_words.py data/spoken_words

writes ``OUT/{train,test}/<word>/<accent>+<variant>_s<speed>_p<pitch>.wav`` and ``OUT/README.md``.
Every clip is one word (the label) spoken by one espeak-ng voice (an accent plus a voice
variant) at one speed and pitch, with noise added at a signal-to-noise ratio drawn per clip
(white or pink noise, or none). The split is by voice: no voice of the test split is heard in
training, so a probe must recognise the word across voices, not the voice. The voices are
formant-synthesised, not recorded people: numbers measured on this set say nothing about real
speech. The defaults are the 30 words of Google's Speech Commands v1 x 64 voices x 2 speeds x
2 pitches = 7,680 clips (5,760 train, 1,920 test; about a minute on 2 cores). Needs NumPy and
the ``espeak-ng`` program. The output is the same on every run with the same arguments and
espeak-ng version: the noise is drawn from a seed made of ``--seed`` and the clip's name.
"""

from __future__ import annotations

import argparse
import itertools
import math
import shutil
import subprocess
import sys
import wave
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

# The 30 words of Speech Commands v1 (Warden, 2018), so the label set is a familiar one.
WORDS = [
    "bed", "bird", "cat", "dog", "down", "eight", "five", "four", "go", "happy",
    "house", "left", "marvin", "nine", "no", "off", "on", "one", "right", "seven",
    "sheila", "six", "stop", "three", "tree", "two", "up", "wow", "yes", "zero",
]  # fmt: skip
ACCENTS = ["en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-us-nyc", "en-gb-x-gbclan", "en-gb-x-gbcwmd"]
VARIANTS = ["m1", "m2", "m3", "m4", "f1", "f2", "f3", "f4"]
SPEEDS = [140, 180]  # words per minute
PITCHES = [35, 65]  # espeak-ng's 0..99 scale, 50 = the voice's default
NOISE_SNR_DB = ["clean", "20", "10", "5"]  # one drawn per clip, uniformly
NOISE_KINDS = ["white", "pink"]  # one drawn per noisy clip, uniformly


def _csv(kind: type) -> callable:
    return lambda text: [kind(v) for v in text.split(",") if v.strip()]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("out_dir", type=Path, help="folder to create (must not exist yet, or be empty)")
    p.add_argument("--words", type=_csv(str), default=WORDS, help="comma-separated words (the labels)")
    p.add_argument("--accents", type=_csv(str), default=ACCENTS, help="espeak-ng voices (see espeak-ng --voices=en)")
    p.add_argument("--variants", type=_csv(str), default=VARIANTS, help="voice variants (m1..m7, f1..f5, ...)")
    p.add_argument("--speeds", type=_csv(int), default=SPEEDS, help="speaking rates, words per minute")
    p.add_argument("--pitches", type=_csv(int), default=PITCHES, help="pitches, 0..99")
    p.add_argument(
        "--snr-db",
        type=_csv(str),
        default=NOISE_SNR_DB,
        help="signal-to-noise ratios in dB to draw from per clip; 'clean' adds no noise",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the noise draws")
    p.add_argument(
        "--test-every", type=int, default=4, help="every Nth voice (accent+variant, in order) is held out for test"
    )
    p.add_argument("--espeak", default="espeak-ng", help="the espeak-ng program")
    return p.parse_args(argv)


def build(args: argparse.Namespace) -> dict[str, int]:
    """Synthesise every clip; returns the number of clips per split."""
    exe = shutil.which(args.espeak)
    if exe is None:
        raise SystemExit(f"error: '{args.espeak}' was not found; install it (apt-get install espeak-ng)")
    if args.out_dir.exists() and any(args.out_dir.iterdir()):
        raise SystemExit(f"error: '{args.out_dir}' is not empty; choose a new folder or remove it")
    if args.test_every < 2:
        raise SystemExit("error: --test-every must be at least 2 so that both splits have voices")
    voices = [f"{a}+{v}" for a, v in itertools.product(args.accents, args.variants)]
    if len(voices) < 2:
        raise SystemExit("error: give at least two voices (accents x variants) so that train and test both get one")
    for snr in args.snr_db:
        if snr != "clean" and not _is_number(snr):
            raise SystemExit(f"error: --snr-db value '{snr}' is neither a number of dB nor 'clean'")
    # Voice k goes to test when k % test_every == test_every - 1. With the defaults (8 variants, every
    # 4th) that is variants m4 and f4 in every accent: their timbre is never heard in training.
    split_of = {v: "test" if k % args.test_every == args.test_every - 1 else "train" for k, v in enumerate(voices)}
    jobs = []
    for word, voice, speed, pitch in itertools.product(args.words, voices, args.speeds, args.pitches):
        path = args.out_dir / split_of[voice] / word / f"{voice}_s{speed}_p{pitch}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        jobs.append(([exe, "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", str(path), word], path))

    def run(job: tuple[list[str], Path]) -> None:
        cmd, path = job
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0 or not path.is_file() or path.stat().st_size <= 44:  # 44 = an empty WAV header
            raise SystemExit(f"error: espeak-ng failed for {' '.join(cmd[1:])}: {done.stderr.strip() or 'no audio'}")
        add_noise(path, path.relative_to(args.out_dir).as_posix(), args.snr_db, args.seed)

    with ThreadPoolExecutor(max_workers=4) as pool:  # each call is a short-lived process
        list(pool.map(run, jobs))
    counts = {s: sum(1 for v in voices if split_of[v] == s) for s in ("train", "test")}
    clips = {s: n * len(args.words) * len(args.speeds) * len(args.pitches) for s, n in counts.items()}
    version = subprocess.run([exe, "--version"], capture_output=True, text=True).stdout.split("Data at:")[0].strip()
    test_voices = ", ".join(v for v in voices if split_of[v] == "test")
    (args.out_dir / "README.md").write_text(
        "# Spoken words (SYNTHETIC)\n\n"
        f"Made by `scripts/make_spoken_words.py` with {version}. Every clip is synthetic speech from a\n"
        "formant synthesiser, not a recording of a person; results on it do not transfer to real speech.\n\n"
        f"- words (labels): {', '.join(args.words)}\n"
        f"- voices: {len(voices)} (accent+variant); speeds {args.speeds} wpm; pitches {args.pitches}\n"
        f"- noise: per clip, an SNR drawn from {args.snr_db} dB ('clean': none), white or pink (seed {args.seed})\n"
        f"- split by voice: test voices are {test_voices}\n"
        f"- clips: {clips['train']} train, {clips['test']} test\n\n"
        "Layout: `<split>/<word>/<voice>_s<speed>_p<pitch>.wav` (an audiofolder).\n"
    )
    return clips


def _is_number(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def add_noise(path: Path, name: str, snr_choices: list[str], seed: int) -> None:
    """Rewrite the 16-bit mono WAV at ``path`` with white or pink noise at an SNR drawn from ``snr_choices``.

    The draw depends only on ``seed`` and ``name`` (the clip's path inside the data set), so a rerun
    writes the same file and clips do not share noise. The SNR is relative to the clip's power over
    its voiced part (samples above 1 % of its peak), so leading and trailing silence do not lower it.
    """
    rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
    snr = snr_choices[int(rng.integers(len(snr_choices)))]
    if snr == "clean":
        return
    with wave.open(str(path), "rb") as w:
        params = w.getparams()
        x = np.frombuffer(w.readframes(params.nframes), dtype="<i2").astype(np.float64)
    voiced = x[np.abs(x) > 0.01 * max(np.abs(x).max(), 1.0)]
    signal_power = float(np.mean(voiced**2)) if voiced.size else 0.0
    noise = rng.standard_normal(x.size)
    if NOISE_KINDS[int(rng.integers(len(NOISE_KINDS)))] == "pink":  # 1/f power: amplitude 1/sqrt(f)
        spectrum = np.fft.rfft(noise)
        spectrum[1:] /= np.sqrt(np.arange(1, spectrum.size))
        spectrum[0] = 0.0
        noise = np.fft.irfft(spectrum, n=x.size)
    noise *= math.sqrt(signal_power / 10 ** (float(snr) / 10) / max(float(np.mean(noise**2)), 1e-12))
    y = np.clip(np.round(x + noise), -32768, 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setparams(params)
        w.writeframes(y.tobytes())


def main(argv: list[str] | None = None) -> int:
    clips = build(parse_args(argv))
    print(f"wrote {clips['train']} train + {clips['test']} test clips (synthetic speech)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
