"""The training loop on Hugging Face Accelerate. It knows nothing about any kind of data.

One step reads like the algorithm: batch -> views -> siamese forward -> objective ->
``accelerator.backward`` -> optimizer/scheduler step -> EMA update -> metrics.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from . import checkpoints
from .config import RunConfig, config_differences, flatten, to_dict
from .errors import UserError
from .metrics import MetricsLog
from .model import build_optimizer, lr_multiplier, scale_head_lr
from .monitors import StepMonitor
from .objectives import build_objective
from .report import write_run_report
from .runtime import CACHE_DIR, load_bound, make_accelerator
from .streaming import StreamLoader, StreamSource

# Parameters beyond this size are not trained weights but an update that ran away (e.g. optim.lr=1e30 makes
# every weight about 1e29 after one step while the loss, a cosine, stays finite).
EXPLODED = 1e8


def check_output_dir(run_dir: Path) -> None:
    """Refuse an output folder that cannot be used, before any work: a file, under a file, or not writable."""
    if run_dir.exists() and not run_dir.is_dir():
        raise UserError(f"output_dir '{run_dir}' is a file, not a folder; set output_dir=<a folder>")
    ancestor = run_dir
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise UserError(f"output_dir '{run_dir}' cannot be created: '{ancestor}' is a file; set output_dir=<a folder>")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise UserError(f"output_dir '{run_dir}' is not writable (no write permission on '{ancestor}'); "
                        "set output_dir=<a folder you can write to>")  # fmt: skip


def holds_run(run_dir: Path) -> bool:
    """Whether ``run_dir`` holds (part of) a run: its config, checkpoints, metrics or encoder."""
    names = ("config.yaml", "checkpoints", "metrics.jsonl", "encoder", checkpoints.RUN_FILE)
    return run_dir.is_dir() and any((run_dir / n).exists() for n in names)


def check_resume_config(run_dir: Path, cfg: RunConfig) -> None:
    from .config import build_config, read_yaml

    saved_file = run_dir / "config.yaml"
    if not saved_file.is_file():
        raise UserError(
            f"--resume: '{run_dir}' has no config.yaml, so it cannot be checked to be the same run; "
            "pass --overwrite to start it again, or set output_dir=<new folder>"
        )
    saved_raw = read_yaml(saved_file)
    if saved_raw.get("domain") != cfg.domain:
        raise UserError(
            f"cannot resume '{run_dir}': its checkpoints come from domain {saved_raw.get('domain')!r}, "
            f"not {cfg.domain!r} (a different config); resume with the run's own config.yaml"
        )
    # Through the dataclasses, so keys added to the config since the run was made take their defaults.
    differ = config_differences(build_config(saved_raw), cfg)
    if differ:
        shown = ", ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in list(differ.items())[:4])
        raise UserError(
            f"cannot resume '{run_dir}' with a different config ({shown}); "
            "use the run's own config.yaml or start a new output_dir"
        )


def accumulation_scale(batch_index: int, batches: int, grad_accum: int) -> float:
    """Factor on a batch's loss so that each accumulation group's gradient is the mean over its batches.

    ``accelerator.backward`` divides every loss by ``grad_accum``; Accelerate also steps at the end of
    the loader, so an epoch's last group may hold fewer batches (k) and would get a gradient k/grad_accum
    too small. Its losses are scaled by grad_accum/k; every full group is left as it is (factor 1).
    """
    if grad_accum <= 1:
        return 1.0
    start = (batch_index // grad_accum) * grad_accum
    size = min(grad_accum, batches - start)
    return 1.0 if size >= grad_accum else grad_accum / size


class Trainer:
    """Pretrains the domain's encoder with the configured objective (``objectives.py``), one path for all."""

    def __init__(self, cfg: RunConfig, resume: bool = False, overwrite: bool = False) -> None:
        self.cfg = cfg
        self.run_dir = Path(cfg.output_dir)
        check_output_dir(self.run_dir)
        if resume and overwrite:
            raise UserError("--resume and --overwrite contradict each other; pass one of them")
        self.accelerator = make_accelerator(cfg, self.run_dir, with_trackers=True)
        self.run_id: str | None = None
        self.last_checkpoint: Path | None = None  # the newest complete checkpoint of this run
        self.resume_from = self._prepare_run_dir(resume, overwrite)
        self.last_checkpoint = self.resume_from
        from accelerate.utils import set_seed

        set_seed(cfg.seed, deterministic=cfg.train.deterministic)
        self.domain, self.data = load_bound(cfg, self.accelerator, cache_dir=self.run_dir / CACHE_DIR)
        self.objective = build_objective(cfg, self.data)
        self._check_data()
        self.step_callbacks: list[Callable[[Trainer], None]] = []  # called after each optimizer step

    # ------------------------------------------------------------------ setup

    def _prepare_run_dir(self, resume: bool, overwrite: bool) -> Path | None:
        """Decide where the run starts; on the main process, tidy or replace what is there (nothing else writes)."""
        acc, run_dir = self.accelerator, self.run_dir
        has_run = holds_run(run_dir)
        if resume:
            if not has_run:
                raise UserError(f"--resume: '{run_dir}' holds no run; start it without --resume")
            check_resume_config(run_dir, self.cfg)
            if acc.is_main_process:
                for note in checkpoints.recover_partial(run_dir, self.cfg.train.keep_checkpoints):
                    print(f"--resume: {note}")
            acc.wait_for_everyone()
            self.run_id = checkpoints.read_run_id(run_dir)
            point = checkpoints.find_resume_point(run_dir, self.run_id, acc.num_processes)
            if point.path is not None and point.skipped:
                acc.print(f"--resume: skipped damaged {'; '.join(point.skipped)}; resuming from {point.path.name}")
            if point.path is None:
                if (run_dir / "encoder").exists():
                    raise UserError(
                        f"--resume: '{run_dir}' has an exported encoder but no checkpoint to continue from; "
                        "nothing was changed. Pass --overwrite to train it again"
                    )
                # Stopped before its first checkpoint: nothing is lost by starting over.
                acc.print(f"--resume: '{run_dir}' has no checkpoint yet; starting from the beginning")
            return point.path
        if has_run and not overwrite:
            raise UserError(
                f"output_dir '{run_dir}' already holds a run; pass --resume to continue it, "
                "--overwrite to replace it, or set output_dir=<new folder>"
            )
        if acc.is_main_process:
            for stale in run_dir.parent.glob(f".{run_dir.name}.replaced-*"):  # an overwrite killed while deleting
                shutil.rmtree(stale, ignore_errors=True)
            if has_run:
                # One rename takes the whole old run away (checkpoints, metrics, encoder), so none of it can
                # mix with the new run; then it is deleted.
                aside = checkpoints.move_aside(run_dir)
                checkpoints.kill_point("overwrite", 0)
                shutil.rmtree(aside, ignore_errors=True)
                print(f"--overwrite: replaced the run that was in '{run_dir}'")
        acc.wait_for_everyone()
        self.run_id = checkpoints.new_run_id()  # only the main process writes it (run.json, checkpoints)
        return None

    @property
    def train_rows(self) -> Any:
        """What the loader iterates: the pretraining split, or the labelled train split for the supervised ceiling."""
        return self.data.train if self.objective.needs_labels else self.data.pretrain

    @property
    def streaming(self) -> bool:
        """Whether the loader reads a ``StreamSource`` (shards read a few rows at a time) instead of a data set."""
        return isinstance(self.train_rows, StreamSource)

    def _check_data(self) -> None:
        if self.streaming:
            if self.cfg.train.steps is None:
                raise UserError(
                    "a streamed archive has no length, so the budget of a streaming run is counted in optimiser "
                    "steps: set train.steps=N (each pass over the archive is reshuffled; train.epochs does not apply)"
                )
            if not self.cfg.train.checkpoint_every:
                raise UserError(
                    "train.checkpoint_every=0 checkpoints at the end of each epoch, and a streaming run is a single "
                    "epoch of train.steps, so a kill would lose it all: set train.checkpoint_every=N optimiser steps"
                )
            return  # a pass with fewer examples than a batch is refused when it is read (streaming.next_batch)
        n = len(self.train_rows)
        if n == 0:
            raise UserError("the pretraining data set is empty; check data.* in the config")
        need = self.cfg.train.batch_size * self.accelerator.num_processes
        if n < need:
            raise UserError(
                f"train.batch_size={self.cfg.train.batch_size} x {self.accelerator.num_processes} process(es) "
                f"is larger than the data set ({n} rows); lower train.batch_size"
            )
        if self.cfg.train.batch_size < 2:
            raise UserError("train.batch_size must be at least 2 (BatchNorm and GSG pairing need two samples)")

    def _build(self) -> None:
        cfg, acc = self.cfg, self.accelerator
        model = self.objective.build(self.domain.encoder())
        # Train mode for every submodule: transformers' from_pretrained hands back its model in eval
        # mode, which would silently switch off the dropout that text views rely on (and the target
        # copied below inherits the mode).
        model.train()
        # SyncBatchNorm exists for GPUs only; on several CPU processes each keeps its own statistics.
        if cfg.train.sync_batchnorm and acc.num_processes > 1 and acc.device.type == "cuda":
            model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        extra_state = self.objective.attach(model, acc.device)  # e.g. BYOL's EMA target
        self.extra_state = list(extra_state)
        groups = self.objective.parameter_groups(model)
        groups = scale_head_lr(groups, model.encoder, cfg.optim.lr, cfg.optim.head_lr_scale)
        if cfg.train.compile:
            # Compiles in place: parameters and state-dict keys stay those of the plain model,
            # so checkpoints and exports are the same with or without compilation.
            model.compile()
        optimizer = build_optimizer(groups, cfg.optim, acc.device)
        if self.streaming:
            self._build_stream(model, optimizer)
        else:
            self._build_loader(model, optimizer)
        self._build_schedule(extra_state)

    def _build_loader(self, model: torch.nn.Module, optimizer: Any) -> None:
        from torch.utils.data import DataLoader

        cfg, acc = self.cfg, self.accelerator
        loader = DataLoader(
            self.train_rows,
            batch_size=cfg.train.batch_size,
            shuffle=True,
            drop_last=True,  # BatchNorm and the GSG pairing need full batches
            collate_fn=self.domain.collate,
            num_workers=cfg.train.num_workers,
            pin_memory=torch.cuda.is_available() and not cfg.train.cpu,
            persistent_workers=cfg.train.num_workers > 0,
        )
        self.model, self.optimizer, self.loader = acc.prepare(model, optimizer, loader)
        self.steps_per_epoch = math.ceil(len(self.loader) / cfg.train.grad_accum)  # Accelerate syncs at epoch end
        # The budget: optimiser steps when train.steps is set, else whole epochs; schedules are fractions of it.
        self.total_steps = cfg.train.steps or self.steps_per_epoch * cfg.train.epochs
        self.epochs = math.ceil(self.total_steps / self.steps_per_epoch)

    def _build_stream(self, model: torch.nn.Module, optimizer: Any) -> None:
        """A streamed archive: each process reads its own part (streaming.py), so the loader is not prepared.

        The stream never ends (pass after pass), so the whole budget is one epoch of train.steps x grad_accum
        batches, the same count on every process; its position is saved with each checkpoint.
        """
        cfg, acc = self.cfg, self.accelerator
        self.model, self.optimizer = acc.prepare(model, optimizer)
        self.total_steps = cfg.train.steps
        self.loader = StreamLoader(
            self.train_rows,
            cfg.train.batch_size,
            self.domain.collate,
            seed=cfg.seed,
            rank=acc.process_index,
            world=acc.num_processes,
            num_batches=self.total_steps * cfg.train.grad_accum,
            device=acc.device,
            workers=cfg.train.num_workers,
        )
        self.steps_per_epoch = self.total_steps
        self.epochs = 1

    def _build_schedule(self, extra_state: list) -> None:
        cfg, acc = self.cfg, self.accelerator
        warmup = round(cfg.optim.warmup_fraction * self.total_steps)

        def factor(group: dict) -> Any:
            if group.get("fixed_lr"):
                return lambda step: 1.0
            return lambda step: lr_multiplier(step, self.total_steps, warmup, cfg.optim.schedule)

        # Not passed to prepare(): Accelerate would step it once per process per step.
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer.optimizer, [factor(g) for g in self.optimizer.optimizer.param_groups]
        )
        acc.register_for_checkpointing(self.scheduler)
        for module in extra_state:
            acc.register_for_checkpointing(module)
        # Separate generators per purpose and per process: augmentations differ across ranks,
        # and both streams are saved with each checkpoint, so a resumed run draws the same numbers.
        rank_seed = cfg.seed * 1_000_003 + 7919 * acc.process_index
        self.aug_rng = torch.Generator(device=acc.device).manual_seed(rank_seed + 1)
        # The pairing is drawn on the host (see draw_pairing) and copied to the device asynchronously.
        self.pair_rng = torch.Generator().manual_seed(rank_seed + 2)
        if acc.process_index > 0:
            # set_seed gave every process the same global RNG: right for the initial weights (built above), wrong
            # for what training draws from it (dropout, DataLoader worker seeds), which would repeat on every rank.
            # Process 0 keeps its stream, so a one-process run is unchanged; a resume restores each process's state.
            torch.manual_seed(rank_seed + 3)
        self.step = self.epoch = self.batch_in_epoch = 0

    # ------------------------------------------------------------------ checkpoints

    def _check_weights(self, what: str) -> None:
        """Refuse to publish non-finite or exploded weights (one pass over the tensors, one device sync)."""
        acc = self.accelerator
        modules = [acc.unwrap_model(self.model), *self.extra_state]
        bad = torch.zeros((), device=acc.device)
        biggest = torch.zeros((), device=acc.device)
        for module in modules:
            for p in module.parameters():
                bad += (~torch.isfinite(p.detach())).any()
                biggest = torch.maximum(biggest, p.detach().abs().amax().float().nan_to_num(0.0, 0.0, 0.0))
            for b in module.buffers():
                if b.is_floating_point():
                    bad += (~torch.isfinite(b)).any()
        flags = acc.gather(torch.stack([bad.float(), biggest]).unsqueeze(0)).amax(0)
        if flags[0] > 0 or flags[1] > EXPLODED:
            state = "became NaN or infinite" if flags[0] > 0 else f"exploded (|w| up to {float(flags[1]):.1e})"
            kept = (
                f"the last good checkpoint '{self.last_checkpoint}' is kept"
                if self.last_checkpoint is not None
                else "the run has no checkpoint"
            )
            raise UserError(
                f"the weights {state} by step {self.step} while the loss was finite; this {what} was not written "
                f"and {kept}. Lower optim.lr (now {self.cfg.optim.lr:g}) or set optim.grad_clip"
            )

    def _save_checkpoint(self) -> None:
        acc = self.accelerator
        self._check_weights("checkpoint")
        tmp = checkpoints.temp_dir(self.run_dir, self.step)
        acc.save_state(str(tmp), safe_serialization=True)
        tmp.mkdir(parents=True, exist_ok=True)
        generators = {"aug": self.aug_rng.get_state(), "pair": self.pair_rng.get_state()}
        if self.streaming:
            generators["stream"] = self.loader.state_dict()  # this process's position in the archive
        torch.save(generators, tmp / f"generators_{acc.process_index}.pt")
        acc.wait_for_everyone()
        final = checkpoints.final_dir(self.run_dir, self.step)
        if acc.is_main_process:
            checkpoints.kill_point("saving", self.step)
            state = {
                "step": self.step,
                "epoch": self.epoch,
                "batch_in_epoch": self.batch_in_epoch,
                "domain": self.cfg.domain,
                "info": self.data.info,
                "num_processes": acc.num_processes,
                "run_id": self.run_id,
            }
            (tmp / checkpoints.STATE_FILE).write_text(json.dumps(state, indent=2))
            checkpoints.publish(tmp, final, self.cfg.train.keep_checkpoints)
        self.last_checkpoint = final
        acc.wait_for_everyone()

    def _load_checkpoint(self, path: Path) -> None:
        acc = self.accelerator
        state = checkpoints.read_state(path)
        assert state is not None  # find_resume_point only returns checkpoints that verify
        # Required by the manifest check: a checkpoint without them is skipped, never resumed inexactly.
        gens = torch.load(path / f"generators_{acc.process_index}.pt", weights_only=True)
        if self.streaming:
            # Before the data check below: a changed archive also changes its statistics, and the stream's own
            # check names what changed (shards), which the data check cannot.
            if "stream" not in gens:
                raise UserError(
                    f"checkpoint '{path}' holds no position in the streamed archive, so it cannot be resumed "
                    "exactly; resume it with the config it was made with, or pass --overwrite"
                )
            self.loader.load_state_dict(gens["stream"])
        if state["domain"] != self.cfg.domain or not self.domain.info_matches(state["info"]):
            raise UserError(
                f"checkpoint '{path}' was made for domain {state['domain']!r} with data {state['info']}, "
                f"not {self.cfg.domain!r} with {self.data.info}; resume it with its own config and data"
            )
        acc.load_state(str(path))
        self.step, self.epoch, self.batch_in_epoch = state["step"], state["epoch"], state["batch_in_epoch"]
        self.aug_rng.set_state(gens["aug"])
        self.pair_rng.set_state(gens["pair"])
        acc.print(f"resumed from {path} at step {self.step} (epoch {self.epoch}, batch {self.batch_in_epoch})")

    # ------------------------------------------------------------------ loop

    def _write_run_files(self) -> None:
        import yaml

        if self.accelerator.is_main_process:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            tmp = self.run_dir / "config.yaml.tmp"  # written whole, then renamed: never half a config
            tmp.write_text(yaml.safe_dump(to_dict(self.cfg), sort_keys=False))
            os.replace(tmp, self.run_dir / "config.yaml")
            if self.resume_from is None and not (self.run_dir / checkpoints.RUN_FILE).is_file() and self.run_id:
                checkpoints.write_run_id(self.run_dir, self.run_id)
            checkpoints.recover_partial(self.run_dir, self.cfg.train.keep_checkpoints)
        self.accelerator.wait_for_everyone()

    def train(self) -> dict[str, Any]:
        cfg, acc = self.cfg, self.accelerator
        self._write_run_files()
        self._build()
        if self.resume_from is not None:
            self._load_checkpoint(self.resume_from)
        log = MetricsLog(self.run_dir, self.step if self.resume_from else None) if acc.is_main_process else None
        if acc.log_with:
            acc.init_trackers(
                "gsg",
                config={
                    k: v if isinstance(v, (int, float, str, bool)) else str(v) for k, v in flatten(to_dict(cfg)).items()
                },
            )
        if "auto" in cfg.train.trackers and not acc.log_with:
            acc.print(
                "TensorBoard is not installed, so this run logs to metrics.jsonl/metrics.csv only; "
                "pip install 'gsg-multimodal[tensorboard]' (or set train.trackers=[none] to silence this)"
            )
        z_ref = 1.0 / math.sqrt(self.objective.watched_dim)
        monitor = StepMonitor(acc.device, collapse_below=cfg.monitor.collapse_fraction * z_ref)
        self.collapse_reported = False
        max_steps = min(cfg.train.max_steps or self.total_steps, self.total_steps)
        from tqdm.auto import tqdm

        bar = tqdm(
            total=max_steps,
            initial=self.step,
            desc="pretrain",
            unit="step",
            dynamic_ncols=True,
            disable=not (acc.is_local_main_process and cfg.train.progress_bar),
        )
        started, last_step, last_time = time.time(), self.step, time.time()
        samples_per_step = cfg.train.batch_size * cfg.train.grad_accum * acc.num_processes
        every = cfg.train.checkpoint_every
        stop = self.step >= max_steps
        while self.epoch < self.epochs and not stop:
            self.loader.set_epoch(self.epoch)
            if self.streaming or not self.batch_in_epoch:
                batches = self.loader  # a stream continues from the position its checkpoint restored
            else:
                batches = acc.skip_first_batches(self.loader, self.batch_in_epoch)
            for batch in batches:
                self._train_step(batch, monitor)
                self.batch_in_epoch += 1
                if not acc.sync_gradients:
                    continue
                self.step += 1
                bar.update(1)
                for callback in self.step_callbacks:
                    callback(self)
                if self.step % cfg.train.log_every == 0 or self.step == max_steps:
                    now = time.time()
                    self._check_health(monitor)
                    row = monitor.flush(acc)
                    row.update(
                        step=self.step,
                        epoch=self.epoch,
                        z_std_ref=z_ref,
                        lr=self.scheduler.get_last_lr()[0],
                        **self.objective.step_metrics(self.step, self.total_steps),
                        samples_per_s=(self.step - last_step) * samples_per_step / max(now - last_time, 1e-9),
                        stream_pass=self.loader.passes if self.streaming else None,  # the main process's pass
                        time_s=now - started,
                    )
                    last_step, last_time = self.step, now
                    self._log(row, log)
                    bar.set_postfix(loss=f"{row['loss']:.4f}", z_std=f"{row['z_std']:.4f}")
                checkpoints.kill_point("step", self.step)
                stop = self.step >= max_steps
                if self.batch_in_epoch >= len(self.loader):
                    # The epoch's last step: its checkpoint is written below, after the epoch's bookkeeping
                    # (epoch count, kNN row), so each step is saved once and holds every row logged up to it.
                    continue  # the loader ends here by itself
                if (every and self.step % every == 0) or stop:
                    self._check_health(monitor)
                    self._save_checkpoint()
                if stop:
                    break
            if stop and self.batch_in_epoch < len(self.loader):
                break  # stopped mid-epoch by max_steps: the checkpoint holds the position
            self.epoch += 1
            self.batch_in_epoch = 0
            if cfg.monitor.knn_every and self.data.labelled and self.epoch % cfg.monitor.knn_every == 0:
                self._log({"step": self.step, "epoch": self.epoch, "knn_acc": self.knn_monitor()}, log)
                checkpoints.kill_point("knn", self.step)
            if not every or self.step % every == 0 or stop or self.epoch == self.epochs:
                self._check_health(monitor)
                self._save_checkpoint()
        bar.close()
        finished = self.epoch >= self.epochs or self.step >= self.total_steps
        summary = {"steps": self.step, "epochs_done": self.epoch, "finished": finished, "wall_s": time.time() - started}
        if finished:
            checkpoints.kill_point("export", self.step)
            self.export()
        return summary

    def close(self) -> None:
        """Finish the trackers and leave the process group (after this, no collective calls)."""
        self.accelerator.end_training()

    def _check_health(self, monitor: StepMonitor) -> None:
        """Stop on a NaN/inf loss, and act on collapse, before either can reach a checkpoint.

        Checked when metrics are logged and before each checkpoint, not every step, so the
        step itself never waits for the device.
        """
        acc, mon = self.accelerator, self.cfg.monitor
        flags = acc.gather(torch.stack([monitor.first_bad_step, monitor.low_streak]).unsqueeze(0)).amax(0)
        bad, streak = int(flags[0]), int(flags[1])
        if bad > 0:
            kept = (
                f"the last good checkpoint '{self.last_checkpoint}' is kept"
                if self.last_checkpoint is not None
                else "no checkpoint had been written"
            )
            raise UserError(
                f"the loss became NaN or infinite at step {bad}; nothing after it was saved and {kept}. "
                "Lower optim.lr or check the data for NaN/inf values"
            )
        if mon.collapse_action != "off" and streak >= mon.collapse_patience and not self.collapse_reported:
            message = (
                f"representations collapsed: the std of normalised z stayed below {monitor.collapse_below:.4f} "
                f"({mon.collapse_fraction} x 1/sqrt(d)) for {streak} steps, up to step {self.step}"
            )
            if mon.collapse_action == "stop":
                raise UserError(f"{message}; stopped, the last checkpoint before it is kept")
            warnings.warn(message + " (set monitor.collapse_action=stop to stop such runs)", stacklevel=2)
            self.collapse_reported = True

    def _train_step(self, batch: dict[str, Any], monitor: StepMonitor) -> None:
        acc, cfg = self.accelerator, self.cfg
        with acc.accumulate(self.model):
            views = self.objective.views(self.domain, batch, self.aug_rng)
            out = self.objective.compute(self.model, views, batch, self.pair_rng, acc.autocast)
            scale = accumulation_scale(self.batch_in_epoch, len(self.loader), cfg.train.grad_accum)
            acc.backward(out.loss if scale == 1.0 else out.loss * scale)
            if acc.sync_gradients and cfg.optim.grad_clip:
                acc.clip_grad_norm_(self.model.parameters(), cfg.optim.grad_clip)
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
        # fp16: an update skipped by the gradient scaler (inf gradients) moves neither the schedule nor the EMA.
        if acc.sync_gradients and not acc.optimizer_step_was_skipped:
            self.scheduler.step()
            self.objective.after_step(acc.unwrap_model(self.model), self.step, self.total_steps)
        monitor.add(out.loss.detach(), out.watched, out.pairing_counts, self.step + 1)

    def _log(self, row: dict[str, Any], log: MetricsLog | None) -> None:
        row = {k: v for k, v in row.items() if v is not None}
        self.accelerator.log({k: v for k, v in row.items() if k not in ("step",)}, step=row["step"])
        if log is not None:
            log.write(row)

    def knn_monitor(self) -> float:
        """Weighted kNN accuracy of the current encoder, labelled train split as the bank.

        A monitor only: it never selects a checkpoint (the run always exports its last state).
        """
        from .features import encode_split
        from .probes import knn_predict

        acc, cfg = self.accelerator, self.cfg
        encoder = acc.unwrap_model(self.model).encoder
        bank_x, bank_y = encode_split(encoder, self.data.train, self.domain, acc, cfg.eval.batch_size)
        test_x, test_y = encode_split(encoder, self.data.test, self.domain, acc, cfg.eval.batch_size)
        classes = int(max(bank_y.max(), test_y.max())) + 1
        pred = knn_predict(bank_x, bank_y, test_x, cfg.monitor.knn_k, cfg.monitor.knn_temperature, classes)
        return float((pred == test_y).float().mean())

    def export(self) -> Path:
        """Write ``encoder/`` (safetensors + config.json) and the run report."""
        from .export import save_encoder

        acc = self.accelerator
        path = self.run_dir / "encoder"
        self._check_weights("encoder")
        if acc.is_main_process:
            meta = {
                "domain": self.cfg.domain,
                "info": self.data.info,
                "encoder": to_dict(self.cfg.encoder),
                "data": to_dict(self.cfg.data),
                "views": to_dict(self.cfg.views),
                "objective": to_dict(self.cfg.objective),
                "steps": self.step,
            }
            save_encoder(acc.unwrap_model(self.model).encoder, path, meta, extras=self.domain.export_extras)
            write_run_report(self.run_dir)
        acc.wait_for_everyone()
        return path
