"""Probe accuracy of one run's encoder at every kept checkpoint: the curve over pretraining steps.

    python benchmarks/checkpoint_curve.py runs/text/gsg --out docs/data/text_curve.csv eval.svm_c=[1.0]

Step 0 is the encoder before pretraining (for a pretrained model: as shipped). Each checkpoint's encoder
is exported to ``<run>/curve/step-N/encoder`` beside a copy of the run's ``config.yaml`` and scored by
``gsg evaluate``'s code with the same probes (any ``eval.*`` overrides apply to every point). Finished
points are kept in their folders and reused (scored again if the ``eval.*`` overrides differ), so the
script can be stopped and rerun. Keep the checkpoints with ``train.keep_checkpoints`` (default 2) set high
enough while pretraining.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import shutil
import sys
from pathlib import Path
from typing import Any

from gsg_multimodal.errors import UserError
from gsg_multimodal.evaluate import evaluate_run
from gsg_multimodal.export import export_checkpoint

FIELDS = ["step", "knn", "linear", "svm", "effective_rank"]


def checkpoints(run: Path) -> list[tuple[int, Path]]:
    """``[(step, folder)]`` of the run's checkpoints, oldest first."""
    found = []
    for path in (run / "checkpoints").glob("step-*"):
        match = re.fullmatch(r"step-0*(\d+)", path.name)
        if match and path.is_dir():
            found.append((int(match.group(1)), path))
    return sorted(found)


def point(run: Path, step: int, checkpoint: Path | None, overrides: list[str]) -> dict[str, Any]:
    """Scores of one point, computed once and then read from ``<run>/curve/step-N/eval*.json``."""
    where = run / "curve" / f"step-{step}"
    result = where / ("eval_random.json" if checkpoint is None else "eval.json")
    settings = where / "curve_overrides.json"  # a point scored with other eval.* settings is scored again
    if not (result.is_file() and settings.is_file() and json.loads(settings.read_text()) == overrides):
        where.mkdir(parents=True, exist_ok=True)
        settings.unlink(missing_ok=True)
        shutil.copy(run / "config.yaml", where / "config.yaml")
        if checkpoint is not None and not (where / "encoder" / "config.json").is_file():
            export_checkpoint(run, checkpoint, where / "encoder")
        evaluate_run(where, random_init=checkpoint is None, overrides=["train.trackers=[none]", *overrides])
        settings.write_text(json.dumps(overrides))
    scores = json.loads(result.read_text())
    row = {"step": step, **{p: round(100 * scores[p]["accuracy"], 2) for p in ("knn", "linear", "svm")}}
    row["effective_rank"] = round(scores["collapse"]["effective_rank"], 2)
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a 'gsg pretrain' output_dir with checkpoints")
    parser.add_argument("overrides", nargs="*", help="eval.* overrides for every point")
    parser.add_argument("--out", type=Path, help="CSV of the curve (default: <run>/curve.csv)")
    args = parser.parse_args(argv)
    kept = checkpoints(args.run)
    if not (args.run / "config.yaml").is_file() or not kept:
        raise UserError(f"'{args.run}' is not a run directory with checkpoints; pass a 'gsg pretrain' output_dir")
    rows = [point(args.run, 0, None, args.overrides)]
    for step, folder in kept:
        rows.append(point(args.run, step, folder, args.overrides))
        print(rows[-1], flush=True)
    out = args.out or args.run / "curve.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    print(
        "\n".join(
            f"step {r['step']:>6}: kNN {r['knn']:5.1f}  linear {r['linear']:5.1f}  SVM {r['svm']:5.1f}" for r in rows
        )
    )
    print(f"-> {out}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except UserError as exc:
        sys.exit(f"error: {exc}")
