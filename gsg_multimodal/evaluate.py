"""``gsg evaluate``: frozen-encoder features of a run -> kNN, linear probe and RBF SVM."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .errors import UserError


def load_run_config(run_dir: str | Path, overrides: list[str] | None = None) -> Any:
    """The run's resolved ``config.yaml``, with ``key=value`` overrides applied on top."""
    from .config import build_config, merge, parse_overrides, read_yaml

    run_dir = Path(run_dir)
    if not (run_dir / "config.yaml").is_file():
        raise UserError(f"'{run_dir}' is not a run directory (no config.yaml); pass the output_dir of 'gsg pretrain'")
    return build_config(merge(read_yaml(run_dir / "config.yaml"), parse_overrides(overrides or [])))


def is_transfer(run_dir: str | Path, cfg: Any) -> bool:
    """Whether ``cfg`` (the run's config with overrides) reads other data or views than the run was trained on."""
    from .config import to_dict

    trained = load_run_config(run_dir)
    return any(to_dict(getattr(trained, s)) != to_dict(getattr(cfg, s)) for s in ("data", "views")) or (
        trained.domain != cfg.domain
    )


def override_slug(overrides: list[str]) -> str:
    """A file-name-safe name for a set of overrides: ``data.name=GunPoint`` -> ``data.name-GunPoint``."""
    import re

    text = "_".join(o.replace("=", "-") for o in overrides)
    return re.sub(r"[^A-Za-z0-9_.,-]+", "", text)[:80] or "overrides"


def log_scores(accelerator: Any, results: dict[str, Any], prefix: str, step: int) -> None:
    """Send probe accuracies and macro-F1 to the run's trackers (TensorBoard, W&B, ...), if it has any."""
    if not accelerator.log_with:
        return
    values = {}
    for probe in ("knn", "linear", "svm"):
        for metric in ("accuracy", "macro_f1"):
            value = (results.get(probe) or {}).get(metric)
            if isinstance(value, (int, float)):
                values[f"{prefix}/{probe}_{metric}"] = float(value)
    accelerator.init_trackers("gsg")
    accelerator.log(values, step=step)
    for tracker in accelerator.trackers:
        tracker.finish()


def initial_encoder(cfg: Any, domain: Any) -> Any:
    """The encoder as the run's config builds it before pretraining, seeded like the run."""
    from accelerate.utils import set_seed

    set_seed(cfg.seed)
    return domain.encoder()


def run_features(
    run_dir: str | Path,
    random_init: bool,
    splits: tuple[str, ...] = ("train", "test"),
    cfg: Any = None,
    with_trackers: bool = False,
) -> tuple[dict[str, tuple[Any, Any]], Any, Any, Any]:
    """Features of a run's labelled splits: ``({split: (x, y)}, cfg, domain, accelerator)``, as NumPy arrays.

    ``random_init``: the encoder before pretraining (the floor) instead of the exported one.
    ``cfg``: the run's config with overrides (default: its ``config.yaml``); ``with_trackers``: the
    accelerator gets the config's trackers, for ``log_scores``.
    """
    from .export import load_encoder
    from .features import encode_split
    from .runtime import CACHE_DIR, load_bound, make_accelerator

    run_dir = Path(run_dir)
    cfg = cfg if cfg is not None else load_run_config(run_dir)
    accelerator = make_accelerator(cfg, run_dir, with_trackers=with_trackers)
    domain, data = load_bound(cfg, cache_dir=run_dir / CACHE_DIR)  # the run's own data: reuse what it derived
    if not data.labelled:
        raise UserError(f"data set {cfg.data} has no labelled train and test splits; evaluation needs both")
    if random_init:
        encoder = initial_encoder(cfg, domain)
    else:
        encoder = load_encoder(run_dir)
        if encoder.gsg_config["domain"] != cfg.domain or not domain.info_matches(encoder.gsg_config["info"]):
            raise UserError(
                f"the encoder in '{run_dir}' was trained on {encoder.gsg_config['info']} "
                f"({encoder.gsg_config['domain']}), which does not match the data {data.info}"
            )
    encoder = encoder.to(accelerator.device)
    feats = {}
    for split in splits:
        x, y = encode_split(
            encoder, getattr(data, split), domain, accelerator, cfg.eval.batch_size, progress=f"encode {split}"
        )
        feats[split] = (x.numpy(), y.numpy())
    accelerator.gsg_steps = 0 if random_init else int(encoder.gsg_config.get("steps", 0))
    return feats, cfg, domain, accelerator


def evaluate_run(run_dir: str | Path, random_init: bool = False, overrides: list[str] | None = None) -> dict[str, Any]:
    """Evaluate the run's exported encoder, or a randomly initialised one of the same config (the floor).

    Hyper-parameters are chosen by cross-validation on the labelled training split only;
    accuracy and macro-F1 are measured on the test split. Results go to
    ``eval.json`` / ``eval_random.json`` in the run directory, the model card of its export
    (``encoder/README.md``), and the run's trackers when it has any. ``overrides`` change the
    evaluation settings (``eval.*``, ``train.trackers``); for other data use ``evaluate_transfer``.
    """
    import torch

    from .collapse import collapse_stats
    from .export import update_model_card
    from .probes import evaluate_features
    from .report import write_run_report

    run_dir = Path(run_dir)
    cfg = load_run_config(run_dir, overrides)
    feats, cfg, domain, accelerator = run_features(run_dir, random_init, cfg=cfg, with_trackers=True)
    results: dict[str, Any] = {}
    if accelerator.is_main_process:
        results = evaluate_features(*feats["train"], *feats["test"], cfg.eval, seed=cfg.seed)
        results["encoder"] = domain.initial_encoder_name() if random_init else str(run_dir / "encoder")
        results["feature_dim"] = int(feats["train"][0].shape[1])
        # Collapse where it can show: eval-mode encoder features of the test split, no BatchNorm after them.
        results["collapse"] = collapse_stats(torch.from_numpy(feats["test"][0]))
        out = run_dir / ("eval_random.json" if random_init else "eval.json")
        out.write_text(json.dumps(results, indent=2))
        write_run_report(run_dir)
        update_model_card(run_dir)
    log_scores(accelerator, results, "eval_random" if random_init else "eval", accelerator.gsg_steps)
    accelerator.wait_for_everyone()
    return results


def evaluate_floor(run_dir: str | Path) -> dict[str, Any] | None:
    """The domain's hand-crafted baseline (e.g. TF-IDF or MFCC + logistic regression) on the run's data.

    Written to ``eval_floor.json``; ``None`` when the domain has no such baseline.
    """
    from .report import write_run_report
    from .runtime import CACHE_DIR, load_bound

    run_dir = Path(run_dir)
    cfg = load_run_config(run_dir)
    domain, data = load_bound(cfg, cache_dir=run_dir / CACHE_DIR)
    if not data.labelled:
        raise UserError(f"data set {cfg.data} has no labelled train and test splits; evaluation needs both")
    results = domain.handcrafted_floor(data, cfg.eval, cfg.seed)
    if results is None:
        return None
    (run_dir / "eval_floor.json").write_text(json.dumps(results, indent=2))
    write_run_report(run_dir)
    return results


def evaluate_transfer(
    run_dir: str | Path, target: Any, out_file: str | Path, log_as: str | None = None
) -> dict[str, Any]:
    """Evaluate the run's frozen encoder on another data set (``target``: a run config naming it).

    The target may be of another domain: it only has to feed the encoder what it was trained on
    (``Domain.encoder_input`` equal on both sides, e.g. mono series for audio waveforms and sensors).
    ``log_as``: also send the scores to the target config's trackers under this prefix
    (``gsg evaluate RUN data.name=...`` does, into the run's own tracker folder).
    """
    from .config import to_dict
    from .export import export_domain, load_encoder, read_encoder_config
    from .features import encode_split
    from .probes import evaluate_features
    from .runtime import load_bound, make_accelerator

    out_file = Path(out_file)
    trained = read_encoder_config(run_dir)
    source_input = export_domain(trained).encoder_input()
    accelerator = make_accelerator(target, out_file.parent, with_trackers=log_as is not None)
    domain, data = load_bound(target)
    if not data.labelled:
        raise UserError(f"transfer target {target.data} has no labelled train and test splits")
    target_input = domain.encoder_input()
    if source_input is None or source_input != target_input:
        raise UserError(
            f"the {trained['domain']} encoder in '{run_dir}' reads {source_input or 'inputs of its own'}, but the "
            f"{target.domain} target gives {target_input or 'inputs of its own'}; pick a target with the same input "
            "(e.g. an equal channel count)"
        )
    encoder = load_encoder(run_dir).to(accelerator.device)
    feats = {}
    for split in ("train", "test"):
        x, y = encode_split(
            encoder, getattr(data, split), domain, accelerator, target.eval.batch_size, progress=f"encode {split}"
        )
        feats[split] = (x.numpy(), y.numpy())
    results: dict[str, Any] = {}
    if accelerator.is_main_process:
        results = evaluate_features(*feats["train"], *feats["test"], target.eval, seed=target.seed)
        results["encoder"] = str(Path(run_dir) / "encoder")
        results["encoder_input"] = source_input
        results["target"] = {"domain": target.domain, **to_dict(target.data)}
        out_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = out_file.with_name(out_file.name + ".tmp")
        tmp.write_text(json.dumps(results, indent=2))
        tmp.replace(out_file)
    if log_as is not None:
        log_scores(accelerator, results, log_as, int(encoder.gsg_config.get("steps", 0)))
    accelerator.wait_for_everyone()
    return results
