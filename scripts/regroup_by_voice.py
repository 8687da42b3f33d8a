#!/usr/bin/env python3
"""Regroup a spoken-words folder by voice: a probe of how much of the speaker an encoder keeps.

    python scripts/regroup_by_voice.py data/spoken_words data/spoken_voice

Reads the training split of ``scripts/make_spoken_words.py``'s output
(``IN/train/<word>/<voice>_s<speed>_p<pitch>.wav``) and writes an audiofolder whose label is the
*voice*: ``OUT/train/<voice>/<word>_<clip>.wav`` holds the first half of the words (in sorted order),
``OUT/test/<voice>/...`` the other half. The training voices only, so a pretrained encoder has heard
every voice it is asked about, but the probe must recognise a voice in words it never saw it in.
Files are symbolic links to the originals. Then: ``gsg evaluate RUN data.path=data/spoken_voice``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def regroup(source: Path, out: Path) -> tuple[int, int]:
    """Write the links; returns (train clips, test clips)."""
    words = sorted(p.name for p in (source / "train").iterdir() if p.is_dir()) if (source / "train").is_dir() else []
    if len(words) < 2:
        raise SystemExit(f"error: '{source}/train' has fewer than two word folders; pass a spoken-words folder")
    if out.exists():
        raise SystemExit(f"error: '{out}' exists; remove it or pick another output folder")
    counts = {"train": 0, "test": 0}
    for i, word in enumerate(words):
        split = "train" if i < len(words) // 2 else "test"
        for clip in sorted((source / "train" / word).glob("*.wav")):
            voice = clip.stem.split("_s")[0]  # <accent>+<variant>_s<speed>_p<pitch>
            target = out / split / voice / f"{word}_{clip.name}"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(clip.resolve())
            counts[split] += 1
    return counts["train"], counts["test"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="the output folder of scripts/make_spoken_words.py")
    parser.add_argument("out", type=Path, help="a new folder")
    args = parser.parse_args()
    n_train, n_test = regroup(args.source, args.out)
    print(f"{n_train} train and {n_test} test clips, labelled by voice, in {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
