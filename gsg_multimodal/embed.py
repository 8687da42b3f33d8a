"""``gsg embed``: raw data in a file or folder -> one row of features per item, in a Parquet file.

The encoder is an export folder, or a run directory: its ``encoder/`` export, else its newest intact
checkpoint, exported to a scratch folder (the run is left as it was). The domain reads DATA with its
own readers of user files (``Domain.read_raw``), then ``GSGEncoder.embed`` applies the preprocessing
the encoder was trained with: what evaluation fed the encoder is what it gets here.

The Parquet file has one row per item of DATA, in the order the domain reads them:

=========  ==============================  ===============================================================
column     type                            meaning
=========  ==============================  ===============================================================
index      int64                           position of the item in DATA, 0 .. N-1
id         string (when known)             what names the item, e.g. its file path relative to DATA
label      string (when DATA has labels)   the item's label as written in DATA (null where one is missing)
features   fixed_size_list<float>[D]       the encoder's features; ``np.stack(df["features"])`` is [N, D]
=========  ==============================  ===============================================================

Its schema metadata ``gsg_multimodal`` (JSON) names the encoder, its domain, ``out_dim`` and DATA.
The file is written to a temporary name and renamed, so it is either whole or absent.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from .errors import UserError

METADATA_KEY = b"gsg_multimodal"


def resolve_encoder(source: str | Path, scratch: Path) -> tuple[Path, str]:
    """The export folder to load for ``source`` (an export, or a run directory) and where it came from."""
    from .export import export_checkpoint

    path = Path(source)
    if not path.exists():
        raise UserError(f"'{source}' does not exist; pass a run directory (gsg pretrain) or an encoder export folder")
    if (path / "config.json").is_file() and (path / "model.safetensors").is_file():
        return path, f"export {path}"
    if (path / "encoder" / "config.json").is_file():
        return path / "encoder", f"export {path / 'encoder'}"
    if (path / "config.yaml").is_file():  # a run that did not export (stopped by max_steps, crashed, running)
        folder = export_checkpoint(path, out=scratch / "encoder")
        checkpoint = json.loads((folder / "config.json").read_text()).get("checkpoint")
        return folder, f"checkpoint {checkpoint} (the run has no encoder/ export)"
    raise UserError(
        f"'{source}' is neither an encoder export (config.json + model.safetensors) nor a run directory "
        "(config.yaml); pass the output_dir of 'gsg pretrain' or a folder made by 'gsg export'"
    )


def data_overrides(overrides: list[str]) -> dict[str, Any]:
    """``data.key=value`` overrides -> ``{key: value}``; anything else is refused."""
    from .config import parse_overrides

    tree = parse_overrides(overrides)
    other = [k for k in tree if k != "data"]
    if other:
        raise UserError(
            f"'gsg embed' takes data.* options (how to read DATA, e.g. data.label_column=y), not '{other[0]}'"
        )
    if not isinstance(tree.get("data", {}), dict):
        raise UserError("'gsg embed' takes data.<key>=value options (e.g. data.label_column=kind), not data=...")
    return dict(tree.get("data", {}))


def embed_file(
    source: str | Path,
    data: str | Path,
    out: str | Path,
    batch_size: int = 64,
    overrides: list[str] | None = None,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Embed every item of ``data`` with the encoder of ``source`` into the Parquet file ``out``; a summary."""
    from .export import GSGEncoder

    out, data = Path(out), Path(data)
    if out.exists() and not overwrite:
        raise UserError(f"'{out}' already exists; pass --overwrite to replace it, or choose another --out")
    if out.exists() and out.is_dir():
        raise UserError(f"--out '{out}' is a folder; give a file name such as features.parquet")
    if not data.exists():
        raise UserError(f"DATA '{data}' does not exist; give a file or folder of raw data the encoder's domain reads")
    if batch_size < 1:
        raise UserError(f"--batch-size {batch_size} must be at least 1")
    options = data_overrides(overrides or [])
    with tempfile.TemporaryDirectory(prefix="gsg-embed-") as scratch:
        folder, origin = resolve_encoder(source, Path(scratch))
        encoder = GSGEncoder.from_pretrained(str(folder))
        read = encoder.domain_for(options).read_raw(data)
        features = encoder.embed(read.raw, batch_size=batch_size, data=options)
    n = len(features)
    if n == 0:
        raise UserError(f"DATA '{data}' holds no items to embed")
    for name, column in (("labels", read.labels), ("ids", read.ids)):
        if column is not None and len(column) != n:
            raise RuntimeError(f"domain {encoder.gsg_config['domain']!r} read {len(column)} {name} for {n} items")
    meta = {
        "encoder": str(source),
        "from": origin,
        "domain": encoder.gsg_config["domain"],
        "out_dim": int(encoder.out_dim),
        "steps": encoder.gsg_config.get("steps"),
        "data": str(data),
        "data_options": options,
    }
    write_features(out, features, read.ids, read.labels, meta)
    return {"rows": n, "dim": int(features.shape[1]), "out": str(out), "from": origin}


def write_features(
    out: Path, features: Any, ids: list[str] | None, labels: list[str | None] | None, meta: dict[str, Any]
) -> None:
    """The Parquet file of the module docstring, written atomically (temporary name, then rename)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    feats = np.ascontiguousarray(features, dtype=np.float32)
    n, d = feats.shape
    columns: dict[str, Any] = {"index": pa.array(np.arange(n, dtype=np.int64))}
    if ids is not None:
        columns["id"] = pa.array(ids, pa.string())
    if labels is not None:
        columns["label"] = pa.array(labels, pa.string())
    columns["features"] = pa.FixedSizeListArray.from_arrays(pa.array(feats.reshape(-1)), d)
    table = pa.table(columns).replace_schema_metadata({METADATA_KEY: json.dumps(meta)})
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    try:
        pq.write_table(table, tmp)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)


def read_features(path: str | Path) -> tuple[Any, dict[str, Any]]:
    """``(features [N, D] float32, other columns)`` of a file ``gsg embed`` wrote; for tests and users alike."""
    import numpy as np
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    flat = table.column("features").combine_chunks().flatten().to_numpy()
    features = np.asarray(flat, dtype=np.float32).reshape(table.num_rows, -1)
    return features, {name: table.column(name).to_pylist() for name in table.column_names if name != "features"}
