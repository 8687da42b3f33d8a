"""Exported encoders: safetensors weights + a JSON description, rebuilt without the trainer.

Layout of an export folder::

    encoder/
      model.safetensors   # the encoder's state dict (less any weights a domain file below already holds)
      config.json         # domain, encoder/data/views config, data info, out_dim, shared_weights; with the
                          # data and views sections, info holds what raw input needs to become the
                          # encoder's input (e.g. the training data's normalisation statistics)
      README.md           # the model card: data, objective, recipe, probe scores once evaluated
      ...                 # a domain's own format, e.g. text: hf/ (save_pretrained + sentence-transformers)

Load one with ``GSGEncoder.from_pretrained(folder or hub id)``: the public object, which embeds raw
data (``embed``, preprocessing included) and speaks the Hugging Face hub (``save_pretrained``,
``push_to_hub``); ``gsg_multimodal.load_encoder(folder)`` gives the bare encoder module inside it, whose
``forward`` takes an already prepared eval input. ``export_checkpoint`` makes one from any training checkpoint.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import UserError

if TYPE_CHECKING:
    import numpy as np

FORMAT = "gsg-multimodal-encoder"
# 2: weights a domain file already holds are stored once ("shared_weights").
# 3: info carries what raw input needs (time series: the training data's per-channel statistics); a domain
#    reading an older export without them says so, or recomputes them (Domain.raw_rows).
VERSION = 3
CARD = "README.md"


def save_encoder(
    encoder: Any,
    path: str | Path,
    meta: dict[str, Any],
    extras: Callable[[Any, Path], dict[str, str] | None] | None = None,
    run_dir: str | Path | None = None,
) -> Path:
    """Write ``encoder``'s weights and ``meta`` (domain, configs, info) to ``path`` atomically.

    ``extras(encoder, folder)`` may add files (a domain's own format) before the folder is published.
    It may return ``{file: prefix}`` for safetensors files it wrote that hold encoder weights (its key
    ``k`` being our ``prefix + k``): those weights are then left out of ``model.safetensors`` when they
    are bit-identical, so no weight is stored twice, and ``load_encoder`` reads them back from there.
    The model card (``README.md``) is written from ``meta`` and, when ``run_dir`` (default: the folder
    above ``path`` if it holds a run's ``config.yaml``) is given, its recipe and evaluation scores.
    """
    from safetensors.torch import save_file

    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    _rmtree(tmp)
    tmp.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in encoder.state_dict().items()}
    shared = (extras(encoder, tmp) if extras is not None else None) or {}
    shared_records = []
    for file, prefix in shared.items():
        kept = _drop_stored_elsewhere(state, tmp / file, prefix)
        if kept:
            shared_records.append({"file": file, "prefix": prefix, "keys": len(kept)})
    save_file(state, str(tmp / "model.safetensors"), metadata={"format": "pt"})
    config = {"format": FORMAT, "version": VERSION, "out_dim": int(encoder.out_dim), **meta}
    if shared_records:
        config["shared_weights"] = shared_records
    (tmp / "config.json").write_text(json.dumps(config, indent=2))
    if run_dir is None and (path.parent / "config.yaml").is_file():
        run_dir = path.parent
    write_model_card(tmp, config, run_dir)
    if path.exists():
        old = path.with_name(path.name + ".old")
        _rmtree(old)
        os.replace(path, old)
        os.replace(tmp, path)
        _rmtree(old)
    else:
        os.replace(tmp, path)
    return path


def _drop_stored_elsewhere(state: dict[str, Any], file: Path, prefix: str) -> list[str]:
    """Remove from ``state`` the tensors ``file`` holds bit for bit (as ``prefix + key``); the keys removed."""
    import torch
    from safetensors import safe_open

    if not file.is_file():
        return []
    dropped = []
    with safe_open(str(file), "pt") as fh:
        for key in fh.keys():  # noqa: SIM118 -- a safetensors handle is not iterable
            ours = prefix + key
            if ours in state:
                theirs = fh.get_tensor(key)
                if theirs.dtype == state[ours].dtype and torch.equal(theirs, state[ours]):
                    dropped.append(ours)
    for key in dropped:
        del state[key]
    return dropped


def _rmtree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def read_encoder_config(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if (path / "encoder" / "config.json").is_file():  # a run directory
        path = path / "encoder"
    config_file = path / "config.json"
    if not config_file.is_file() or not (path / "model.safetensors").is_file():
        raise UserError(
            f"'{path}' holds no exported encoder (config.json + model.safetensors); "
            "pass a run directory whose pretraining finished, or its 'encoder' folder"
        )
    config = json.loads(config_file.read_text())
    if config.get("format") != FORMAT:
        raise UserError(f"'{config_file}' is not a gsg-multimodal encoder export (format={config.get('format')!r})")
    if config.get("version", 0) > VERSION:
        raise UserError(f"'{path}' was exported by a newer gsg-multimodal (format v{config['version']}); upgrade")
    config["_path"] = str(path)
    return config


def export_domain(config: dict[str, Any]) -> Any:
    """The domain plug-in an export was made with (its data, views and encoder configs), bound to its info."""
    from .config import build_dataclass
    from .registry import get_domain

    domain_cls = get_domain(config["domain"])
    try:
        domain = domain_cls(
            build_dataclass(domain_cls.data_config, config.get("data", {}), "data"),
            build_dataclass(domain_cls.views_config, config.get("views", {}), "views"),
            build_dataclass(domain_cls.encoder_config, config.get("encoder", {}), "encoder"),
        )
    except UserError as exc:
        raise UserError(f"the export in '{config['_path']}' does not fit domain {config['domain']!r}: {exc}") from None
    domain.bind(config["info"])
    return domain


def load_state(config: dict[str, Any], map_location: str = "cpu") -> dict[str, Any]:
    """The encoder's whole state dict: ``model.safetensors`` plus any weights kept in a domain file."""
    from safetensors.torch import load_file

    folder = Path(config["_path"])
    state = load_file(str(folder / "model.safetensors"), device=map_location)
    for record in config.get("shared_weights", []):
        file = folder / record["file"]
        if not file.is_file():
            raise UserError(
                f"'{folder}' lacks {record['file']}, which holds part of its weights; copy the whole folder"
            )
        extra = load_file(str(file), device=map_location)
        state.update({record["prefix"] + k: v for k, v in extra.items()})
    return state


def load_encoder(path: str | Path, map_location: str = "cpu") -> Any:
    """Rebuild an exported encoder from its folder (or a run directory) and load its weights.

    Needs only the domain plug-in that built it, not the training code. The returned bare
    module is in eval mode and carries the export's description as ``gsg_config``; its ``forward``
    takes the domain's eval input. For raw data use ``GSGEncoder.from_pretrained(path).embed(raw)``.
    """
    return rebuild(path, map_location)[0]


def rebuild(path: str | Path, map_location: str = "cpu") -> tuple[Any, Any]:
    """``(encoder, domain)``: the loaded encoder (see ``load_encoder``) and its domain plug-in, bound to its info."""
    config = read_encoder_config(path)
    domain = export_domain(config)
    encoder = domain.encoder()
    state = load_state(config, map_location)
    expected = set(encoder.state_dict())
    state = {k: v for k, v in state.items() if k in expected or not config.get("shared_weights")}
    try:
        encoder.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise UserError(
            f"weights in '{config['_path']}' do not fit the encoder its config describes ({first})"
        ) from None
    encoder.gsg_config = config
    return encoder.eval(), domain


def domain_with_data(config: dict[str, Any], data: dict[str, Any] | None) -> Any:
    """The export's domain with ``data`` overriding keys of its data section, for reading a user's input.

    Only the domain's ``embed_options`` may change (how input is read); the preprocessing the encoder was
    trained with may not, since features would then silently differ from those evaluation measured.
    """
    import dataclasses

    from .registry import get_domain

    data = dict(data or {})
    domain_cls = get_domain(config["domain"])
    allowed = domain_cls.embed_options
    choices = ", ".join(f"data.{k}" for k in allowed) or "none"
    for key in sorted(data):
        if key not in {f.name for f in dataclasses.fields(domain_cls.data_config)}:
            raise UserError(f"unknown data option 'data.{key}' for {config['domain']} data; options: {choices}")
        if key not in allowed:
            raise UserError(
                f"data.{key} cannot be set when embedding with this {config['domain']} encoder: only options that "
                f"say how to read the input can ({choices}); the preprocessing is the one it was trained with"
            )
    return export_domain({**config, "data": {**config.get("data", {}), **data}})


# ---------------------------------------------------------------- from a checkpoint


def encoder_meta(cfg: Any, info: Any, steps: int) -> dict[str, Any]:
    """What an export's config.json says about the run that made it (the trainer's export writes the same)."""
    from .config import to_dict

    return {
        "domain": cfg.domain,
        "info": info,
        "encoder": to_dict(cfg.encoder),
        "data": to_dict(cfg.data),
        "views": to_dict(cfg.views),
        "objective": to_dict(cfg.objective),
        "steps": steps,
    }


def export_checkpoint(run_dir: str | Path, checkpoint: str | Path | None = None, out: str | Path | None = None) -> Path:
    """Export the encoder held by a training checkpoint (the newest intact one by default).

    Works for any checkpoint: a finished run, one stopped by ``train.max_steps``, or one that crashed.
    Needs the run's ``config.yaml`` and the checkpoint's ``model.safetensors`` (the whole siamese
    network; its ``encoder.*`` weights are the encoder) and ``trainer_state.json`` (domain, data info).
    ``out`` defaults to ``<run>/encoder`` for the newest checkpoint, else ``<run>/encoder-step-N``.
    """
    from safetensors.torch import load_file

    from .checkpoints import MANIFEST, latest_checkpoint, read_state, verify
    from .config import build_config, read_yaml
    from .runtime import build_domain

    run_dir = Path(run_dir)
    if not (run_dir / "config.yaml").is_file():
        raise UserError(f"'{run_dir}' is not a run directory (no config.yaml); pass the output_dir of 'gsg pretrain'")
    cfg = build_config(read_yaml(run_dir / "config.yaml"))
    latest = latest_checkpoint(run_dir)
    if checkpoint is None:
        if latest is None:
            raise UserError(
                f"'{run_dir}' holds no intact checkpoint under checkpoints/; train it first (gsg pretrain) "
                "or name one with --checkpoint"
            )
        checkpoint = latest
    checkpoint = Path(checkpoint)
    problem = verify(checkpoint) if (checkpoint / MANIFEST).is_file() else None
    state_info = read_state(checkpoint)
    weights = checkpoint / "model.safetensors"
    if problem or state_info is None or not weights.is_file():
        why = problem or ("no readable trainer_state.json" if state_info is None else "no model.safetensors")
        raise UserError(f"cannot export from checkpoint '{checkpoint}': {why}; pick another with --checkpoint")
    if state_info.get("domain") != cfg.domain:
        raise UserError(
            f"checkpoint '{checkpoint}' was made for domain {state_info.get('domain')!r}, not the run's {cfg.domain!r}"
        )
    domain = build_domain(cfg)
    domain.bind(state_info["info"])
    encoder = domain.encoder()
    full = load_file(str(weights))
    state = {k[len("encoder.") :]: v for k, v in full.items() if k.startswith("encoder.")}
    try:
        encoder.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise UserError(f"the encoder weights in '{weights}' do not fit the run's encoder ({first})") from None
    if out is None:
        same = latest is not None and checkpoint.resolve() == latest.resolve()
        out = run_dir / ("encoder" if same else f"encoder-step-{state_info['step']}")
    meta = encoder_meta(cfg, state_info["info"], state_info["step"])
    meta["checkpoint"] = str(checkpoint)
    return save_encoder(encoder.eval(), out, meta, extras=domain.export_extras, run_dir=run_dir)


# ---------------------------------------------------------------- the model card


def write_model_card(folder: str | Path, config: dict[str, Any], run_dir: str | Path | None = None) -> Path:
    """``README.md`` of an export: front matter for the hub, then data, objective, recipe and scores."""
    import yaml

    folder = Path(folder)
    objective = config.get("objective", {})
    method = objective.get("method", "?")
    domain = config.get("domain", "?")
    data_name = config.get("data", {}).get("name") or config.get("data", {}).get("path") or "?"
    front = {
        "library_name": "gsg-multimodal",
        "pipeline_tag": "feature-extraction",
        "tags": sorted({"gsg-multimodal", "self-supervised", "model_hub_mixin", str(domain), str(method)}),
    }
    run_cfg: dict[str, Any] = {}
    scores: dict[str, dict[str, Any]] = {}
    if run_dir is not None:
        run_dir = Path(run_dir)
        if (run_dir / "config.yaml").is_file():
            run_cfg = yaml.safe_load((run_dir / "config.yaml").read_text()) or {}
        for name, label in (("eval.json", "this encoder"), ("eval_random.json", "same encoder before pretraining"),
                            ("eval_floor.json", "hand-crafted floor")):  # fmt: skip
            if (run_dir / name).is_file():
                try:
                    scores[label] = json.loads((run_dir / name).read_text())
                except json.JSONDecodeError:
                    continue
    lines = [
        "---",
        yaml.safe_dump(front, sort_keys=False).strip(),
        "---",
        "",
        f"# {domain} encoder pretrained with {method} (gsg-multimodal)",
        "",
        f"A frozen-feature encoder ({config.get('out_dim', '?')}-d output) pretrained without labels by "
        f"gsg-multimodal with the `{method}` objective.",
        "",
        "## Data",
        "",
        f"- domain: `{domain}`; data set: `{data_name}`",
        f"- data as seen by the encoder: `{json.dumps(config.get('info'))}`",
        "",
        "## Objective",
        "",
        *(f"- `objective.{k}`: `{v}`" for k, v in objective.items()),
        "",
        "## Recipe",
        "",
        f"- optimiser steps: {config.get('steps', '?')}"
        + (f" (from `{config['checkpoint']}`)" if "checkpoint" in config else ""),
        f"- encoder: `{json.dumps(config.get('encoder'))}`",
        f"- views: `{json.dumps(config.get('views'))}`",
    ]
    for section in ("seed", "model", "optim", "train"):
        if section in run_cfg:
            lines.append(f"- {section}: `{json.dumps(run_cfg[section])}`")
    lines += ["", "## Evaluation", ""]
    if scores:
        lines += ["Frozen features; hyper-parameters by cross-validation on the train split; test-split scores.", ""]
        lines += ["| encoder | kNN acc | linear acc | SVM acc |", "| --- | ---: | ---: | ---: |"]
        for label, result in scores.items():
            cells = [_score(result, probe) for probe in ("knn", "linear", "svm")]
            lines.append(f"| {label} | {' | '.join(cells)} |")
    else:
        lines.append("Not evaluated yet: run `gsg evaluate <run>` and the scores appear here.")
    lines += [
        "",
        "## Use",
        "",
        "Raw data in, features out: the preprocessing the encoder was trained with (stored in `config.json`) "
        "is applied for you.",
        "",
        "```python",
        "from gsg_multimodal import GSGEncoder",
        "",
        'encoder = GSGEncoder.from_pretrained("<this folder or hub id>")  # nn.Module, eval mode',
        f"features = encoder.embed(raw)  # raw {domain} data (see GSGEncoder.embed) -> float32 [N, "
        f"{config.get('out_dim', 'D')}]",
        "```",
        "",
        "```bash",
        "gsg embed <this folder> DATA --out features.parquet  # one row per item of DATA: index, id, label, features",
        "```",
        "",
    ]
    out = folder / CARD
    out.write_text("\n".join(lines))
    return out


def _score(result: dict[str, Any], probe: str) -> str:
    value = result.get(probe)
    if isinstance(value, dict):
        value = value.get("accuracy")
    return f"{value:.4f}" if isinstance(value, (int, float)) else "n/a"


def update_model_card(run_dir: str | Path) -> None:
    """Rewrite ``<run>/encoder/README.md`` (after an evaluation) when the run has an export."""
    folder = Path(run_dir) / "encoder"
    if (folder / "config.json").is_file():
        config = json.loads((folder / "config.json").read_text())
        write_model_card(folder, config, run_dir)


# ---------------------------------------------------------------- the Hugging Face hub

import torch  # noqa: E402 -- below the light helpers on purpose: they are what most importers want
from huggingface_hub import PyTorchModelHubMixin  # noqa: E402


class GSGEncoder(
    torch.nn.Module,
    PyTorchModelHubMixin,
    library_name="gsg-multimodal",
    pipeline_tag="feature-extraction",
    tags=["gsg-multimodal", "self-supervised"],
):
    """An exported encoder: the one public object for using it, on raw data or on the hub.

    ``GSGEncoder.from_pretrained(folder or hub id)`` reads any export (``gsg export``, or a run's
    ``encoder/``). ``embed(raw)`` turns raw data into features with the preprocessing the encoder was
    trained with; ``forward`` is the wrapped encoder's (``.encoder``, what ``load_encoder`` returns),
    which takes an already prepared eval input. ``save_pretrained`` / ``push_to_hub`` as on the hub.
    """

    def __init__(self, config: dict, encoder: torch.nn.Module | None = None, domain: Any = None) -> None:
        super().__init__()
        self._source = str(config.get("_path", "<config>"))
        config = {k: v for k, v in config.items() if k != "_path"}
        if encoder is None:
            domain = export_domain({**config, "_path": self._source})
            encoder = domain.encoder()
        self.encoder = encoder
        self.gsg_config = config
        self.out_dim = int(encoder.out_dim)
        self._domains: dict[str, Any] = {} if domain is None else {"{}": domain}  # by data overrides, as JSON

    def forward(self, x: Any) -> Any:
        return self.encoder(x)

    def domain_for(self, data: dict[str, Any] | None = None) -> Any:
        """The export's domain plug-in, bound to its info; ``data`` overrides keys of its data section
        that say how to read input (the domain's ``embed_options``, e.g. a label column)."""
        key = json.dumps(data or {}, sort_keys=True, default=str)
        if key not in self._domains:
            self._domains[key] = domain_with_data({**self.gsg_config, "_path": self._source}, data)
        return self._domains[key]

    def embed(
        self,
        raw: Any,
        batch_size: int = 64,
        device: str | torch.device | None = None,
        data: dict[str, Any] | None = None,
        **options: Any,
    ) -> np.ndarray:
        """Features ``[N, out_dim]`` (float32 NumPy array) of ``N`` raw items, in order.

        ``raw`` is data as you hold it; what each domain takes (see its docs and ``raw_rows``):
        time series, an array ``[N, C, T]`` or ``[N, T]`` or a list of ``[C, T_i]`` / ``[T_i]`` arrays;
        images, a uint8 (or [0, 1] float) array ``[N, H, W]`` / ``[N, H, W, C]``, or a list of PIL
        images, arrays or image paths; audio, a list of sound-file paths or 1-D waveforms (their rate as
        ``sample_rate=``, default the encoder's); text, a list of strings. The preprocessing training
        applied (normalisation with the training data's statistics, size, sample rate, tokenizer, ...)
        comes from the export and is applied here, then the domain's eval input, so the features equal
        those evaluation computed for the same items. The encoder runs in eval mode without gradients,
        ``batch_size`` items at a time, on ``device`` (default: where it is; given, it is moved there).
        ``data``: overrides of how input is read (``domain_for``), e.g. ``{"nan_policy": "interpolate"}``
        for series with gaps; ``options``: the domain's own keywords. All items are prepared before the
        first batch is encoded: for inputs larger than memory, call it on chunks.
        """
        from .features import embed_rows

        if device is not None:
            self.to(device)
        domain = self.domain_for(data)
        rows = domain.raw_rows(raw, **options)
        return embed_rows(self.encoder, rows, domain, batch_size, device)

    @classmethod
    def _from_pretrained(cls, *, model_id: str, map_location: str = "cpu", **kwargs: Any) -> GSGEncoder:
        folder = model_id
        if not Path(model_id).is_dir():
            from huggingface_hub import snapshot_download

            hub_args = ("revision", "cache_dir", "force_download", "local_files_only", "token")
            folder = snapshot_download(repo_id=model_id, **{k: kwargs[k] for k in hub_args if k in kwargs})
        encoder, domain = rebuild(folder, map_location=map_location)
        return cls(encoder.gsg_config, encoder=encoder, domain=domain).eval()

    def _save_pretrained(self, save_directory: Path) -> None:
        skip = ("format", "version", "out_dim", "shared_weights")
        config = {k: v for k, v in self.gsg_config.items() if k not in skip}
        domain = export_domain({**self.gsg_config, "_path": str(save_directory)})
        save_encoder(self.encoder, save_directory, config, extras=domain.export_extras)


def push_to_hub(path: str | Path, repo_id: str, private: bool = True) -> str:
    """Upload an export folder to the hub as ``repo_id``; needs a token (``hf auth login`` or ``HF_TOKEN``)."""
    from huggingface_hub import HfApi, get_token

    config = read_encoder_config(path)
    if not get_token():
        raise UserError("no Hugging Face token: run 'hf auth login' or set HF_TOKEN, then push again")
    api = HfApi()
    api.create_repo(repo_id, private=private, exist_ok=True)
    return str(api.upload_folder(repo_id=repo_id, folder_path=config["_path"]))
