"""Typed run configuration: YAML file + ``key=value`` overrides -> nested dataclasses.

The core sections are declared here; the ``data``, ``views`` and ``encoder`` sections
belong to the domain and are validated against the dataclasses the domain declares.
Every key is checked: an unknown or mistyped key, or a value of the wrong type, is a
``UserError`` naming the key and the valid choices.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .errors import UserError


def _require(ok: bool, key: str, value: Any, rule: str, fix: str = "") -> None:
    """One clear line for a value of the right type but outside its range."""
    if not ok:
        raise UserError(f"config key '{key}' {rule} (got {value!r})" + (f"; {fix}" if fix else ""))


def _positive(value: float) -> bool:
    return math.isfinite(value) and value > 0


@dataclass
class ModelConfig:
    """Projector and predictor heads on top of the domain's encoder."""

    projector_hidden: int = 2048
    projector_dim: int = 2048
    projector_layers: int = 3  # SimSiam uses 3 on ImageNet, 2 on CIFAR
    predictor_hidden: int = 512
    predictor: bool = True  # False: p = z (the paper's no-predictor ablation)
    fixed_predictor_lr: bool = True  # SimSiam: the predictor's lr is not decayed

    def __post_init__(self) -> None:
        for key in ("projector_hidden", "projector_dim", "projector_layers", "predictor_hidden"):
            _require(getattr(self, key) >= 1, f"model.{key}", getattr(self, key), "must be at least 1")


@dataclass
class ObjectiveConfig:
    # A registered objective (gsg_multimodal.objectives): simsiam, gsg (SimSiam+GSG), byol, byol-gsg,
    # simclr (the explicit-negatives reference), supervised (the ceiling, trained with the labels), ...
    method: str = "gsg"
    gsg_views: Literal[2, 4] = 4  # GSG: 4 = as published (4N views); 2 = partners from the same 2N views
    pairing: Literal["derangement", "permutation"] = "derangement"
    momentum: float = 0.99  # BYOL target EMA base momentum
    momentum_schedule: Literal["cosine", "constant"] = "cosine"
    temperature: float = 0.2  # simclr only
    temporal_partner: Literal["series", "time", "both"] = "both"  # gsg-temporal: who partners a position
    ts2vec_alpha: float = 0.5  # ts2vec: weight of the instance-wise term (1 - alpha: the temporal term)

    def __post_init__(self) -> None:
        from .objectives import get_objective

        get_objective(self.method)  # a clear error naming the registered objectives
        if self.temperature <= 0:
            raise UserError(f"objective.temperature must be positive, got {self.temperature}")
        _require(0.0 <= self.momentum <= 1.0, "objective.momentum", self.momentum, "must lie in [0, 1] (an EMA rate)")
        _require(0.0 <= self.ts2vec_alpha <= 1.0, "objective.ts2vec_alpha", self.ts2vec_alpha, "must lie in [0, 1]")


@dataclass
class OptimConfig:
    name: Literal["sgd", "adamw"] = "sgd"
    lr: float = 0.05
    weight_decay: float = 1e-4
    momentum: float = 0.9  # SGD only
    betas: tuple[float, float] = (0.9, 0.999)  # AdamW only
    warmup_fraction: float = 0.0  # linear warmup over this fraction of the run's optimiser steps
    schedule: Literal["cosine", "constant"] = "cosine"
    grad_clip: float | None = None
    # The heads' (projector, predictor) lr as a multiple of the encoder's. Fine-tuning a pretrained
    # encoder wants a small lr, while freshly initialised heads need a pretraining-sized one.
    head_lr_scale: float = 1.0

    def __post_init__(self) -> None:
        _require(_positive(self.lr), "optim.lr", self.lr, "must be a positive finite number", "for example 0.05")
        _require(0 <= self.weight_decay < math.inf, "optim.weight_decay", self.weight_decay, "must be 0 or more")
        _require(0 <= self.momentum < 1, "optim.momentum", self.momentum, "must lie in [0, 1)")
        _require(all(0 <= b < 1 for b in self.betas), "optim.betas", self.betas, "must both lie in [0, 1)")
        _require(0 <= self.warmup_fraction <= 1, "optim.warmup_fraction", self.warmup_fraction,
                 "must lie in [0, 1] (a fraction of the run's optimiser steps)")  # fmt: skip
        if self.grad_clip is not None:
            _require(_positive(self.grad_clip), "optim.grad_clip", self.grad_clip, "must be positive, or null for none")
        _require(_positive(self.head_lr_scale), "optim.head_lr_scale", self.head_lr_scale,
                 "must be a positive finite number", "1 gives the heads the encoder's lr")  # fmt: skip


@dataclass
class TrainConfig:
    epochs: int = 100  # the budget in passes over the data, unless `steps` is set
    steps: int | None = None  # the budget in optimiser steps (wins over epochs); schedules scale with it
    batch_size: int = 64  # per process
    grad_accum: int = 1
    mixed_precision: Literal["no", "fp16", "bf16"] | None = None  # None: accelerate launch / config decide
    cpu: bool = False  # force CPU even when an accelerator exists
    num_workers: int = 0
    sync_batchnorm: bool = True  # only matters with several processes
    checkpoint_every: int = 0  # optimizer steps between checkpoints; 0 = end of each epoch
    keep_checkpoints: int = 2
    log_every: int = 10  # optimizer steps between metric rows
    trackers: list[str] = field(default_factory=lambda: ["auto"])  # "auto" = TensorBoard if installed
    progress_bar: bool = True
    deterministic: bool = False
    max_steps: int | None = None  # stop early after this many optimizer steps (tests, smoke runs)
    compile: bool = False  # torch.compile the siamese network (measure before relying on it)

    def __post_init__(self) -> None:
        _require(self.epochs >= 1, "train.epochs", self.epochs, "must be at least 1",
                 "a run of no steps would export an untrained encoder")  # fmt: skip
        if self.steps is not None:
            _require(self.steps >= 1, "train.steps", self.steps, "must be at least 1 (or null to count epochs)")
        if self.max_steps is not None:
            _require(self.max_steps >= 1, "train.max_steps", self.max_steps, "must be at least 1 (or null)")
        _require(self.batch_size >= 2, "train.batch_size", self.batch_size,
                 "must be at least 2 (BatchNorm and GSG pairing need two samples)")  # fmt: skip
        for key in ("grad_accum", "log_every", "keep_checkpoints"):
            _require(getattr(self, key) >= 1, f"train.{key}", getattr(self, key), "must be at least 1")
        for key in ("num_workers", "checkpoint_every"):
            _require(getattr(self, key) >= 0, f"train.{key}", getattr(self, key), "must be 0 or more")


@dataclass
class MonitorConfig:
    knn_every: int = 10  # epochs between online kNN checks on labelled data; 0 disables
    knn_k: int = 20
    knn_temperature: float = 0.07
    # Collapse guard: the std of L2-normalised z below collapse_fraction / sqrt(d) for
    # collapse_patience consecutive steps counts as collapse; then warn, stop, or ignore.
    collapse_action: Literal["warn", "stop", "off"] = "warn"
    collapse_fraction: float = 0.2
    collapse_patience: int = 200

    def __post_init__(self) -> None:
        _require(self.knn_every >= 0, "monitor.knn_every", self.knn_every, "must be 0 (off) or more")
        _require(self.knn_k >= 1, "monitor.knn_k", self.knn_k, "must be at least 1")
        _require(_positive(self.knn_temperature), "monitor.knn_temperature", self.knn_temperature, "must be positive")
        _require(0 <= self.collapse_fraction < math.inf, "monitor.collapse_fraction", self.collapse_fraction,
                 "must be 0 or more")  # fmt: skip
        _require(self.collapse_patience >= 1, "monitor.collapse_patience", self.collapse_patience, "must be at least 1")


@dataclass
class EvalConfig:
    knn_k: list[int] = field(default_factory=lambda: [1, 5, 10, 20, 50])
    knn_temperature: float = 0.07
    logreg_c: list[float] = field(default_factory=lambda: [0.01, 0.1, 1.0, 10.0, 100.0])
    svm_c: list[float] = field(default_factory=lambda: [1e-4, 1e-3, 1e-2, 0.1, 1.0, 10.0, 100.0, 1e3, 1e4])
    cv_folds: int = 5
    batch_size: int = 256
    # Fit the probes on a stratified subset of at most this many labelled training rows (null: all).
    # An RBF SVM costs O(n^2); a 60,000-row split takes hours on 2 cores, 10,000 rows minutes.
    probe_train_max: int | None = None

    def __post_init__(self) -> None:
        if self.probe_train_max is not None:
            _require(self.probe_train_max >= 2, "eval.probe_train_max", self.probe_train_max,
                     "must be at least 2 (or null to fit the probes on every labelled training row)")  # fmt: skip
        _require(len(self.knn_k) > 0 and all(k >= 1 for k in self.knn_k), "eval.knn_k", self.knn_k,
                 "must be a non-empty list of neighbour counts of at least 1")  # fmt: skip
        _require(_positive(self.knn_temperature), "eval.knn_temperature", self.knn_temperature, "must be positive")
        for key in ("logreg_c", "svm_c"):
            values = getattr(self, key)
            _require(len(values) > 0 and all(_positive(c) for c in values), f"eval.{key}", values,
                     "must be a non-empty list of positive regularisation strengths")  # fmt: skip
        _require(self.cv_folds >= 2, "eval.cv_folds", self.cv_folds,
                 "must be at least 2: the probes choose their regularisation by cross-validation, which needs "
                 "one fold to fit and another to score")  # fmt: skip
        _require(self.batch_size >= 1, "eval.batch_size", self.batch_size, "must be at least 1")


@dataclass
class RunConfig:
    domain: str = ""
    seed: int = 0
    output_dir: str = "runs/default"
    data: Any = None
    views: Any = None
    encoder: Any = None
    model: ModelConfig = field(default_factory=ModelConfig)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    monitor: MonitorConfig = field(default_factory=MonitorConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def __post_init__(self) -> None:
        _require(0 <= self.seed < 2**32, "seed", self.seed, "must lie in [0, 2**32 - 1] (NumPy's seed range)")
        _require(self.output_dir.strip() != "", "output_dir", self.output_dir, "must name a folder")


DOMAIN_SECTIONS = ("data", "views", "encoder")
# Keys of earlier versions -> what to write instead.
RENAMED = {
    "optim.warmup_epochs": "use optim.warmup_fraction (a fraction of the optimiser steps, e.g. 0.05), "
    "so that warmup scales with the budget",
}


# ---------------------------------------------------------------- conversion


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin in (list, tuple):
        return f"{origin.__name__}[{', '.join(_type_name(a) for a in typing.get_args(tp) if a is not Ellipsis)}]"
    return getattr(tp, "__name__", str(tp))


def _convert(value: Any, tp: Any, key: str) -> Any:
    """Check ``value`` against annotation ``tp``; return it converted (int -> float, list -> tuple)."""
    origin = typing.get_origin(tp)
    bad = UserError(
        f"config key '{key}' must be {_type_name(tp)}, got {value!r}; fix the value in the config or override"
    )
    if tp is Any:
        return value
    if origin is Literal:
        choices = typing.get_args(tp)
        if isinstance(value, bool) and value is False and "no" in choices:
            return "no"  # YAML 1.1 reads a bare `no` (train.mixed_precision=no) as false
        if value in choices and type(value) in {type(a) for a in choices}:
            return value
        raise bad
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None:
            if type(None) in args:
                return None
            raise bad
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(value, arg, key)
            except UserError:
                continue
        raise bad
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise bad
        args = typing.get_args(tp)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise bad
            return tuple(_convert(v, a, key) for v, a in zip(value, args, strict=True))
        inner = args[0] if args else Any
        items = [_convert(v, inner, key) for v in value]
        return tuple(items) if origin is tuple else items
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise bad
        return dict(value)
    if dataclasses.is_dataclass(tp):
        return build_dataclass(tp, value, key)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise bad
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        number = _number(value)  # 1e3 or 1.0e+3: a whole number written as a float
        if number is not None and math.isfinite(number) and number.is_integer():
            return int(number)
        raise bad
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        number = _number(value)
        if number is not None:
            return number
        raise bad
    if tp is str:
        if isinstance(value, str):
            return value
        raise bad
    return value


# YAML 1.1 reads `1e-3` and `5E4` (no dot, or no sign in the exponent) as strings: accept the forms people type.
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def _number(value: Any) -> float | None:
    if isinstance(value, float):
        return value
    if isinstance(value, str) and _NUMBER.match(value.strip()):
        return float(value.strip())
    return None


def build_dataclass(cls: type, values: dict | None, prefix: str = "") -> Any:
    """Build dataclass ``cls`` from a mapping, refusing unknown keys and wrong types."""
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise UserError(
            f"config section '{prefix or cls.__name__}' must be a mapping of keys to values, got {values!r}"
        )
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls) if f.init]
    kwargs = {}
    for key, value in values.items():
        full = f"{prefix}.{key}" if prefix else str(key)
        if key not in names and full in RENAMED:
            raise UserError(f"config key '{full}' was replaced: {RENAMED[full]}")
        if key not in names and full == "objective.gsg":
            raise UserError(
                "config key 'objective.gsg' was replaced by the method name: use objective.method=gsg "
                "(SimSiam+GSG) or byol-gsg, and objective.method=simsiam or byol without GSG"
            )
        if key not in names:
            guess = difflib.get_close_matches(str(key), names, n=1)
            hint = f" (did you mean '{guess[0]}'?)" if guess else ""
            raise UserError(f"unknown config key '{full}'{hint}; valid keys here: {', '.join(names)}")
        kwargs[key] = _convert(value, hints[key], full)
    return cls(**kwargs)


def to_dict(obj: Any) -> Any:
    """A dataclass tree as plain YAML/JSON-able data."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj


# ---------------------------------------------------------------- loading


def parse_overrides(overrides: list[str]) -> dict:
    """``["a.b=1", "c=[1,2]"]`` -> nested dict; values are parsed as YAML scalars/lists."""
    import yaml

    tree: dict = {}
    for item in overrides:
        if "=" not in item:
            raise UserError(f"override '{item}' is not of the form key=value (for example train.epochs=5)")
        key, raw = item.split("=", 1)
        try:
            value = yaml.safe_load(raw) if raw != "" else ""
        except yaml.YAMLError as exc:
            raise UserError(f"override '{item}': value is not valid YAML ({exc.problem})") from None
        node = tree
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise UserError(f"override '{item}' conflicts with another override of '{part}'")
        node[parts[-1]] = value
    return tree


def merge(base: dict, extra: dict) -> dict:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def read_yaml(path: str | Path) -> dict:
    import yaml

    path = Path(path)
    if not path.is_file():
        raise UserError(
            f"config file '{path}' does not exist; pass the path of a YAML config such as configs/acsf1_gsg.yaml"
        )
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise UserError(f"config file '{path}' is not valid YAML: {exc}".replace("\n", " ")) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise UserError(f"config file '{path}' must hold a mapping of sections, not {type(data).__name__}")
    return data


def build_config(raw: dict) -> RunConfig:
    """Validate a raw mapping (file merged with overrides) into a ``RunConfig``."""
    from .registry import get_domain

    raw = dict(raw)
    domain_name = raw.get("domain")
    if not domain_name or not isinstance(domain_name, str):
        raise UserError("config has no 'domain' key; add e.g. 'domain: timeseries' (run 'gsg domains' to list them)")
    domain_cls = get_domain(domain_name)
    domain_raw = {name: raw.pop(name, None) for name in DOMAIN_SECTIONS}
    cfg = build_dataclass(RunConfig, raw)
    cfg.data = build_dataclass(domain_cls.data_config, domain_raw["data"], "data")
    cfg.views = build_dataclass(domain_cls.views_config, domain_raw["views"], "views")
    cfg.encoder = build_dataclass(domain_cls.encoder_config, domain_raw["encoder"], "encoder")
    return cfg


def load_config(path: str | Path, overrides: list[str] | None = None) -> RunConfig:
    return build_config(merge(read_yaml(path), parse_overrides(overrides or [])))


# ---------------------------------------------------------------- comparing configs

# Keys that change nothing a run computes while training: a run may be resumed with them changed.
TRAINING_NEUTRAL = (
    "output_dir",
    "train.max_steps",
    "train.progress_bar",
    "train.log_every",
    "train.num_workers",
    "train.trackers",
    "train.keep_checkpoints",
    "monitor.",
    "eval.",
)


def flatten(tree: dict, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, name + "."))
        else:
            out[name] = value
    return out


def config_differences(
    old: RunConfig, new: RunConfig, ignore: tuple[str, ...] = TRAINING_NEUTRAL
) -> dict[str, tuple[Any, Any]]:
    """Keys whose values differ between two resolved configs (``key -> (old, new)``), except ``ignore``.

    The one rule for "is this the same run?": resume uses it with the training-neutral keys
    ignored, the benchmark's cell cache with only ``output_dir`` ignored (evaluation settings
    change a cell's result).
    """
    a, b = flatten(to_dict(old)), flatten(to_dict(new))
    return {
        k: (a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k) and not k.startswith(ignore)
    }
