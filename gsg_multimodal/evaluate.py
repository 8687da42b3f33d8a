"""``gsg evaluate``: frozen-encoder features of a run -> kNN, linear probe and RBF SVM."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .errors import UserError


def load_run_config(run_dir: str | Path) -> Any:
    from .config import build_config, read_yaml

    run_dir = Path(run_dir)
    if not (run_dir / "config.yaml").is_file():
        raise UserError(f"'{run_dir}' is not a run directory (no config.yaml); pass the output_dir of 'gsg pretrain'")
    return build_config(read_yaml(run_dir / "config.yaml"))


def initial_encoder(cfg: Any, domain: Any) -> Any:
    """The encoder as the run's config builds it before pretraining, seeded like the run."""
    from accelerate.utils import set_seed

    set_seed(cfg.seed)
    return domain.encoder()


def run_features(
    run_dir: str | Path, random_init: bool, splits: tuple[str, ...] = ("train", "test")
) -> tuple[dict[str, tuple[Any, Any]], Any, Any, Any]:
    """Features of a run's labelled splits: ``({split: (x, y)}, cfg, domain, data)``, as NumPy arrays.

    ``random_init``: the encoder before pretraining (the floor) instead of the exported one.
    """
    from .export import load_encoder
    from .features import encode_split
    from .runtime import load_bound, make_accelerator

    run_dir = Path(run_dir)
    cfg = load_run_config(run_dir)
    accelerator = make_accelerator(cfg, run_dir, with_trackers=False)
    domain, data = load_bound(cfg)
    if not data.labelled:
        raise UserError(f"data set {cfg.data} has no labelled train and test splits; evaluation needs both")
    if random_init:
        encoder = initial_encoder(cfg, domain)
    else:
        encoder = load_encoder(run_dir)
        if encoder.gsg_config["domain"] != cfg.domain or encoder.gsg_config["info"] != data.info:
            raise UserError(
                f"the encoder in '{run_dir}' was trained on {encoder.gsg_config['info']} "
                f"({encoder.gsg_config['domain']}), which does not match the data {data.info}"
            )
    encoder = encoder.to(accelerator.device)
    feats = {}
    for split in splits:
        x, y = encode_split(encoder, getattr(data, split), domain, accelerator, cfg.eval.batch_size)
        feats[split] = (x.numpy(), y.numpy())
    return feats, cfg, domain, accelerator


def evaluate_run(run_dir: str | Path, random_init: bool = False) -> dict[str, Any]:
    """Evaluate the run's exported encoder, or a randomly initialised one of the same config (the floor).

    Hyper-parameters are chosen by cross-validation on the labelled training split only;
    accuracy and macro-F1 are measured on the test split. Results go to
    ``eval.json`` / ``eval_random.json`` in the run directory.
    """
    import torch

    from .collapse import collapse_stats
    from .probes import evaluate_features
    from .report import write_run_report

    run_dir = Path(run_dir)
    feats, cfg, domain, accelerator = run_features(run_dir, random_init)
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
    accelerator.wait_for_everyone()
    return results


def evaluate_floor(run_dir: str | Path) -> dict[str, Any] | None:
    """The domain's hand-crafted baseline (e.g. TF-IDF or MFCC + logistic regression) on the run's data.

    Written to ``eval_floor.json``; ``None`` when the domain has no such baseline.
    """
    from .report import write_run_report
    from .runtime import load_bound

    run_dir = Path(run_dir)
    cfg = load_run_config(run_dir)
    domain, data = load_bound(cfg)
    if not data.labelled:
        raise UserError(f"data set {cfg.data} has no labelled train and test splits; evaluation needs both")
    results = domain.handcrafted_floor(data, cfg.eval, cfg.seed)
    if results is None:
        return None
    (run_dir / "eval_floor.json").write_text(json.dumps(results, indent=2))
    write_run_report(run_dir)
    return results


def evaluate_transfer(run_dir: str | Path, target: Any, out_file: str | Path) -> dict[str, Any]:
    """Evaluate the run's frozen encoder on another data set (``target``: a run config naming it).

    The target may be of another domain: it only has to feed the encoder what it was trained on
    (``Domain.encoder_input`` equal on both sides, e.g. mono series for audio waveforms and sensors).
    """
    from .config import to_dict
    from .export import export_domain, load_encoder, read_encoder_config
    from .features import encode_split
    from .probes import evaluate_features
    from .runtime import load_bound, make_accelerator

    out_file = Path(out_file)
    trained = read_encoder_config(run_dir)
    source_input = export_domain(trained).encoder_input()
    accelerator = make_accelerator(target, out_file.parent, with_trackers=False)
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
        x, y = encode_split(encoder, getattr(data, split), domain, accelerator, target.eval.batch_size)
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
    accelerator.wait_for_everyone()
    return results
