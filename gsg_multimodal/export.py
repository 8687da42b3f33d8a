"""Exported encoders: safetensors weights + a JSON description, rebuilt without the trainer.

Layout of an export folder::

    encoder/
      model.safetensors   # the encoder's state dict
      config.json         # domain, encoder/data/views config, data info, out_dim
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .errors import UserError

FORMAT = "gsg-multimodal-encoder"
VERSION = 1


def save_encoder(
    encoder: Any, path: str | Path, meta: dict[str, Any], extras: Callable[[Any, Path], None] | None = None
) -> Path:
    """Write ``encoder``'s weights and ``meta`` (domain, configs, info) to ``path`` atomically.

    ``extras(encoder, folder)`` may add files (a domain's own format) before the folder is published.
    """
    from safetensors.torch import save_file

    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in encoder.state_dict().items()}
    save_file(state, str(tmp / "model.safetensors"))
    config = {"format": FORMAT, "version": VERSION, "out_dim": int(encoder.out_dim), **meta}
    (tmp / "config.json").write_text(json.dumps(config, indent=2))
    if extras is not None:
        extras(encoder, tmp)
    if path.exists():
        old = path.with_name(path.name + ".old")
        os.replace(path, old)
        os.replace(tmp, path)
        _rmtree(old)
    else:
        os.replace(tmp, path)
    return path


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


def load_encoder(path: str | Path, map_location: str = "cpu") -> Any:
    """Rebuild an exported encoder from its folder (or a run directory) and load its weights.

    Needs only the domain plug-in that built it, not the training code. The returned
    module is in eval mode and carries the export's description as ``gsg_config``.
    """
    from safetensors.torch import load_file

    config = read_encoder_config(path)
    encoder = export_domain(config).encoder()
    state = load_file(str(Path(config["_path"]) / "model.safetensors"), device=map_location)
    try:
        encoder.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise UserError(
            f"weights in '{config['_path']}' do not fit the encoder its config describes ({first})"
        ) from None
    encoder.gsg_config = config
    return encoder.eval()
