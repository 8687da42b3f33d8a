"""Faults an adversary provokes: replaced runs, damaged or foreign checkpoints, exploding weights, bad values.

Every case ends in one clear line (exit code 2) or in a run identical to an uninterrupted one; never in a
traceback, a lost run or a silently wrong result. Kill points are injected in code (``GSG_KILL_AT``).
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from gsg_multimodal import checkpoints
from gsg_multimodal.cli import main
from gsg_multimodal.metrics import MetricsLog

from .conftest import ROOT, TINY
from .test_reliability import (
    CONFIG,
    EXACT,
    assert_same_weights,
    checkpoint_steps,
    fresh_process,
    full_history,
    toy_config,
)


def one_line_error(capsys: pytest.CaptureFixture) -> str:
    err = capsys.readouterr().err.strip()
    lines = [x for x in err.splitlines() if x.startswith("error:") or "Traceback" in x]
    assert len(lines) == 1 and lines[0].startswith("error: "), err[-2000:]
    return lines[0]


def pretrain(*args: str) -> int:
    code = main(["pretrain", CONFIG, *EXACT, *args])
    fresh_process()
    return code


# ---------------------------------------------------------------- item 1: --overwrite and run ids


@pytest.mark.slow
def test_overwrite_starts_clean_and_resume_refuses_another_runs_checkpoint(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    run, other = tmp_path / "run", tmp_path / "other"
    assert pretrain(f"output_dir={run}", "train.max_steps=12") == 0
    assert pretrain(f"output_dir={other}", "train.max_steps=12", "seed=5") == 0
    old_id = checkpoints.read_run_id(run)
    assert pretrain(f"output_dir={run}", "train.max_steps=3", "--overwrite") == 0
    assert "--overwrite: replaced the run" in capsys.readouterr().out
    assert checkpoint_steps(run) == [2, 3]  # the old run's 11, 12 are gone, the new 2, 3 kept
    assert checkpoints.read_run_id(run) != old_id
    assert [json.loads(x)["step"] for x in (run / "metrics.jsonl").read_text().splitlines()] == [1, 2, 3]
    assert not list(tmp_path.glob(".run.replaced-*"))
    # A checkpoint of another run (same config) copied in: resume refuses it instead of loading its weights.
    shutil.copytree(other / "checkpoints" / "step-000000012", run / "checkpoints" / "step-000000012")
    assert pretrain(f"output_dir={run}", "--resume") == 2
    assert "belongs to another run" in one_line_error(capsys)
    assert checkpoint_steps(run) == [2, 3, 12]  # nothing deleted


@pytest.mark.slow
def test_overwrite_killed_after_moving_the_old_run_aside(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = tmp_path / "run"
    assert pretrain(f"output_dir={run}", "train.max_steps=2") == 0
    monkeypatch.setenv(checkpoints.KILL_ENV, "overwrite:0")
    monkeypatch.setattr(checkpoints, "SIMULATE_KILL", True)
    with pytest.raises(checkpoints.SimulatedKill):
        main(["pretrain", CONFIG, *EXACT, f"output_dir={run}", "train.max_steps=2", "--overwrite"])
    monkeypatch.delenv(checkpoints.KILL_ENV)
    fresh_process()
    assert not run.exists() and len(list(tmp_path.glob(".run.replaced-*"))) == 1  # old run whole, aside
    assert pretrain(f"output_dir={run}", "train.max_steps=2") == 0  # no run there: a plain start
    assert pretrain(f"output_dir={run}", "train.max_steps=2", "--overwrite") == 0
    assert not list(tmp_path.glob(".run.replaced-*"))  # the leftover is cleaned by the next overwrite


# ---------------------------------------------------------------- item 2: non-finite or exploded weights


def published_weights_are_sane(run: Path) -> None:
    for step in checkpoint_steps(run):
        weights = load_file(str(checkpoints.final_dir(run, step) / "model.safetensors"))
        for name, w in weights.items():
            assert torch.isfinite(w).all(), name  # every tensor finite; parameters (not BN statistics) sane
            assert "running_" in name or not w.is_floating_point() or w.abs().max() < 1e8, name


@pytest.mark.slow
@pytest.mark.parametrize("lr, extra", [("1.0e+6", []), ("1.0e+30", ["train.steps=1"])])
def test_exploding_weights_are_never_published_nor_exported(
    tmp_path: Path, capsys: pytest.CaptureFixture, lr: str, extra: list[str]
) -> None:
    config = toy_config(tmp_path, train={"checkpoint_every": 1, "epochs": 3})
    assert main(["pretrain", str(config), f"optim.lr={lr}", *extra]) == 2
    line = one_line_error(capsys)
    assert re.search(r"(weights (became NaN or infinite|exploded)|loss became NaN)", line), line
    run = tmp_path / "run"
    assert not (run / "encoder").exists()  # never exported, never "finished"
    published_weights_are_sane(run)
    named = re.search(r"last good checkpoint '([^']+)' is kept", line)
    if named:  # the message's claim is true: that checkpoint exists, intact, with sane weights
        assert checkpoints.verify(Path(named.group(1))) is None
    else:
        assert "no checkpoint had been written" in line or "the run has no checkpoint" in line
        assert not checkpoint_steps(run)


# ---------------------------------------------------------------- item 3: never start over silently


@pytest.mark.slow
def test_damaged_or_missing_checkpoints_are_refused_not_restarted(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    run = tmp_path / "run"
    assert pretrain(f"output_dir={run}", "train.max_steps=7") == 0
    history = (run / "metrics.jsonl").read_text()
    for step in checkpoint_steps(run):  # every checkpoint damaged
        weights = checkpoints.final_dir(run, step) / "model.safetensors"
        weights.write_bytes(weights.read_bytes()[:50])
    capsys.readouterr()
    with pytest.warns(UserWarning, match="damaged"):
        assert pretrain(f"output_dir={run}", "--resume") == 2
    line = one_line_error(capsys)
    assert "no intact checkpoint" in line and "step-000000007: model.safetensors is truncated" in line
    assert (run / "metrics.jsonl").read_text() == history  # the history is untouched
    assert checkpoint_steps(run) == [6, 7]  # nothing deleted
    shutil.rmtree(run / "checkpoints")
    (run / "checkpoints").write_text("not a folder")
    assert pretrain(f"output_dir={run}", "--resume") == 2
    assert "is not a folder" in one_line_error(capsys)
    assert (run / "metrics.jsonl").read_text() == history


@pytest.mark.slow
def test_finished_run_without_checkpoints_is_not_retrained_by_resume(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    run = tmp_path / "run"
    assert pretrain(f"output_dir={run}", "train.epochs=1") == 0
    encoder = (run / "encoder" / "model.safetensors").read_bytes()
    shutil.rmtree(run / "checkpoints")
    assert pretrain(f"output_dir={run}", "train.epochs=1", "--resume") == 2
    assert "exported encoder but no checkpoint" in one_line_error(capsys)
    assert (run / "encoder" / "model.safetensors").read_bytes() == encoder


def test_a_kill_between_the_two_renames_of_a_resave_keeps_a_complete_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Re-saving a step moves the old copy aside, then renames the new one in: killed in between, the old
    copy is renamed back on the next start (never deleted as a leftover)."""
    run = tmp_path / "run"
    final = checkpoints.final_dir(run, 5)

    def fake_checkpoint(folder: Path, payload: bytes) -> None:
        folder.mkdir(parents=True)
        (folder / "model.safetensors").write_bytes(payload)
        (folder / "generators_0.pt").write_bytes(b"g")
        state = {"step": 5, "epoch": 1, "batch_in_epoch": 0, "domain": "d", "info": {}, "num_processes": 1}
        (folder / checkpoints.STATE_FILE).write_text(json.dumps(state))

    fake_checkpoint(checkpoints.temp_dir(run, 5), b"old")
    checkpoints.publish(checkpoints.temp_dir(run, 5), final, keep=2)
    fake_checkpoint(checkpoints.temp_dir(run, 5), b"new")
    monkeypatch.setenv(checkpoints.KILL_ENV, "between-renames:5")
    monkeypatch.setattr(checkpoints, "SIMULATE_KILL", True)
    with pytest.raises(checkpoints.SimulatedKill):
        checkpoints.publish(checkpoints.temp_dir(run, 5), final, keep=2)
    assert not final.exists()  # the moment of danger: neither copy is published
    notes = checkpoints.recover_partial(run, keep=2)
    assert notes == ["completed the interrupted save of step-000000005"]
    assert checkpoints.verify(final) is None and not list(final.parent.glob(".*"))
    # An unsealed temp folder (killed before its manifest) is only a leftover: deleted.
    (checkpoints.temp_dir(run, 6)).mkdir()
    assert checkpoints.recover_partial(run) == [] and checkpoint_steps(run) == [5]


# ---------------------------------------------------------------- item 5: manifest and launch


def damage_manifest(ckpt: Path) -> None:
    (ckpt / checkpoints.MANIFEST).write_text("")


def empty_manifest(ckpt: Path) -> None:
    (ckpt / checkpoints.MANIFEST).write_text("{}")


def list_manifest(ckpt: Path) -> None:
    (ckpt / checkpoints.MANIFEST).write_text("[1, 2]")


def partial_manifest(ckpt: Path) -> None:
    entries = json.loads((ckpt / checkpoints.MANIFEST).read_text())
    entries.pop("optimizer.bin")
    (ckpt / checkpoints.MANIFEST).write_text(json.dumps(entries))


def malformed_entry(ckpt: Path) -> None:
    entries = json.loads((ckpt / checkpoints.MANIFEST).read_text())
    entries["model.safetensors"] = "abc"
    (ckpt / checkpoints.MANIFEST).write_text(json.dumps(entries))


def no_generators(ckpt: Path) -> None:
    (ckpt / "generators_0.pt").unlink()


def generators_unlisted(ckpt: Path) -> None:  # removed from disk and from the manifest: still incomplete
    (ckpt / "generators_0.pt").unlink()
    checkpoints.write_manifest(ckpt)


def state_without_keys(ckpt: Path) -> None:
    (ckpt / checkpoints.STATE_FILE).write_text(json.dumps({"step": 12}))
    checkpoints.write_manifest(ckpt)


DAMAGES = {
    "unreadable manifest": (damage_manifest, "no readable manifest"),
    "empty manifest": (empty_manifest, "manifest is empty or malformed"),
    "manifest of the wrong shape": (list_manifest, "manifest is empty or malformed"),
    "partial manifest": (partial_manifest, "optimizer.bin is not in its manifest"),
    "malformed manifest entry": (malformed_entry, "entry for model.safetensors is malformed"),
    "missing generator file": (no_generators, "generators_0.pt is missing"),
    "generator file gone from the manifest too": (generators_unlisted, "does not list generators_0.pt"),
    "trainer state without its keys": (state_without_keys, "trainer_state.json is unreadable or incomplete"),
}


@pytest.fixture(scope="module")
def twelve_steps(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("twelve") / "run"
    assert pretrain(f"output_dir={run}", "train.max_steps=12") == 0
    return run


@pytest.mark.slow
@pytest.mark.parametrize("damage", list(DAMAGES))
def test_incomplete_checkpoint_falls_back_to_the_older_one_and_says_which(
    twelve_steps: Path, tmp_path: Path, capsys: pytest.CaptureFixture, damage: str
) -> None:
    damage_fn, reason = DAMAGES[damage]
    run = tmp_path / "run"
    shutil.copytree(twelve_steps, run)
    damage_fn(checkpoints.final_dir(run, 12))
    with pytest.warns(UserWarning, match=re.escape(reason)):
        point = checkpoints.find_resume_point(run, checkpoints.read_run_id(run), 1)
    assert point.path == checkpoints.final_dir(run, 11)
    assert len(point.skipped) == 1 and point.skipped[0].startswith("step-000000012: ") and reason in point.skipped[0]


@pytest.mark.slow
def test_resume_with_another_number_of_processes_is_refused(
    twelve_steps: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """The checkpoint says 2 processes (as a torchrun --nproc_per_node 2 run would write), this launch has 1."""
    run = tmp_path / "run"
    shutil.copytree(twelve_steps, run)
    for step in checkpoint_steps(run):
        ckpt = checkpoints.final_dir(run, step)
        state = json.loads((ckpt / checkpoints.STATE_FILE).read_text())
        (ckpt / checkpoints.STATE_FILE).write_text(json.dumps({**state, "num_processes": 2}))
        shutil.copy(ckpt / "generators_0.pt", ckpt / "generators_1.pt")
        checkpoints.write_manifest(ckpt)
    assert pretrain(f"output_dir={run}", "--resume") == 2
    line = one_line_error(capsys)
    assert "made by 2 process(es), this launch has 1" in line and "torchrun --nproc_per_node 2" in line


# ---------------------------------------------------------------- item 4: metric files


def test_metric_files_are_replaced_whole_on_resume(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = MetricsLog(tmp_path)
    for step in range(1, 6):
        log.write({"step": step, "loss": -0.1 * step})
    before = (tmp_path / "metrics.jsonl").read_text()

    def killed(src: object, dst: object) -> None:
        raise checkpoints.SimulatedKill("os.replace")

    monkeypatch.setattr("gsg_multimodal.metrics.os.replace", killed)
    with pytest.raises(checkpoints.SimulatedKill):
        MetricsLog(tmp_path, resume_step=3)
    assert (tmp_path / "metrics.jsonl").read_text() == before  # a kill mid-rewrite leaves the old history whole
    monkeypatch.undo()
    MetricsLog(tmp_path, resume_step=3)
    assert [r["step"] for r in MetricsLog.read(tmp_path)] == [1, 2, 3]
    assert not list(tmp_path.glob("*.tmp"))


@pytest.mark.slow
def test_knn_row_on_an_epoch_boundary_checkpoint_is_logged_once(tmp_path: Path) -> None:
    """The shipped config's case (checkpoint_every=150 falls on an epoch end), scaled down: 5 steps per epoch,
    a checkpoint every 5 steps, kNN every epoch; stopped at the boundary and resumed."""
    args = ["train.checkpoint_every=5", "monitor.knn_every=1", "train.epochs=3"]
    reference, run = tmp_path / "reference", tmp_path / "run"
    assert pretrain(f"output_dir={reference}", *args) == 0
    assert pretrain(f"output_dir={run}", *args, "train.max_steps=10") == 0
    assert pretrain(f"output_dir={run}", *args, "--resume") == 0
    assert full_history(run) == full_history(reference)
    knn_steps = [r["step"] for r in full_history(run) if "knn_acc" in r]
    assert knn_steps == [5, 10, 15]
    assert_same_weights(reference, run)


# ---------------------------------------------------------------- item 6: bad values, one line each

BAD_VALUES = [
    ("optim.lr=-1", "optim.lr"),
    ("optim.lr=0", "optim.lr"),
    ("optim.lr=.nan", "optim.lr"),
    ("optim.weight_decay=-0.1", "optim.weight_decay"),
    ("optim.momentum=1.5", "optim.momentum"),
    ("optim.betas=[0.9,1.0]", "optim.betas"),
    ("optim.warmup_fraction=2", "optim.warmup_fraction"),
    ("optim.grad_clip=0", "optim.grad_clip"),
    ("optim.head_lr_scale=0", "optim.head_lr_scale"),
    ("train.log_every=0", "train.log_every"),
    ("train.grad_accum=0", "train.grad_accum"),
    ("train.epochs=0", "train.epochs"),
    ("train.epochs=-3", "train.epochs"),
    ("train.steps=0", "train.steps"),
    ("train.steps=-5", "train.steps"),
    ("train.max_steps=0", "train.max_steps"),
    ("train.batch_size=1", "train.batch_size"),
    ("train.keep_checkpoints=0", "train.keep_checkpoints"),
    ("train.checkpoint_every=-1", "train.checkpoint_every"),
    ("train.num_workers=-1", "train.num_workers"),
    ("model.projector_dim=0", "model.projector_dim"),
    ("model.projector_layers=0", "model.projector_layers"),
    ("model.predictor_hidden=-4", "model.predictor_hidden"),
    ("objective.momentum=1.1", "objective.momentum"),
    ("monitor.knn_every=-1", "monitor.knn_every"),
    ("monitor.knn_k=0", "monitor.knn_k"),
    ("monitor.collapse_patience=0", "monitor.collapse_patience"),
    ("eval.cv_folds=1", "eval.cv_folds"),
    ("eval.knn_k=[]", "eval.knn_k"),
    ("eval.svm_c=[0]", "eval.svm_c"),
    ("eval.batch_size=0", "eval.batch_size"),
    ("eval.probe_train_max=1", "eval.probe_train_max"),
    ("seed=-1", "seed"),
    ("seed=4294967296", "seed"),
    ("output_dir=", "output_dir"),
]


@pytest.mark.parametrize("override, key", BAD_VALUES)
def test_out_of_range_values_give_one_line_naming_the_key(
    override: str, key: str, capsys: pytest.CaptureFixture
) -> None:
    assert main(["pretrain", CONFIG, override]) == 2
    assert f"'{key}'" in one_line_error(capsys)


def test_cv_folds_refusal_explains_why(capsys: pytest.CaptureFixture) -> None:
    assert main(["pretrain", CONFIG, "eval.cv_folds=1"]) == 2
    assert "cross-validation" in one_line_error(capsys)


@pytest.mark.parametrize("typed, value", [("1e-3", 1e-3), ("5E-2", 5e-2), ("1.0e-3", 1e-3), (".5", 0.5), ("2", 2.0)])
def test_numbers_in_the_forms_people_type(typed: str, value: float) -> None:
    from gsg_multimodal.config import load_config

    assert load_config(CONFIG, [f"optim.lr={typed}"]).optim.lr == value
    assert load_config(CONFIG, ["train.steps=1e3"]).train.steps == 1000


def test_unusable_output_folders_are_refused_before_any_work(
    tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("x")
    assert main(["pretrain", CONFIG, *TINY, f"output_dir={a_file}"]) == 2
    assert "is a file, not a folder" in one_line_error(capsys)
    assert main(["pretrain", CONFIG, *TINY, f"output_dir={a_file / 'sub' / 'run'}"]) == 2
    assert "cannot be created" in one_line_error(capsys)
    monkeypatch.setattr("gsg_multimodal.trainer.os.access", lambda path, mode: False)  # tests run as root
    assert main(["pretrain", CONFIG, *TINY, f"output_dir={tmp_path / 'ro' / 'run'}"]) == 2
    assert "not writable" in one_line_error(capsys)
    assert not (tmp_path / "ro").exists()


def test_resume_and_overwrite_together_or_a_folder_without_config(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    assert main(["pretrain", CONFIG, *TINY, f"output_dir={tmp_path}", "--resume", "--overwrite"]) == 2
    assert "contradict" in one_line_error(capsys)
    (tmp_path / "run" / "checkpoints").mkdir(parents=True)
    assert main(["pretrain", CONFIG, *TINY, f"output_dir={tmp_path / 'run'}", "--resume"]) == 2
    assert "has no config.yaml" in one_line_error(capsys)
    assert main(["pretrain", CONFIG, *TINY, f"output_dir={tmp_path / 'run'}"]) == 2  # not a silent start either
    assert "already holds a run" in one_line_error(capsys)


# ---------------------------------------------------------------- item 8: compare reuses only the same run


def fake_finished_run(run_dir: Path, overrides: list[str]) -> None:
    import yaml

    from gsg_multimodal.config import load_config, to_dict

    cfg = load_config(CONFIG, [*overrides, f"output_dir={run_dir}"])
    (run_dir / "encoder").mkdir(parents=True)
    (run_dir / "config.yaml").write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))
    (run_dir / "encoder" / "config.json").write_text("{}")


def test_compare_refuses_a_variant_folder_of_another_config(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from gsg_multimodal.variants import VARIANTS

    out = tmp_path / "cmp"
    fake_finished_run(out / "gsg", [*VARIANTS["gsg"].overrides, "data.name=ItalyPowerDemand"])
    code = main(["compare", CONFIG, "data.name=GunPoint", "seed=1", "--variants", "gsg", "--out", str(out)])
    assert code == 2
    line = one_line_error(capsys)
    assert "holds a run of a different config" in line and "data.name: 'ItalyPowerDemand' -> 'GunPoint'" in line
    assert "seed: 0 -> 1" in line and "nothing was trained" in line
    assert not (out / "compare.md").exists()


def test_compare_reuses_resumes_or_refuses_by_the_resolved_config(tmp_path: Path) -> None:
    from gsg_multimodal.cli import _compare_action
    from gsg_multimodal.config import load_config
    from gsg_multimodal.errors import UserError

    run = tmp_path / "gsg"

    def wanted(*extra: str):  # noqa: ANN202
        return load_config(CONFIG, ["data.name=GunPoint", *extra, f"output_dir={run}"])

    assert _compare_action(run, wanted()) == ""  # nothing there: train
    fake_finished_run(run, ["data.name=GunPoint"])
    assert _compare_action(run, wanted()) == "reuse"
    assert _compare_action(run, wanted("train.progress_bar=false")) == "reuse"  # changes nothing computed
    with pytest.raises(UserError, match=r"eval.cv_folds: 5 -> 3"):  # evaluation reads the run's own settings
        _compare_action(run, wanted("eval.cv_folds=3"))
    with pytest.raises(UserError, match=r"optim.lr: 0.001 -> 0.1"):
        _compare_action(run, wanted("optim.lr=0.1"))
    shutil.rmtree(run / "encoder")  # unfinished, same config: resumed
    assert _compare_action(run, wanted("eval.cv_folds=3")) == "--resume"


# ---------------------------------------------------------------- item 9: accumulation and skipped steps


def test_partial_accumulation_group_gets_the_mean_gradient() -> None:
    from accelerate import Accelerator

    from gsg_multimodal.trainer import accumulation_scale

    # 7 batches, groups of 3: [0,1,2] [3,4,5] [6]; the last group's one batch must weigh 1, not 1/3.
    scales = [accumulation_scale(b, 7, 3) for b in range(7)]
    assert scales == [1, 1, 1, 1, 1, 1, 3]
    assert [accumulation_scale(b, 5, 2) for b in range(5)] == [1, 1, 1, 1, 2]
    assert all(accumulation_scale(b, 6, 3) == 1 for b in range(6)) and accumulation_scale(0, 4, 1) == 1
    # What the scale corrects: Accelerate divides every loss by grad_accum in backward().
    acc = Accelerator(cpu=True, gradient_accumulation_steps=3)
    w = torch.nn.Parameter(torch.ones(()))
    acc.backward(w * 1.0 * accumulation_scale(6, 7, 3))
    assert float(w.grad) == pytest.approx(1.0)  # d(w)/dw: the mean over a group of one batch


@pytest.mark.slow
def test_partial_group_scale_reaches_the_trainer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Toy data: 200 pretraining rows / 32 = 6 batches per epoch; grad_accum=5 -> groups of 5 and 1 (x5)."""
    from accelerate import Accelerator

    seen: list[float] = []
    real_backward = Accelerator.backward

    def backward(self: Accelerator, loss: torch.Tensor, **kwargs: object) -> None:
        seen.append(float(loss.detach()))
        real_backward(self, loss, **kwargs)

    monkeypatch.setattr(Accelerator, "backward", backward)
    losses: list[float] = []
    from gsg_multimodal import trainer as trainer_module

    real_scale = trainer_module.accumulation_scale
    monkeypatch.setattr(trainer_module, "accumulation_scale", lambda *a: (losses.append(real_scale(*a)), losses[-1])[1])
    config = toy_config(tmp_path, train={"epochs": 1, "grad_accum": 5})
    assert main(["pretrain", str(config)]) == 0
    assert losses == [1.0] * 5 + [5.0]
    assert len(seen) == 6


@pytest.mark.slow
def test_skipped_fp16_step_moves_neither_schedule_nor_ema(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """fp16 needs a GPU; here Accelerate's ``optimizer_step_was_skipped`` is faked True on steps 2 and 3 (what
    the gradient scaler reports after inf gradients). Covers the trainer's handling, not the scaler itself."""
    from accelerate import Accelerator

    from gsg_multimodal.config import load_config
    from gsg_multimodal.trainer import Trainer

    config = toy_config(tmp_path, train={"epochs": 1}, objective={"method": "byol"})
    cfg = load_config(config)
    trainer = Trainer(cfg)
    monkeypatch.setattr(Accelerator, "optimizer_step_was_skipped", property(lambda self: trainer.step + 1 in (2, 3)))
    ema_steps: list[int] = []
    real_after = trainer.objective.after_step
    trainer.objective.after_step = lambda net, step, total: (ema_steps.append(step), real_after(net, step, total))
    summary = trainer.train()
    trainer.close()
    assert summary["steps"] == 6
    assert ema_steps == [0, 3, 4, 5]  # the updates of steps 2 and 3 (after_step indices 1, 2) were skipped
    assert trainer.scheduler.last_epoch == 4


def test_shipped_configs_still_load() -> None:
    from gsg_multimodal.config import load_config

    for path in sorted((ROOT / "configs").glob("*.yaml")):
        if "suite" not in path.name:
            load_config(path)
