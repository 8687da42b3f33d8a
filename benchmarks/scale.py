"""Measure streaming pretraining at scale (docs/scale.md): memory on a large archive, speed against the
in-memory path, and time per pass against archive size.

    python benchmarks/scale.py --work runs/scale --out docs/data/scale          # the 8 GB archive included
    python benchmarks/scale.py --work runs/scale --big-gb 0.5 --out /tmp/scale  # a quick try

Archives are written by ``benchmarks/make_sensor_archive.py`` under ``--work`` (kept: a rerun reuses them).
Each measurement runs ``gsg pretrain`` in a child process, as a user would, and polls the resident memory of
that process and its children (the background reader) every 0.1 s. Three measurements:

1. **Large archive**: ``configs/sensors_stream_gsg.yaml`` (16 channels, windows of 512 steps, the 64-wide
   10-block encoder) on the ``--big-gb`` archive for ``--big-steps`` steps of ``--big-batch`` windows, read
   in the training process; the run starts with the statistics pass, which reads every shard once, so the
   whole archive goes through the reader. The same run on the smallest archive of step 3 shows whether
   memory depends on the archive's size.
2. **Streaming vs in memory** on one archive that fits in memory (``--fit-recordings``, one shard): the same
   small model and budget read once through ``data.streaming=true`` and once in memory (the Parquet file read
   whole, windows cut up front, a shuffled DataLoader), alternating ``--repeats`` times. Speed is the
   training samples per second after the first logged row (start-up and the statistics pass excluded).
3. **Time per pass** for archives of ``--sizes`` recordings: one streaming pass over all windows
   (``train.steps`` = windows / batch), wall time of the training loop, with a straight line fitted.

Writes ``OUT.json`` (every number, machine, commit, date) and ``OUT.png`` (time per pass against size).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# A model small enough that reading the data, not the encoder, would be the bottleneck if the stream were slow.
SMALL_MODEL = [
    "encoder.hidden=32",
    "encoder.depth=4",
    "encoder.out_dim=128",
    "model.projector_hidden=128",
    "model.projector_dim=128",
    "model.predictor_hidden=32",
    "objective.gsg_views=2",
    "train.batch_size=32",
]
COMMON = ["data.series_column=values", "train.progress_bar=false", "train.trackers=[none]", "train.log_every=5"]


def make_archive(folder: Path, **options: Any) -> Path:
    args = [sys.executable, str(ROOT / "benchmarks" / "make_sensor_archive.py"), "--out", str(folder)]
    for key, value in options.items():
        args += [f"--{key.replace('_', '-')}", str(value)]
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL)
    return folder


def archive_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.glob("*.parquet"))


def tree_memory(proc: Any) -> tuple[int, int]:
    """(PSS of a process and all its children, RSS of the process itself), in bytes.

    The background reader is a child that loads the same libraries; adding RSS would count those shared
    pages twice, so the tree is measured by proportional set size (each shared page split among its users).
    """
    import psutil

    pss = rss = 0
    for p in [proc, *proc.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):  # exited between the listing and the read
            full = p.memory_full_info()
            pss += full.pss
            rss = rss if p is not proc else full.rss
    return pss, rss


def pretrain(overrides: list[str], run: Path, config: str = "configs/sensors_stream_gsg.yaml") -> dict[str, Any]:
    """Run ``gsg pretrain`` in a child; return its wall time, peak tree RSS and the logged metric rows."""
    import psutil

    cli = [sys.executable, "-m", "gsg_multimodal.cli", "pretrain", config, "--overwrite"]
    args = [*cli, *COMMON, *overrides, f"output_dir={run}"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    started = time.time()
    child = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    proc, peak_pss, peak_rss = psutil.Process(child.pid), 0, 0
    while child.poll() is None:
        with contextlib.suppress(psutil.Error):
            pss, rss = tree_memory(proc)
            peak_pss, peak_rss = max(peak_pss, pss), max(peak_rss, rss)
        time.sleep(0.1)
    wall = time.time() - started
    output = child.stdout.read() if child.stdout else ""
    if child.returncode != 0:
        raise SystemExit(f"gsg pretrain failed ({child.returncode}):\n{output[-3000:]}")
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    rows = [r for r in rows if "samples_per_s" in r]
    return {"wall_s": wall, "peak_pss_bytes": peak_pss, "peak_rss_bytes": peak_rss, "rows": rows}


def loop_speed(rows: list[dict[str, Any]], samples_per_step: int) -> dict[str, float]:
    """Samples/s of the training loop after its first logged row, and the loop's own duration."""
    last = rows[-1]
    first = rows[0] if len(rows) > 1 else {"step": 0, "time_s": 0.0}  # one row: the whole loop
    seconds = last["time_s"] - first["time_s"]
    return {
        "samples_per_s": (last["step"] - first["step"]) * samples_per_step / seconds,
        "loop_s": last["time_s"],
    }


def windows_in(folder: Path, window: int, stride: int) -> int:
    import pyarrow.parquet as pq

    meta = json.loads(pq.read_schema(next(iter(sorted(folder.glob("*.parquet"))))).metadata[b"gsg.archive"])
    per_recording = (int(meta["steps"]) - window) // stride + 1
    recordings = sum(pq.ParquetFile(p).metadata.num_rows for p in folder.glob("*.parquet"))
    return recordings * per_recording


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", default="runs/scale", help="archives and runs (kept between reruns)")
    parser.add_argument("--out", default="docs/data/scale", help="results: OUT.json and OUT.png")
    parser.add_argument("--big-gb", type=float, default=8.0)
    parser.add_argument("--big-steps", type=int, default=20)
    parser.add_argument("--big-batch", type=int, default=8, help="per process: activations dominate memory")
    parser.add_argument("--fit-recordings", type=int, default=16)
    parser.add_argument("--fit-steps", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--sizes", type=int, nargs=3, default=[4, 16, 64], help="recordings per archive")
    args = parser.parse_args()
    from gsg_multimodal.provenance import code_fingerprint, machine_summary

    work = Path(args.work)
    result: dict[str, Any] = {
        "command": "python " + " ".join(sys.argv),
        "machine": machine_summary(),
        "code": code_fingerprint(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }

    # 1. the large archive, and the same run on a small one: memory must not depend on the archive's size
    big = make_archive(work / f"archive_{args.big_gb:g}gb", gb=args.big_gb)
    small = make_archive(work / f"size_{args.sizes[0]}", recordings=args.sizes[0])
    settings = [f"train.steps={args.big_steps}", f"train.batch_size={args.big_batch}", "train.num_workers=0",
                "train.checkpoint_every=30"]  # fmt: skip
    for name, folder in (("big", big), ("big_settings_small_archive", small)):
        run = pretrain([f"data.path={folder}", *settings], work / "runs" / name)
        result[name] = {
            "archive_bytes": archive_bytes(folder),
            "steps": args.big_steps,
            "batch_size": args.big_batch,
            "wall_s": run["wall_s"],
            "peak_pss_bytes": run["peak_pss_bytes"],
            "peak_rss_bytes": run["peak_rss_bytes"],
            **loop_speed(run["rows"], args.big_batch),
        }
        print(f"{name}: {result[name]}", flush=True)

    # 2. streaming vs in memory, same archive (one shard), same model and budget
    fit = make_archive(work / f"fit_{args.fit_recordings}", recordings=args.fit_recordings, shard_mb=100_000)
    shard = next(iter(sorted(fit.glob("*.parquet"))))
    base = [*SMALL_MODEL, f"train.steps={args.fit_steps}", "train.checkpoint_every=1000"]
    modes = {
        "streaming": [f"data.path={fit}", "data.streaming=true"],
        "in_memory": [f"data.path={shard}", "data.streaming=false", "data.label_column=null", "train.num_workers=0"],
    }
    speeds: dict[str, list[dict[str, float]]] = {m: [] for m in modes}
    for k in range(args.repeats):
        for mode, extra in modes.items():
            run = pretrain([*base, *extra], work / "runs" / f"{mode}_{k}")
            speeds[mode].append({**loop_speed(run["rows"], 32), "peak_pss_bytes": run["peak_pss_bytes"]})
            print(f"{mode} #{k}: {speeds[mode][-1]}", flush=True)
    mean = {m: sum(s["samples_per_s"] for s in v) / len(v) for m, v in speeds.items()}
    result["fit"] = {
        "archive_bytes": archive_bytes(fit),
        "steps": args.fit_steps,
        "runs": speeds,
        "ratio": mean["streaming"] / mean["in_memory"],
    }
    print(f"streaming / in memory: {result['fit']['ratio']:.3f}", flush=True)

    # 3. one pass over archives of three sizes
    passes = []
    for recordings in args.sizes:
        folder = make_archive(work / f"size_{recordings}", recordings=recordings)
        n = windows_in(folder, 512, 256)
        steps = n // 32
        run = pretrain([*SMALL_MODEL, f"data.path={folder}", f"train.steps={steps}",
                        f"train.checkpoint_every={steps}"], work / "runs" / f"pass_{recordings}")  # fmt: skip
        passes.append({"recordings": recordings, "archive_bytes": archive_bytes(folder), "windows": n,
                       "steps": steps, "loop_s": run["rows"][-1]["time_s"], "wall_s": run["wall_s"],
                       "peak_pss_bytes": run["peak_pss_bytes"]})  # fmt: skip
        print(f"pass over {recordings} recordings: {passes[-1]}", flush=True)
    import numpy as np

    x = np.array([p["archive_bytes"] for p in passes], dtype=float)
    y = np.array([p["loop_s"] for p in passes])
    slope, intercept = np.polyfit(x, y, 1)
    fitted = slope * x + intercept
    r2 = 1 - ((y - fitted) ** 2).sum() / ((y - y.mean()) ** 2).sum()
    result["passes"] = {"runs": passes, "s_per_gb": slope * 1e9, "intercept_s": intercept, "r2": r2}

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=1))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot(x / 1e6, y, "o", label="one streaming pass (training)")
    grid = np.linspace(0, x.max(), 50)
    ax.plot(grid / 1e6, slope * grid + intercept, "-", label=f"fit: {slope * 1e9:.0f} s/GB, R² {r2:.3f}")
    ax.set_xlabel("archive on disk (MB)")
    ax.set_ylabel("time per pass (s)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out.with_suffix(".png"), dpi=120)
    print(f"written {out.with_suffix('.json')} and {out.with_suffix('.png')}")


if __name__ == "__main__":
    main()
