"""Raw series as a user holds them -> rows as training made them (``GSGEncoder.embed``, ``gsg embed``).

The steps are ``load_timeseries``'s own functions, in its order: missing values (``data.nan_policy``),
per-series z-normalisation (``data.normalize=series``), then the training split's per-channel statistics
(``data.normalize=dataset``, stored in the export's ``info``). Length handling (``views.length``:
resampling, or native length) is the eval input's, applied later by the domain. Windows
(``data.window``) are not cut here: every series given is one row, as every window was in training.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from gsg_multimodal.domain import RawData
from gsg_multimodal.errors import UserError

from .data import (
    TimeSeriesDataConfig,
    _from_array,
    _read_user_file,
    apply_channel_stats,
    clean_series,
    normalize_series,
)

STATS = ("channel_mean", "channel_std")  # the info keys of data.normalize=dataset


def as_series(raw: Any) -> list[np.ndarray]:
    """``[N, C, T]`` / ``[N, T]`` array (trailing all-NaN steps are padding, as in ``.npy`` files) or a list of
    ``[C, T_i]`` / ``[T_i]`` arrays -> float32 ``[C, T_i]`` arrays."""
    if hasattr(raw, "detach"):  # a torch tensor
        raw = raw.detach().cpu().numpy()
    if isinstance(raw, np.ndarray):
        if raw.ndim == 1:
            raise UserError(
                f"got one series of shape {list(raw.shape)}; pass a batch: [N, T] (e.g. x[None]), [N, C, T] "
                "or a list of series"
            )
        return _from_array(raw, "the input")
    if isinstance(raw, (str, Path)):
        raise UserError("embed takes series (arrays), not a file name; read files with 'gsg embed ENCODER FILE'")
    if not isinstance(raw, (list, tuple)):
        raise UserError(
            f"cannot embed a {type(raw).__name__}; pass an array [N, C, T] or [N, T], or a list of [C, T] arrays"
        )
    out = []
    for i, item in enumerate(raw):
        x = np.asarray(item.detach().cpu().numpy() if hasattr(item, "detach") else item)
        if x.dtype.kind not in "fiub" or x.ndim not in (1, 2):
            raise UserError(
                f"series {i} of the input is {x.dtype} of shape {list(x.shape)}; give each series as numbers, "
                "[T] or [channels, T]"
            )
        out.append((x[None] if x.ndim == 1 else x).astype(np.float32))
    return out


def series_rows(
    series: list[np.ndarray], cfg: TimeSeriesDataConfig, info: dict[str, Any], source: str = "the input"
) -> list[dict[str, Any]]:
    """Each series preprocessed as ``load_timeseries`` preprocessed the training data, as a row."""
    channels = int(info["channels"])
    rows = []
    for i, x in enumerate(series):
        where = f"series {i} of {source}"
        if x.shape[0] != channels:
            raise UserError(
                f"{where} has {x.shape[0]} channel(s), but the encoder reads {channels} (trained on "
                f"{info.get('dataset')}); give series of {channels} channel(s), as [N, {channels}, T]"
            )
        if x.shape[1] == 0:
            raise UserError(f"{where} has length zero; remove it or fill in its values")
        x = normalize_series(clean_series(x, cfg, where), cfg)
        if cfg.normalize == "dataset":
            x = apply_channel_stats(x, info["channel_mean"], info["channel_std"])
        rows.append({"series": x, "length": int(x.shape[1])})
    return rows


def recovered_stats(domain: Any) -> dict[str, list[float]]:
    """The training data's channel statistics for an export written before exports carried them.

    Re-reads the training data its config names (a built-in set, or ``data.path`` if still there) and
    checks that it is the data the encoder was trained on (equal ``info`` but for the statistics).
    """
    import warnings

    info = domain.info
    try:
        loaded = domain.load_data().info
    except UserError as exc:
        raise UserError(
            "this time-series encoder was exported before exports carried the training data's per-channel "
            f"statistics (data.normalize=dataset), and its training data could not be read to recompute them "
            f"({exc}); make that data readable again, or export the encoder from a run of this version"
        ) from None
    if {k: v for k, v in loaded.items() if k not in STATS} != info:
        raise UserError(
            f"this encoder's export lacks its normalisation statistics, and the data its config names now reads "
            f"as {loaded}, not {info} as in training; embedding needs the training data's statistics: export "
            "the encoder from a run of this version"
        )
    warnings.warn(
        f"this export predates stored normalisation statistics; recomputed them from {info.get('dataset')}",
        stacklevel=3,
    )
    return {k: loaded[k] for k in STATS}


def read_series_file(path: Path, cfg: TimeSeriesDataConfig) -> RawData:
    """A ``.ts`` / ``.npy`` / ``.npz`` / ``.csv`` / ``.parquet`` file, read as training reads ``data.path``."""
    series, labels, _steps = _read_user_file(str(path), "DATA", cfg)
    texts = None
    if labels is not None:  # labels as written in the file; a missing one stays missing
        texts = [
            None if v is None or (isinstance(v, float) and v != v)
            else str(int(v)) if isinstance(v, float) and v.is_integer() else str(v)
            for v in labels
        ]  # fmt: skip
    return RawData(series, texts)
