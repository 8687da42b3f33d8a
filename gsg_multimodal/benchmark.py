"""``gsg benchmark SUITE``: run a suite's cells (cached), its transfer evaluations, then write the report.

Every cell writes ``result.json`` only after it finished and was evaluated, so an interrupted
suite resumes where it stopped: finished cells are skipped and a half-trained cell continues
from its last checkpoint. Cells run one after another in this process; each gets a fresh
Accelerate state, as a new process would.

Several processes may work on one suite folder at once (``--workers N`` starts them): a process
claims a cell with an exclusive lock on ``<out>/.locks/<cell>.lock`` for as long as it runs it,
and skips cells another process holds. The operating system drops the lock when its holder dies,
so a killed worker leaves nothing to clean up.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .checkpoints import checkpoint_root
from .config import config_differences
from .errors import UserError
from .evaluate import load_run_config
from .runtime import reset_accelerate
from .suite import Cell, budget_steps, cell_overrides, config_path, expand, load_suite
from .variants import RANDOM, VARIANTS


def write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2))
    os.replace(tmp, path)  # a result file is whole or absent


@contextmanager
def claimed(lock_file: Path) -> Iterator[bool]:
    """Hold an exclusive, non-blocking lock on ``lock_file``: yields False when another process holds it."""
    try:
        import fcntl
    except ImportError:  # no POSIX locks (Windows): one worker per suite folder, as before
        yield True
        return
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_file, "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


class Benchmark:
    def __init__(self, suite_arg: str | Path, out: str | Path | None = None) -> None:
        self.suite, self.suite_path = load_suite(suite_arg)
        self.out = Path(out or Path("runs") / "benchmark" / self.suite.name)
        self.base = {name: self._config(name, []) for name in self.suite.datasets}  # validates every data set
        self._cell_configs: dict[Cell, Any] = {}
        self.cells = expand(self.suite, {n: c.train.batch_size for n, c in self.base.items()})

    # ------------------------------------------------------------------ configs

    def _config(self, dataset: str, extra: list[str]) -> Any:
        from .config import load_config

        spec = self.suite.datasets[dataset]
        try:
            return load_config(config_path(spec, self.suite_path), [*spec.overrides, *self.suite.overrides, *extra])
        except UserError as exc:
            raise UserError(f"suite data set '{dataset}': {exc}") from None

    def cell_dir(self, cell: Cell) -> Path:
        return self.out / "cells" / cell.key

    def lock_file(self, name: str) -> Path:
        return self.out / ".locks" / f"{name}.lock"

    def cell_config(self, cell: Cell) -> Any:
        """The cell's resolved config (built once per Benchmark: the suite and its configs are read at start)."""
        if cell not in self._cell_configs:
            base = self.base[cell.dataset]
            extra = cell_overrides(cell, base.train.batch_size, base.optim.lr)
            self._cell_configs[cell] = self._config(cell.dataset, [*extra, f"output_dir={self.cell_dir(cell) / 'run'}"])
        return copy.deepcopy(self._cell_configs[cell])  # callers may not change the cached one

    def is_done(self, cell: Cell) -> bool:
        """The cell has a result, trained with the config the suite asks for now.

        Cell keys name only objective, seed and budget; a data set's overrides edited after a run
        would otherwise silently reuse results of another config. Such a cell counts as not done.
        """
        run_dir = self.cell_dir(cell) / "run"
        if not (self.cell_dir(cell) / "result.json").is_file() or not (run_dir / "config.yaml").is_file():
            return False
        return same_run(load_run_config(run_dir), self.cell_config(cell))

    def transfer_done(self, source: Cell, out_file: Path) -> bool:
        """Evaluated after its source cell's current result was written (a rerun source invalidates it)."""
        result = self.cell_dir(source) / "result.json"
        return out_file.is_file() and result.is_file() and out_file.stat().st_mtime >= result.stat().st_mtime

    # ------------------------------------------------------------------ running

    def transfer_jobs(self) -> list[tuple[Cell, str, Path]]:
        jobs = []
        for source, targets in self.suite.transfer.pairs.items():
            for obj in self.suite.transfer.objectives:
                for seed in self.suite.seeds:
                    cell = Cell(source, obj, seed, budget_steps(obj, self.suite.steps_of(source), "equal_steps"))
                    for target in targets:
                        jobs.append(
                            (cell, target, self.out / "transfer" / f"{source}__{target}" / obj / f"s{seed}.json")
                        )
        return jobs

    def run(self, max_cells: int | None = None) -> dict[str, int]:
        """Run what is not done yet (at most ``max_cells`` cells this time); returns counts.

        A cell or transfer that another process holds (see ``claimed``) is left to it and not counted.
        """
        from tqdm.auto import tqdm

        todo = self.todo()
        jobs = [j for j in self.transfer_jobs() if not self.transfer_done(j[0], j[2])]
        done = len(self.cells) - len(todo) + len(self.transfer_jobs()) - len(jobs)
        total = len(self.cells) + len(self.transfer_jobs())
        ran = 0
        bar = tqdm(total=total, initial=done, desc=f"suite {self.suite.name}", unit="cell")

        def transfer_ready() -> None:  # a source's transfer rows run as soon as it is done, not at the end
            nonlocal ran
            for job in list(jobs):
                cell, target, out_file = job
                if max_cells is not None and ran >= max_cells:
                    return
                if cell in todo_now and not self.is_done(cell):  # the source may be another worker's
                    continue
                jobs.remove(job)
                with claimed(self.lock_file(f"transfer/{cell.key}/{target}")) as mine:
                    if not mine or self.transfer_done(cell, out_file):
                        continue
                    bar.set_postfix_str(f"{cell.key} -> {target}")
                    try:
                        self.run_transfer(cell, target, out_file)
                    except Exception as exc:  # e.g. an encoder whose input the target cannot give
                        reset_accelerate()
                        bar.write(f"transfer {cell.key} -> {target} failed: {first_line(exc)}")
                ran += 1
                bar.update()

        todo_now = set(todo)  # cells not finished yet; a transfer job waits for its source
        try:
            transfer_ready()
            for cell in todo:
                if max_cells is not None and ran >= max_cells:
                    break
                with claimed(self.lock_file(cell.key)) as mine:
                    if not mine:  # another worker runs it now
                        continue
                    if self.is_done(cell):  # another worker finished it since this one started
                        todo_now.discard(cell)
                        continue
                    bar.set_postfix_str(cell.key)
                    started = time.time()
                    try:
                        self.run_cell(cell)
                        todo_now.discard(cell)
                        if bar.disable:  # a worker of ``--workers``: one line a cell instead of a bar
                            print(f"cell {cell.key}: ok in {time.time() - started:.0f} s", flush=True)
                    except Exception as exc:  # one broken cell must not stop a suite of hundreds
                        self.record_failure(cell, exc)
                        bar.write(f"cell {cell.key} failed: {first_line(exc)} (details in {self.error_file(cell)})")
                        reset_accelerate()
                ran += 1
                bar.update()
                transfer_ready()
        finally:
            bar.close()
        remaining = total - done - ran
        return {"total": total, "done_before": done, "ran": ran, "remaining": remaining}

    def todo(self) -> list[Cell]:
        """Cells not done yet, in the order they run.

        The cells of the pre-declared tests come first, then the rest; each part seed by seed across all
        data sets, else in the suite's order. A suite stopped part-way then has its confirmatory tests on
        every data set (the unit of the tests) with as many seeds as time allowed, rather than every table
        for a few data sets.
        """
        first = self.confirmatory_cells()
        todo = [c for c in self.cells if not self.is_done(c)]
        return sorted(todo, key=lambda c: (c not in first, self.suite.seeds.index(c.seed)))

    def confirmatory_cells(self) -> set[Cell]:
        """The cells the pre-declared tests need: both arms and the untrained floor, every data set and seed."""
        from .report_tables import CONFIRMATORY

        need = set()
        for a, b, budget, _ in CONFIRMATORY:
            if budget not in self.suite.budgets:
                continue
            for ds in self.suite.datasets:
                objectives = self.suite.objectives_of(ds)
                if a not in objectives or b not in objectives:
                    continue
                for obj in (a, b, RANDOM):
                    steps = budget_steps(obj, self.suite.steps_of(ds), budget)
                    need.update(Cell(ds, obj, seed, steps) for seed in self.suite.seeds)
        return need & set(self.cells)

    def count_done(self) -> int:
        """Cells and transfer evaluations finished so far (by any process)."""
        return sum(self.is_done(c) for c in self.cells) + sum(
            self.transfer_done(c, f) for c, _, f in self.transfer_jobs()
        )

    def error_file(self, cell: Cell) -> Path:
        return self.cell_dir(cell) / "error.txt"

    def record_failure(self, cell: Cell, exc: BaseException) -> None:
        import traceback

        self.cell_dir(cell).mkdir(parents=True, exist_ok=True)
        self.error_file(cell).write_text("".join(traceback.format_exception(exc)))

    def failures(self) -> dict[Cell, str]:
        """Cells whose last attempt failed and that have no result yet: cell -> first line of the error."""
        out = {}
        for cell in self.cells:
            f = self.error_file(cell)
            if f.is_file() and not (self.cell_dir(cell) / "result.json").is_file():
                lines = [ln for ln in f.read_text().splitlines() if ln.strip()]
                out[cell] = lines[-1] if lines else "unknown error"
        return out

    def run_cell(self, cell: Cell) -> dict[str, Any]:
        from .config import to_dict
        from .evaluate import evaluate_run
        from .provenance import code_fingerprint
        from .trainer import Trainer

        cfg = self.cell_config(cell)
        run_dir = Path(cfg.output_dir)
        if (run_dir / "config.yaml").is_file() and not same_run(load_run_config(run_dir), cfg):
            # Trained (or begun) with a config the suite no longer asks for: start the cell afresh.
            shutil.rmtree(self.cell_dir(cell))
        started = time.time()
        if cell.objective == RANDOM:
            import yaml

            run_dir.mkdir(parents=True, exist_ok=True)
            (run_dir / "config.yaml").write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))
            results = evaluate_run(run_dir, random_init=True)
        else:
            if not (run_dir / "encoder" / "config.json").is_file():
                # A cell cut off mid-training continues from its last checkpoint (or restarts if it had none).
                trainer = Trainer(cfg, resume=(run_dir / "config.yaml").is_file())
                try:
                    trainer.train()
                finally:
                    trainer.close()
                    reset_accelerate()
            results = evaluate_run(run_dir)
        reset_accelerate()
        collapse = results.get("collapse") or {}
        result = {
            "key": cell.key,
            "cell": {**cell.__dict__},
            "tags": sorted(self.cells[cell]),
            "wall_s": round(time.time() - started, 2),
            "batch_size": cfg.train.batch_size,
            "scores": {p: results[p]["accuracy"] for p in ("knn", "linear", "svm") if p in results},
            "macro_f1": {p: results[p]["macro_f1"] for p in ("knn", "linear", "svm") if p in results},
            # Collapse where it can show: effective rank of the eval-mode encoder features of the test split.
            "effective_rank": collapse.get("effective_rank"),
            "rank_ceiling": collapse.get("rank_ceiling"),
            # The test split's size: accuracies are multiples of 1/n_test, the resolution tests round to.
            **split_sizes(results, cfg),
            # The code that trained and evaluated this cell (the cache key covers the config only).
            "code": code_fingerprint(),
            **training_summary(run_dir, cfg, cell),
        }
        write_json(self.cell_dir(cell) / "result.json", result)
        self.error_file(cell).unlink(missing_ok=True)
        # A finished cell needs only its exported encoder (for transfer and maps); its training
        # checkpoints (optimizer state included) would fill the disk over a large suite.
        shutil.rmtree(checkpoint_root(run_dir), ignore_errors=True)
        return result

    def run_transfer(self, cell: Cell, target: str, out_file: Path) -> dict[str, Any]:
        from .evaluate import evaluate_transfer

        target_cfg = self._config(target, [f"seed={cell.seed}", f"output_dir={out_file.parent}"])
        try:
            return evaluate_transfer(self.cell_dir(cell) / "run", target_cfg, out_file)
        finally:
            reset_accelerate()

    # ------------------------------------------------------------------ results

    def results(self) -> dict[Cell, dict[str, Any]]:
        return {c: json.loads((self.cell_dir(c) / "result.json").read_text()) for c in self.cells if self.is_done(c)}

    def transfer_results(self) -> list[dict[str, Any]]:
        rows = []
        for cell, target, out_file in self.transfer_jobs():
            if self.transfer_done(cell, out_file) and self.is_done(cell):
                res = json.loads(out_file.read_text())
                rows.append(
                    {
                        "source": cell.dataset,
                        "target": target,
                        "objective": cell.objective,
                        "seed": cell.seed,
                        "scores": {p: res[p]["accuracy"] for p in ("knn", "linear", "svm") if p in res},
                    }
                )
        return rows


def same_run(old: Any, new: Any) -> bool:
    """The same cell: equal resolved configs except where they are written (evaluation settings count)."""
    return not config_differences(old, new, ignore=("output_dir",))


def first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


_SPLIT_SIZES: dict[str, dict[str, int | None]] = {}


def split_sizes(results: dict[str, Any], cfg: Any) -> dict[str, int | None]:
    """Sizes of the labelled splits the probes used: from ``eval.json`` when it records them, else from the data.

    Read once per data config and process (cells of a data set share its data section; seeds do not change it).
    """
    if results.get("n_test"):
        return {"n_train": results.get("n_train"), "n_test": int(results["n_test"])}
    from .config import to_dict
    from .runtime import load_bound

    key = json.dumps([cfg.domain, to_dict(cfg.data)], sort_keys=True, default=str)
    if key not in _SPLIT_SIZES:
        try:
            _, data = load_bound(cfg)
            _SPLIT_SIZES[key] = {"n_train": len(data.train), "n_test": len(data.test)}
        except Exception:  # the scores stand without it; the tests then round only float noise
            return {"n_train": None, "n_test": None}
    return dict(_SPLIT_SIZES[key])


def training_summary(run_dir: Path, cfg: Any, cell: Cell) -> dict[str, Any]:
    """What the report plots from a run's metrics: z-std and pairing-frequency curves, compute used."""
    from .metrics import MetricsLog

    if cell.objective == RANDOM:
        return {"steps_done": 0, "encoder_forwards": 0, "curve": []}
    rows = [r for r in MetricsLog.read(run_dir) if "loss" in r]
    keep = ("step", "loss", "z_std", "z_std_ref", "effective_rank")
    keep += ("pair_11_21", "pair_11_22", "pair_12_21", "pair_12_22")
    curve = [{k: r[k] for k in keep if k in r} for r in rows]
    steps = rows[-1]["step"] if rows else 0
    per_step = cfg.train.batch_size * cfg.train.grad_accum * VARIANTS[cell.objective].passes
    return {"steps_done": steps, "encoder_forwards": steps * per_step, "curve": curve}


def run_workers(suite_arg: str, out: Path, max_cells: int | None, workers: int) -> None:
    """Run ``workers`` processes of ``gsg benchmark`` on one suite folder; they share the cells by lock.

    Each gets ``OMP_NUM_THREADS`` = cores / workers unless the caller set it, and ``max_cells`` is
    split among them. The workers write no report; the caller does, once, after all have ended.
    """
    threads = os.environ.get("OMP_NUM_THREADS") or str(max(1, (os.cpu_count() or 1) // workers))
    env = {**os.environ, "OMP_NUM_THREADS": threads, "TQDM_DISABLE": "1"}
    procs = []
    for k in range(workers):
        cmd = [sys.executable, "-m", "gsg_multimodal", "benchmark", str(suite_arg), "--out", str(out), "--no-report"]
        if max_cells is not None:
            cmd += ["--max-cells", str(max_cells // workers + (k < max_cells % workers))]
        procs.append(subprocess.Popen(cmd, env=env))
    try:
        codes = [p.wait() for p in procs]
    except BaseException:  # Ctrl-C: stop every worker; their cells resume from checkpoints next time
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait()
        raise
    failed = [k for k, c in enumerate(codes) if c != 0]
    if failed:
        raise UserError(
            f"benchmark worker(s) {failed} exited with an error (see above); rerun the same command to continue"
        )


def run_benchmark(
    suite_arg: str,
    out: str | None,
    report: str | None,
    max_cells: int | None,
    report_only: bool,
    command: str = "gsg benchmark",
    workers: int = 1,
    write_report: bool = True,
    load_results: str | None = None,
    save_results: str | None = None,
) -> Path | None:
    from .benchmark_report import write_benchmark_report
    from .suite_archive import load_results as load_archive
    from .suite_archive import save_results as save_archive

    started = time.time()
    bench = Benchmark(suite_arg, out)
    if load_results:
        print(f"{load_results}: took {load_archive(bench, load_results)} finished cell(s) not done here")
    if not report_only:
        if workers > 1:
            before = bench.count_done()
            run_workers(suite_arg, bench.out, max_cells, workers)
            after = bench.count_done()
            total = len(bench.cells) + len(bench.transfer_jobs())
            counts = {"ran": after - before, "done_before": before, "remaining": total - after}
        else:
            counts = bench.run(max_cells)
            if not write_report:  # a worker of ``--workers``: its parent prints the suite's counts
                return None
        print(
            f"suite {bench.suite.name}: ran {counts['ran']} cell(s) now, {counts['done_before']} were cached, "
            f"{counts['remaining']} remain" + (" (rerun the same command to continue)" if counts["remaining"] else "")
        )
    if save_results:
        print(f"{save_results}: {save_archive(bench, save_results)} finished cell(s) saved")
    if not write_report:
        return None
    out_file = Path(report) if report else bench.out / "report.md"
    path = write_benchmark_report(bench, out_file, time.time() - started, command)
    print(f"report: {path}")
    return path
