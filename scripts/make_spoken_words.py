#!/usr/bin/env python3
"""Build a small, SYNTHETIC spoken-word data set with espeak-ng, as an ``audiofolder``.

    python scripts/make_spoken_words.py data/spoken_words

writes ``OUT/{train,test}/<word>/<accent>+<variant>_s<speed>_p<pitch>.wav`` and ``OUT/README.md``.
Every clip is one word (the label) spoken by one espeak-ng voice (an accent plus a voice
variant) at one speed and pitch. The split is by voice: no voice of the test split is heard in
training, so a probe must recognise the word across voices, not the voice. The voices are
formant-synthesised, not recorded people: numbers measured on this set say nothing about real
speech. Only the Python standard library and the ``espeak-ng`` program are needed.
"""

from __future__ import annotations

import argparse
import itertools
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
ACCENTS = ["en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-us-nyc", "en-gb-x-gbclan", "en-gb-x-gbcwmd"]
VARIANTS = ["m1", "f2", "m3"]
SPEEDS = [130, 175]  # words per minute
PITCHES = [35, 65]  # espeak-ng's 0..99 scale, 50 = the voice's default


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
    # Voice k goes to test when k % test_every == test_every - 1: spread over accents and variants.
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

    with ThreadPoolExecutor(max_workers=4) as pool:  # each call is a short-lived process
        list(pool.map(run, jobs))
    counts = {s: sum(1 for v in voices if split_of[v] == s) for s in ("train", "test")}
    clips = {s: n * len(args.words) * len(args.speeds) * len(args.pitches) for s, n in counts.items()}
    version = subprocess.run([exe, "--version"], capture_output=True, text=True).stdout.strip()
    test_voices = ", ".join(v for v in voices if split_of[v] == "test")
    (args.out_dir / "README.md").write_text(
        "# Spoken words (SYNTHETIC)\n\n"
        f"Made by `scripts/make_spoken_words.py` with {version}. Every clip is synthetic speech from a\n"
        "formant synthesiser, not a recording of a person; results on it do not transfer to real speech.\n\n"
        f"- words (labels): {', '.join(args.words)}\n"
        f"- voices: {len(voices)} (accent+variant); speeds {args.speeds} wpm; pitches {args.pitches}\n"
        f"- split by voice: test voices are {test_voices}\n"
        f"- clips: {clips['train']} train, {clips['test']} test\n\n"
        "Layout: `<split>/<word>/<voice>_s<speed>_p<pitch>.wav` (an audiofolder).\n"
    )
    return clips


def main(argv: list[str] | None = None) -> int:
    clips = build(parse_args(argv))
    print(f"wrote {clips['train']} train + {clips['test']} test clips (synthetic speech)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
