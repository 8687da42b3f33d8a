"""The table runner: data sets x rows x seeds, one process a cell, resumable (first made for the UCR/UEA table).

    python benchmarks/ts_table.py benchmarks/ts_table.yaml --out runs/ts_table --workers 1
    python benchmarks/ts_table.py benchmarks/ts_table.yaml --out runs/ts_table --report-only --report x.md

A table file (YAML) names the run config, the seeds, the rows (objective overrides; ``random`` for the
encoder before pretraining; ``floor`` for the domain's hand-crafted baseline, e.g. MFCC or TF-IDF + the same
probes) and the data sets (overrides each, and the published TS2Vec accuracy with its source, which only the
UCR/UEA tables give). Any domain's config works. Each cell (data set, row, seed) runs in its own process:
pretrain (unless ``random`` or ``floor``), then ``gsg evaluate`` (RBF SVM with C by cross-validation on the
train split, on max-pooled full-length features; kNN and a linear probe beside it). A cell's ``result.json``
is written last, so an interrupted table resumes where it stopped; a cell whose resolved config changed is
run again. Cells run ``--workers`` at a time, each with ``OMP_NUM_THREADS`` = cores / workers, or
``--threads`` (on a GPU machine, several share the device). ``--rows`` / ``--datasets`` / ``--seeds`` pick the
cells to run now; two runners on one ``--out`` must pick disjoint cells (a cell has no lock).
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import os
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PROBES = ("svm", "linear", "knn")
# Rows that train nothing: the encoder before pretraining, and the domain's hand-crafted features.
UNTRAINED_ROWS = ("random", "floor")


def load_table(path: Path) -> dict[str, Any]:
    import yaml

    table = yaml.safe_load(path.read_text())
    for key in ("config", "seeds", "rows", "datasets"):
        if key not in table:
            raise SystemExit(f"error: table '{path}' has no '{key}' key")
    return table


def cells(table: dict[str, Any]) -> list[tuple[str, str, int]]:
    """Seed by seed, so that a table cut short holds whole seeds."""
    return [(ds, row, seed) for seed in table["seeds"] for ds in table["datasets"] for row in table["rows"]]


def cell_dir(out: Path, ds: str, row: str, seed: int) -> Path:
    return out / ds / row / f"s{seed}"


def dataset_config(table: dict[str, Any], ds: str) -> str:
    """The run config of a data set's cells: its own ``config`` (e.g. a folder data set's), else the table's."""
    return (table["datasets"][ds] or {}).get("config", table["config"])


def cell_overrides(table: dict[str, Any], ds: str, row: str, seed: int, run: Path) -> list[str]:
    spec = table["datasets"][ds] or {}
    row_overrides = [] if table["rows"][row] in UNTRAINED_ROWS else list(table["rows"][row])
    return [
        *table.get("overrides", []),
        *([] if "config" in spec else [f"data.name={ds}"]),  # a data set with its own config names its data there
        *spec.get("overrides", []),
        *row_overrides,
        f"seed={seed}",
        f"output_dir={run}",
        "train.progress_bar=false",
        "train.trackers=[none]",
    ]


def resolved_digest(cfg: Any) -> str:
    """A hash of a resolved config without its output_dir: an edited config file changes it."""
    from gsg_multimodal.config import to_dict

    resolved = to_dict(cfg)
    resolved.pop("output_dir", None)
    return hashlib.sha256(json.dumps(resolved, sort_keys=True, default=str).encode()).hexdigest()[:16]


def config_digest(config: str | Path, overrides: list[str]) -> str:
    """``resolved_digest`` of a config file with overrides; the reports ask for every cell several times."""
    kept = tuple(o for o in overrides if not o.startswith("output_dir="))
    return _cached_digest(str(config), Path(config).read_text(), kept)


@functools.cache
def _cached_digest(config: str, text: str, overrides: tuple[str, ...]) -> str:
    from gsg_multimodal.config import load_config

    return resolved_digest(load_config(config, list(overrides)))  # keyed by the file's text: edits miss the cache


def run_cell(spec: dict[str, Any]) -> None:
    """In a child process: pretrain (or not) and evaluate one cell; write result.json last."""
    from gsg_multimodal.config import load_config, to_dict
    from gsg_multimodal.evaluate import evaluate_floor, evaluate_run
    from gsg_multimodal.provenance import code_fingerprint, machine_summary
    from gsg_multimodal.runtime import reset_accelerate
    from gsg_multimodal.trainer import Trainer

    code = code_fingerprint()  # at the start: the code this cell runs, whatever is committed while it trains
    cfg = load_config(spec["config"], spec["overrides"])
    run = Path(cfg.output_dir)
    started = time.time()
    steps = 0
    kind = spec["kind"]
    if kind in UNTRAINED_ROWS:
        import yaml

        run.mkdir(parents=True, exist_ok=True)
        (run / "config.yaml").write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))
        train_s = 0.0
    else:
        trainer = Trainer(cfg, overwrite=True)
        try:
            steps = trainer.train()["steps"]
        finally:
            trainer.close()
            reset_accelerate()
        train_s = time.time() - started
    if kind == "floor":
        results = evaluate_floor(run)
        if results is None:
            raise SystemExit(f"error: domain '{cfg.domain}' has no hand-crafted floor; remove the 'floor' row")
    else:
        results = evaluate_run(run, random_init=kind == "random")
    out = {
        "kind": kind,
        "config": spec.get("config_name"),
        "config_digest": resolved_digest(cfg),
        "scores": {p: results[p]["accuracy"] for p in PROBES if p in results},
        "effective_rank": results.get("collapse", {}).get("effective_rank"),
        "steps": steps,
        "train_s": round(train_s, 2),
        "total_s": round(time.time() - started, 2),
        "overrides": spec["overrides"],
        "code": code,  # a table can be filled over several commits: each cell says which
        "machine": machine_summary(),  # ... and over several machines
    }
    tmp = run.parent / "result.json.tmp"
    tmp.write_text(json.dumps(out, indent=2))
    tmp.replace(run.parent / "result.json")


def is_done(out: Path, table: dict[str, Any], cell: tuple[str, str, int]) -> bool:
    folder = cell_dir(out, *cell)
    result = folder / "result.json"
    if not result.is_file():
        return False

    # The same cell wherever its folder now lives (a table run elsewhere and copied back counts).
    def placed(overrides: list[str]) -> list[str]:
        return [o for o in overrides if not o.startswith("output_dir=")]

    done = json.loads(result.read_text())
    if (done.get("config") or dataset_config(table, cell[0])) != dataset_config(table, cell[0]):
        return False  # (cells written before configs were recorded compare by their overrides alone)
    wanted = cell_overrides(table, *cell, folder / "run")
    digest = done.get("config_digest")
    if digest is not None:
        # The resolved config decides: an edited config file makes the cell stale, while an override that
        # pins a value the file has since changed (e.g. a default dropped later) keeps it.
        return digest == config_digest(ROOT / dataset_config(table, cell[0]), wanted)
    return placed(done["overrides"]) == placed(wanted)  # older cells carry no digest: their overrides decide


def run_all(
    table: dict[str, Any],
    out: Path,
    workers: int,
    max_cells: int | None,
    deadline: float | None,
    only_rows: list[str] | None = None,
    only_datasets: list[str] | None = None,
    threads: int | None = None,
    only_seeds: list[int] | None = None,
) -> None:
    waiting = [c for c in cells(table) if not is_done(out, table, c)]
    todo = [
        c
        for c in waiting
        if (only_rows is None or c[1] in only_rows)
        and (only_datasets is None or c[0] in only_datasets)
        and (only_seeds is None or c[2] in only_seeds)
    ]
    if max_cells is not None:
        todo = todo[:max_cells]
    threads = threads or max(1, (os.cpu_count() or 1) // workers)
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": path}
    done = len(cells(table)) - len(waiting)
    print(f"{done} cells done, {len(todo)} to run, {workers} at a time, {threads} thread(s) each")

    stop_at = None if deadline is None else time.time() + deadline

    def one(cell: tuple[str, str, int]) -> str:
        if stop_at is not None and time.time() > stop_at:
            return f"{'/'.join(map(str, cell))}: not started (past --deadline; rerun to continue)"
        folder = cell_dir(out, *cell)
        folder.mkdir(parents=True, exist_ok=True)
        spec = {
            "config": str(ROOT / dataset_config(table, cell[0])),
            "config_name": dataset_config(table, cell[0]),
            "overrides": cell_overrides(table, *cell, folder / "run"),
            "kind": table["rows"][cell[1]] if table["rows"][cell[1]] in UNTRAINED_ROWS else "trained",
        }
        t0 = time.time()
        with (folder / "log.txt").open("w") as log:
            code = subprocess.run(
                [sys.executable, __file__, "--child", json.dumps(spec)], stdout=log, stderr=subprocess.STDOUT, env=env
            ).returncode
        state = "ok" if code == 0 else f"FAILED (exit {code}, see {folder / 'log.txt'})"
        return f"{'/'.join(map(str, cell))}: {state} in {time.time() - t0:.0f} s"

    with ThreadPoolExecutor(workers) as pool:
        for line in pool.map(one, todo):
            print(line, flush=True)


def collect(out: Path, table: dict[str, Any]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    found: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for ds, row, seed in cells(table):
        if is_done(out, table, (ds, row, seed)):
            result = json.loads((cell_dir(out, ds, row, seed) / "result.json").read_text())
            found.setdefault((ds, row), []).append({"seed": seed, **result})
    return found


def commit_label(result: dict[str, Any]) -> str:
    """``abc1234``, ``abc1234+dirty``, or ``not recorded`` (cells from before cells kept their code)."""
    code = result.get("code") or {}
    if not code.get("commit"):
        return "not recorded"
    return code["commit"] + ("+dirty" if code.get("dirty") else "")


def provenance(out: Path, table: dict[str, Any]) -> str:
    """Which commits and machines trained the finished cells, with counts: a table filled over several
    sittings must not read as if one code state on one machine made it."""
    results = [r for rs in collect(out, table).values() for r in rs]

    def tally(key: Callable[[dict[str, Any]], str]) -> str:
        counts = Counter(key(r) for r in results)
        return ", ".join(f"{name} ({n})" for name, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))

    if not results:
        return "No cell has finished yet."
    return (
        f"{len(results)} of {len(cells(table))} cells finished. Cells per training commit: "
        f"{tally(commit_label)}. Cells per machine: {tally(lambda r: r.get('machine') or 'not recorded')}."
    )


def fmt(values: list[float]) -> str:
    if not values:
        return "n/a"
    mean = 100 * statistics.fmean(values)
    if len(values) == 1:
        return f"{mean:.1f}"
    return f"{mean:.1f} ± {100 * statistics.stdev(values):.1f}"


def report(out: Path, table: dict[str, Any], probe: str) -> str:
    found = collect(out, table)
    rows = list(table["rows"])
    # The published column only where the table names published numbers (the UCR/UEA tables do).
    with_published = any((spec or {}).get("published_ts2vec") is not None for spec in table["datasets"].values())
    header = ["data set", *rows, *(["TS2Vec (published)"] if with_published else [])]
    lines = ["| " + " | ".join(header) + " |", "|---" + "|---:" * (len(header) - 1) + "|"]
    means: dict[str, list[float]] = {r: [] for r in [*rows, "published"]}
    complete = True
    for ds, spec in table["datasets"].items():
        cells_ = []
        for row in rows:
            values = [r["scores"][probe] for r in found.get((ds, row), [])]
            complete &= len(values) == len(table["seeds"])
            cells_.append(fmt(values) + ("" if len(values) == len(table["seeds"]) else f" ({len(values)} seeds)"))
            if values:
                means[row].append(statistics.fmean(values))
        published = (spec or {}).get("published_ts2vec")
        if with_published:
            cells_.append("n/a" if published is None else f"{100 * published:.1f}")
        if published is not None:
            means["published"].append(published)
        lines.append("| " + " | ".join([ds, *cells_]) + " |")
    n_sets = len(table["datasets"])
    mean_cells = [
        f"**{100 * statistics.fmean(v):.1f}**" + ("" if len(v) == n_sets else f" ({len(v)} sets)") if v else "n/a"
        for v in (means[r] for r in [*rows, *(["published"] if with_published else [])])
    ]
    lines.append("| " + " | ".join(["mean", *mean_cells]) + " |")
    if not complete:
        lines.append("")
        lines.append("Some cells are missing (seed counts in brackets); rerun the command to finish them.")
    return "\n".join(lines)


def timing(out: Path, table: dict[str, Any]) -> str:
    found = collect(out, table)
    rows = [r for r, spec in table["rows"].items() if spec not in UNTRAINED_ROWS]
    header = ["data set", *[f"{r} (train / total s)" for r in rows]]
    lines = ["| " + " | ".join(header) + " |", "|---" + "|---:" * len(rows) + "|"]
    for ds in table["datasets"]:
        cells_ = []
        for row in rows:
            rs = found.get((ds, row), [])
            cells_.append(
                f"{statistics.median(r['train_s'] for r in rs):.0f} / {statistics.median(r['total_s'] for r in rs):.0f}"
                if rs
                else "n/a"
            )
        lines.append("| " + " | ".join([ds, *cells_]) + " |")
    return "\n".join(lines)


def write_csv(out: Path, table: dict[str, Any], path: Path) -> None:
    import csv

    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(
            ["dataset", "row", "seed", *PROBES, "effective_rank", "steps", "train_s", "total_s", "commit", "machine"]
        )
        for (ds, row), results in sorted(collect(out, table).items()):
            for r in sorted(results, key=lambda r: r["seed"]):
                scores = [r["scores"].get(p) for p in PROBES]
                w.writerow(
                    [
                        ds,
                        row,
                        r["seed"],
                        *scores,
                        r.get("effective_rank"),
                        r["steps"],
                        r["train_s"],
                        r["total_s"],
                        commit_label(r),
                        r.get("machine") or "not recorded",
                    ]
                )


def pick(arg: str | None, flag: str, key: str, table: dict[str, Any], table_path: Path) -> list[str] | None:
    """The names a comma-separated ``--rows`` / ``--datasets`` value selects, or None for all; unknown names exit."""
    if arg is None:
        return None
    names = [n.strip() for n in arg.split(",") if n.strip()]
    unknown = sorted(set(names) - set(table[key]))
    if unknown:
        raise SystemExit(
            f"error: {flag} names {', '.join(unknown)}, not {key} of '{table_path}' ({', '.join(table[key])})"
        )
    return names


def pick_seeds(arg: str | None, table: dict[str, Any], table_path: Path) -> list[int] | None:
    """The seeds a comma-separated ``--seeds`` value selects, or None for all; a seed not in the table exits."""
    if arg is None:
        return None
    try:
        seeds = [int(s) for s in arg.split(",") if s.strip()]
    except ValueError:
        raise SystemExit(f"error: --seeds {arg}: give whole numbers separated by commas, e.g. --seeds 1,2") from None
    unknown = sorted(set(seeds) - set(table["seeds"]))
    if unknown:
        raise SystemExit(
            f"error: --seeds names {', '.join(map(str, unknown))}, not seeds of '{table_path}' {table['seeds']}"
        )
    return seeds


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        run_cell(json.loads(sys.argv[2]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("table", help="a table file, e.g. benchmarks/ts_table.yaml")
    parser.add_argument("--out", default="runs/ts_table", help="folder of the cells (cached)")
    parser.add_argument("--workers", type=int, default=1, help="cells at a time")
    parser.add_argument(
        "--threads", type=int, help="threads per cell (default: the cores / --workers); 1 beside other jobs"
    )
    parser.add_argument("--max-cells", type=int, help="run at most this many cells now")
    parser.add_argument("--rows", help="run only these rows now (comma-separated names); the report shows all")
    parser.add_argument("--datasets", help="run only these data sets now (comma-separated); the report shows all")
    parser.add_argument("--seeds", help="run only these seeds now (comma-separated); the report shows all")
    parser.add_argument("--deadline", type=float, help="start no cell after this many seconds (rerun to continue)")
    parser.add_argument("--report", help="write the markdown tables here (and a CSV beside it)")
    parser.add_argument("--report-only", action="store_true", help="only rewrite the tables from finished cells")
    args = parser.parse_args()
    table_path = Path(args.table)
    table = load_table(table_path)
    out = Path(args.out)
    only_rows = pick(args.rows, "--rows", "rows", table, table_path)
    only_datasets = pick(args.datasets, "--datasets", "datasets", table, table_path)
    only_seeds = pick_seeds(args.seeds, table, table_path)
    if not args.report_only:
        if args.threads is not None and args.threads < 1:
            raise SystemExit(f"error: --threads {args.threads}: must be at least 1")
        run_all(
            table,
            out,
            max(1, args.workers),
            args.max_cells,
            args.deadline,
            only_rows,
            only_datasets,
            args.threads,
            only_seeds,
        )
    from gsg_multimodal.provenance import git_commit, machine_summary

    text = "\n\n".join(
        [
            f"Command: `python benchmarks/ts_table.py {args.table} --out {args.out}`; table file `{args.table}`; "
            f"seeds {table['seeds']}; rendered at commit {git_commit()} on {machine_summary()}, "
            f"{time.strftime('%Y-%m-%d %H:%M %Z')}.",
            provenance(out, table),
            "**SVM accuracy (%)**, mean ± sample std over seeds:",
            report(out, table, "svm"),
            "**Linear probe accuracy (%)**:",
            report(out, table, "linear"),
            "**kNN accuracy (%)**:",
            report(out, table, "knn"),
            "**Wall time per run (median over seeds)**:",
            timing(out, table),
        ]
    )
    print(text)
    if args.report:
        path = Path(args.report)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + "\n")
        write_csv(out, table, path.with_suffix(".csv"))
        print(f"\nwritten to {path} and {path.with_suffix('.csv')}")


if __name__ == "__main__":
    main()
