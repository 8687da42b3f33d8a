"""Recipe sweep for the time-series domain: pretrain variants, evaluate them and the untrained encoder, log a CSV.

    OMP_NUM_THREADS=1 python -m domains.timeseries.sweep CONFIG --tag NAME [--variants gsg,simsiam]
        [--seeds 0,1] [--steps 300] [--csv runs/ts_sweep.csv] [key=value ...]

Each variant is pretrained in its own process (``python -m gsg_multimodal pretrain``) with the
overrides, then evaluated (kNN, linear probe, RBF SVM; C and k by CV on train); the randomly
initialised encoder of the same config and seed is evaluated once per seed. ``--steps`` sets
``train.epochs`` so that the cosine schedule ends after about that many optimiser steps
(``train.steps`` will do this in the core). One row per (variant, seed) is appended to the CSV,
with the wall time of pretraining and of the whole variant (pretrain + evaluation).
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import subprocess
import sys
import time
from pathlib import Path

VARIANTS = {
    "gsg": ["objective.method=simsiam", "objective.gsg=true", "objective.gsg_views=4"],
    "gsg2": ["objective.method=simsiam", "objective.gsg=true", "objective.gsg_views=2"],
    "simsiam": ["objective.method=simsiam", "objective.gsg=false"],
    "byol": ["objective.method=byol", "objective.gsg=false"],
}
FIELDS = [
    "tag", "dataset", "variant", "seed", "steps", "overrides",
    "svm", "linear", "knn", "rand_svm", "rand_linear", "rand_knn",
    "d_svm", "d_linear", "pretrain_s", "total_s",
]  # fmt: skip


def _acc(results: dict, probe: str) -> float:
    return round(100 * float(results[probe]["accuracy"]), 1)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("config")
    ap.add_argument("overrides", nargs="*")
    ap.add_argument("--tag", required=True)
    ap.add_argument("--variants", default="gsg,simsiam")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--csv", default="runs/ts_sweep.csv")
    ap.add_argument("--root", default="runs/sweep")
    args = ap.parse_args(argv)

    from gsg_multimodal.config import load_config
    from gsg_multimodal.evaluate import evaluate_run
    from gsg_multimodal.trainer import build_domain

    overrides = list(args.overrides)
    base = load_config(args.config, overrides)
    dataset = base.data.name or base.data.path
    if args.steps:
        n_train = build_domain(base).load_data().pretrain.num_rows
        per_epoch = max(1, n_train // base.train.batch_size)
        overrides.append(f"train.epochs={math.ceil(args.steps / per_epoch)}")
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    out = Path(args.csv)
    new = not out.exists()
    with out.open("a", newline="") as f:
        writer = csv.DictWriter(f, FIELDS)
        if new:
            writer.writeheader()
        for seed in [int(s) for s in args.seeds.split(",")]:
            random = None
            for variant in args.variants.split(","):
                run_dir = Path(args.root) / args.tag / f"{dataset}-{variant}-s{seed}"
                opts = [*VARIANTS[variant], *overrides, f"seed={seed}", f"output_dir={run_dir}"]
                opts += ["train.progress_bar=false", "train.trackers=[none]", "monitor.knn_every=0"]
                t0 = time.time()
                cmd = [sys.executable, "-m", "gsg_multimodal", "pretrain", args.config, *opts, "--overwrite"]
                proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
                pretrain_s = time.time() - t0
                if proc.returncode != 0:
                    print(proc.stdout[-2000:], proc.stderr[-4000:], file=sys.stderr)
                    raise SystemExit(f"pretraining {variant} failed")
                res = evaluate_run(run_dir)
                total_s = time.time() - t0
                if random is None:
                    random = evaluate_run(run_dir, random_init=True)
                steps = _last_step(run_dir)
                row = {
                    "tag": args.tag, "dataset": dataset, "variant": variant, "seed": seed, "steps": steps,
                    "overrides": " ".join(overrides),
                    "svm": _acc(res, "svm"), "linear": _acc(res, "linear"), "knn": _acc(res, "knn"),
                    "rand_svm": _acc(random, "svm"), "rand_linear": _acc(random, "linear"),
                    "rand_knn": _acc(random, "knn"),
                    "pretrain_s": round(pretrain_s, 1), "total_s": round(total_s, 1),
                }  # fmt: skip
                row["d_svm"] = round(row["svm"] - row["rand_svm"], 1)
                row["d_linear"] = round(row["linear"] - row["rand_linear"], 1)
                writer.writerow(row)
                f.flush()
                print(
                    f"{args.tag} {dataset} {variant} s{seed}: svm {row['svm']} ({row['d_svm']:+}) "
                    f"linear {row['linear']} ({row['d_linear']:+}) knn {row['knn']} | random svm {row['rand_svm']} "
                    f"linear {row['rand_linear']} knn {row['rand_knn']} | {pretrain_s:.0f}s + eval = {total_s:.0f}s",
                    flush=True,
                )
    return 0


def _last_step(run_dir: Path) -> int | str:
    import json

    for name in ("metrics.jsonl",):
        path = run_dir / name
        if path.is_file():
            lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
            steps = [r.get("step") for r in lines if isinstance(r.get("step"), int)]
            if steps:
                return max(steps)
    return ""


if __name__ == "__main__":
    raise SystemExit(main())
