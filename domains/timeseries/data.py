"""Time-series data: built-in UCR/UEA archives and the user's own files -> ``DataSplits``.

Every split becomes a ``datasets.Dataset`` with columns ``series`` (float32, nested
``[channels][time]``), ``length`` (int32) and, for labelled splits, ``label`` (int64):
``np.asarray(row["series"], dtype=np.float32)`` gives ``[C, L_i]``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from gsg_multimodal import packaged
from gsg_multimodal.domain import DataSplits
from gsg_multimodal.errors import UserError
from gsg_multimodal.streaming import StreamOptions

if TYPE_CHECKING:
    import datasets

Series = list[np.ndarray]  # each float32 [channels, length]

BUILTIN_DATASETS: dict[str, str] = {
    "ACSF1": "appliance power draw, univariate, length 1460, 10 classes (100/100)",
    "PLAID": "appliance current, univariate, variable length 100-1344, 11 classes (537/537; sktime only)",
    "BasicMotions": "smartwatch accelerometer + gyroscope, 6 channels, length 100, 4 classes (40/40)",
    "JapaneseVowels": "speech LPC coefficients, 12 channels, variable length 7-29, 9 classes (270/370)",
    "OSULeaf": "leaf outlines, univariate, length 427, 6 classes (200/242)",
    "ArrowHead": "arrowhead outlines, univariate, length 251, 3 classes (36/175)",
    "GunPoint": "hand motion, univariate, length 150, 2 classes (50/150)",
    "ItalyPowerDemand": "daily electricity demand, univariate, length 24, 2 classes (67/1029)",
    "PickupGestureWiimoteZ": "Wiimote gestures, univariate, variable length 29-361, 10 classes (50/50; aeon only)",
}
# The archives are read as files from these wheels (pinned in pyproject.toml), never imported.
_PACKAGES = {"aeon": "aeon==1.6.0", "sktime": "sktime==1.2.0"}
_EXTENSIONS = {".ts": "ts", ".npy": "npy", ".npz": "npz", ".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


@dataclass
class TimeSeriesDataConfig(StreamOptions):
    """The ``data`` section of a time-series run.

    ``path`` (the user's file) takes precedence over ``name`` (a built-in archive).
    A labelled ``path`` without ``test_path`` is enough for pretraining, but evaluation
    (kNN / linear probe) needs a labelled ``test_path`` as well.

    With ``streaming`` (keys inherited from ``StreamOptions``), ``path`` is an archive of Parquet/Arrow
    shards streamed for pretraining (``stream.py``); the probes' labelled splits are read in memory from
    ``eval_path`` (and ``test_path`` or ``test_fraction``), normalised with the archive's statistics.
    """

    name: str | None = "ACSF1"
    path: str | None = None
    test_path: str | None = None
    format: Literal["auto", "ts", "npy", "npz", "csv", "parquet"] = "auto"
    label_column: str | None = "label"  # CSV/Parquet; absent column = unlabelled data
    series_column: str | None = None  # one column holds a whole series; None = every other column is a time step
    # dataset: per-channel mean/std of the train split's values, applied to every split (keeps each series'
    # level and spread, which often carry the class; TS2Vec's choice for UEA); series: z-normalise every
    # series per channel on its own (the UCR convention; drops level and scale); none: values as read.
    normalize: Literal["dataset", "series", "none"] = "dataset"
    pretrain_split: Literal["train", "train+test"] = "train"  # train+test without a test split = train
    limit: int | None = None  # first N series of each split
    nan_policy: Literal["error", "interpolate", "zero"] = "error"
    # Long recordings: cut every recording into windows of `window` steps every `stride` steps (default: window,
    # no overlap); a tail shorter than `window` is dropped. Each window is then one series of the splits.
    window: int | None = None
    stride: int | None = None
    # majority: the most frequent per-step label in the window (needs per-step labels: 'y_steps' in .npz or
    # step_label_column); recording: the recording's own label. None: majority when per-step labels are given.
    window_label: Literal["majority", "recording"] | None = None
    step_label_column: str | None = None  # CSV/Parquet long format: rows = time steps, this column = step label
    recording_column: str | None = None  # long format: rows with the same id form one recording (else: one)
    # No test_path: hold out this fraction of the RECORDINGS (stratified by label, seeded) before windowing,
    # so the windows of one recording are never on both sides.
    test_fraction: float | None = None
    split_seed: int = 0
    # Streaming only: the probes' labelled train file (read in memory, like data.path without streaming);
    # data.test_path / data.test_fraction give their test split. Unset: a streamed run has no probes.
    eval_path: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.streaming:
            self._check_streaming()
        elif self.eval_path is not None:
            raise UserError(
                "data.eval_path is the probes' labelled file of a streamed run (data.streaming=true); "
                "without streaming data.path is that file: unset data.eval_path"
            )
        if self.window is not None and self.window < 2:
            raise UserError(f"data.window={self.window} must be at least 2 time steps; unset it to keep series whole")
        if self.window is None:
            for key in ("stride", "window_label", "step_label_column"):
                if getattr(self, key) is not None:
                    raise UserError(f"data.{key} applies to windows; set data.window (the window length) as well")
        if self.stride is not None and self.stride < 1:
            raise UserError(f"data.stride={self.stride} must be at least 1 time step; unset it for stride = window")
        if self.recording_column is not None and self.step_label_column is None:
            raise UserError(
                "data.recording_column applies to the long CSV/Parquet format; set data.step_label_column as well"
            )
        if self.test_fraction is not None and not 0 < self.test_fraction < 1:
            raise UserError(
                f"data.test_fraction={self.test_fraction} must be between 0 and 1 (exclusive), e.g. 0.2; "
                "unset it for no automatic split"
            )
        if self.test_fraction is not None and self.test_path:
            raise UserError("set either data.test_path (your own test file) or data.test_fraction, not both")

    def _check_streaming(self) -> None:
        if not self.path:
            raise UserError(
                "data.streaming=true reads an archive of Parquet/Arrow shards: set data.path to its folder, "
                "a glob such as 'archive/*.parquet', or one file"
            )
        refused = {
            "step_label_column": "the long format (one row per time step) cannot be streamed; store one row per "
            "recording (see 'Streaming archives' in docs/timeseries.md)",
            "recording_column": "the long format cannot be streamed; store one row per recording",
            "limit": "it reads the first series into memory; a stream reads the whole archive (use a smaller "
            "archive or a glob of some shards)",
        }
        for key, why in refused.items():
            if getattr(self, key) is not None:
                raise UserError(f"data.{key} does not apply with data.streaming=true: {why}; unset it")
        if self.pretrain_split != "train":
            raise UserError(
                "data.pretrain_split=train+test does not apply with data.streaming=true: the archive is the "
                "pretraining data; unset it"
            )
        if self.format not in ("auto", "parquet"):
            raise UserError(
                f"data.format={self.format} does not apply with data.streaming=true: shards are read by their "
                "extension (.parquet, .pq, .arrow); set data.format=auto (or parquet to read only Parquet shards)"
            )
        if (self.test_path or self.test_fraction is not None) and not self.eval_path:
            raise UserError(
                "with data.streaming=true the probes read their labelled train split from data.eval_path; set it "
                "beside data.test_path / data.test_fraction, or unset those to pretrain without probes"
            )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def read_ts_file(path: str | Path) -> tuple[Series, list[str] | None]:
    """Parse an sktime/aeon ``.ts`` file into float32 ``[channels, length]`` arrays and optional labels.

    Written here rather than calling aeon's loader because importing aeon takes seconds
    (numba) and its loaders return different container types per file.
    """
    path = Path(path)
    series: Series = []
    labels: list[str] = []
    class_label = target_label = in_data = False

    def fail(lineno: int, problem: str) -> UserError:
        return UserError(f"cannot read '{path}' line {lineno}: {problem}; fix the file or convert it to .npy/.csv")

    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"cannot read '{path}': {_first_line(e)}; check that it is a UTF-8 .ts file") from e
    for lineno, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if not in_data:
            if not line.startswith("@"):
                raise fail(lineno, "expected a '@' header line before @data")
            key, *words = line[1:].split()
            key, flag = key.lower(), bool(words) and words[0].lower() == "true"
            if key == "data":
                in_data = True
            elif key == "classlabel":
                class_label = flag
            elif key == "targetlabel":  # a regression target: parsed off and dropped, fine for pretraining
                target_label = flag
            elif key == "timestamps" and flag:
                raise fail(lineno, "time-stamped values are not supported")
            continue
        fields = line.split(":")
        if class_label or target_label:
            if len(fields) < 2:
                raise fail(lineno, "expected channel values followed by ':<label>'")
            labels.append(fields.pop().strip())
        try:
            channels = [np.array(f.replace("?", "NaN").split(","), dtype=np.float64) for f in fields]
        except ValueError as e:
            raise fail(lineno, _first_line(e)) from e
        if len({len(c) for c in channels}) > 1:
            raise fail(lineno, f"channels have different lengths {[len(c) for c in channels]}")
        series.append(np.stack(channels).astype(np.float32))
    if not in_data:
        raise fail(len(lines), "no @data line found")
    return series, (labels if class_label else None)


def _builtin_files(name: str) -> tuple[str, Path, Path]:
    canonical = {k.lower(): k for k in BUILTIN_DATASETS}.get(name.lower())
    if canonical is None:
        raise UserError(
            f"unknown built-in time-series data set '{name}'; choose one of {', '.join(BUILTIN_DATASETS)}, "
            "or set data.path to your own file"
        )
    for package in ("aeon", "sktime"):  # aeon first: it is maintained and ships more of them
        root = packaged.package_dir(package)
        folder = root / "datasets" / "data" / canonical if root else None
        if folder and (folder / f"{canonical}_TRAIN.ts").is_file() and (folder / f"{canonical}_TEST.ts").is_file():
            return canonical, folder / f"{canonical}_TRAIN.ts", folder / f"{canonical}_TEST.ts"
    only = [p for p in _PACKAGES if f"{p} only" in BUILTIN_DATASETS[canonical]]
    pin = _PACKAGES[only[0]] if only else f"{_PACKAGES['aeon']} (or {_PACKAGES['sktime']})"
    raise UserError(f"built-in data set {canonical} was not found in the installed packages; run: pip install {pin}")


def _from_array(x: np.ndarray, source: str) -> Series:
    """[N, L] or [N, C, L] -> list of [C, L_i]; trailing all-NaN steps are padding (how UCR stores ragged sets)."""
    if x.dtype.kind not in "fiub":
        raise UserError(f"{source} holds {x.dtype} values, not numbers; store the series as a float array")
    if x.ndim == 2:
        x = x[:, None, :]
    if x.ndim != 3:
        raise UserError(f"{source} has shape {x.shape}; expected [series, length] or [series, channels, length]")
    x = x.astype(np.float32)
    valid = ~np.isnan(x).all(axis=1)  # [N, L]: a step is padding only if every channel is NaN
    lengths = np.where(valid.any(axis=1), x.shape[2] - valid[:, ::-1].argmax(axis=1), 0)
    return [x[i, :, : lengths[i]] for i in range(len(x))]


def _load_table(path: Path, fmt: str) -> datasets.Dataset:
    import datasets

    try:  # the packaged csv/parquet builders read local files without going online
        return datasets.load_dataset(fmt, data_files=str(path), split="train")
    except Exception as e:  # pandas/arrow raise many types for a bad file
        raise UserError(
            f"cannot read {fmt} file '{path}' ({_first_line(e)}); check that it is valid {fmt} with at least one row"
        ) from e


def _numeric_columns(ds: datasets.Dataset, columns: list[str], path: Path, fix: str) -> dict[str, np.ndarray]:
    table = ds.select_columns(columns).with_format("numpy")[:] if columns else {}
    bad = [c for c in columns if np.asarray(table[c]).dtype.kind not in "fiub"]
    if bad:
        raise UserError(f"column(s) {bad} of '{path}' are not numeric; {fix}")
    return table


def _read_long_table(path: Path, fmt: str, cfg: TimeSeriesDataConfig) -> tuple[Series, None, list[np.ndarray]]:
    """Long format: rows are time steps, columns the channels plus the per-step label (and a recording id)."""
    ds = _load_table(path, fmt)
    step, rec = cfg.step_label_column, cfg.recording_column
    for key, column in (("step_label_column", step), ("recording_column", rec)):
        if column is not None and column not in ds.column_names:
            raise UserError(f"data.{key} '{column}' is not a column of '{path}'; choose one of {ds.column_names}")
    if cfg.series_column:
        raise UserError("data.series_column and data.step_label_column are two different layouts; unset one of them")
    if cfg.label_column in ds.column_names and cfg.label_column not in (step, rec):
        raise UserError(
            f"'{path}' is read in the long format (data.step_label_column='{step}'), where labels are per step, "
            f"but it also has the column '{cfg.label_column}' (data.label_column); set data.label_column=null "
            "to use it as a channel, or drop that column"
        )
    channels = [c for c in ds.column_names if c not in (step, rec)]
    if not channels:
        raise UserError(f"'{path}' has no channel columns besides '{step}'; add one numeric column per channel")
    fix = "in the long format every column but the step labels is a channel; name an id column data.recording_column"
    table = _numeric_columns(ds, channels, path, fix)
    x = np.stack([np.asarray(table[c], dtype=np.float32) for c in channels])  # [C, T]
    labels = np.asarray(ds[step])
    if labels.dtype == object or (labels.dtype.kind == "f" and np.isnan(labels).any()):
        raise UserError(f"column '{step}' of '{path}' has rows without a label; fill them in")
    if rec is None:
        return [x], None, [labels]
    try:
        ids, first, inverse = np.unique(np.asarray(ds[rec]), return_index=True, return_inverse=True)
    except TypeError as e:
        raise UserError(f"column '{rec}' of '{path}' has empty recording ids; fill them in") from e
    order = np.argsort(inverse.reshape(-1), kind="stable")  # rows of each recording, in file order
    groups = np.split(order, np.cumsum(np.bincount(inverse.reshape(-1), minlength=len(ids)))[:-1])
    groups = [groups[k] for k in np.argsort(first)]  # recordings in order of first appearance
    return [x[:, g] for g in groups], None, [labels[g] for g in groups]


def _read_table(path: Path, fmt: str, cfg: TimeSeriesDataConfig) -> tuple[Series, list[Any] | None]:
    ds = _load_table(path, fmt)
    label = cfg.label_column if cfg.label_column in ds.column_names else None
    labels = list(ds[label]) if label else None
    if cfg.series_column:
        if cfg.series_column not in ds.column_names:
            raise UserError(
                f"data.series_column '{cfg.series_column}' is not a column of '{path}'; "
                f"choose one of {ds.column_names} or unset it for one column per time step"
            )
        series = []
        for i, value in enumerate(ds[cfg.series_column]):
            try:  # CSV stores a list as its JSON text
                arr = np.asarray(json.loads(value) if isinstance(value, str) else value, dtype=np.float32)
            except (ValueError, TypeError) as e:
                raise UserError(
                    f"row {i} of '{path}' column '{cfg.series_column}' is not a list of numbers or a "
                    f"[channels][time] list of equal-length lists ({_first_line(e)}); fix that row"
                ) from e
            if arr.ndim not in (1, 2):
                raise UserError(f"row {i} of '{path}' has a {arr.ndim}-D series; store [time] or [channels][time]")
            series.append(arr[None, :] if arr.ndim == 1 else arr)
        return series, labels
    columns = [c for c in ds.column_names if c != label]
    fix = "set data.label_column to the label column, data.series_column to a list column, or drop the extra columns"
    table = _numeric_columns(ds, columns, path, fix)
    x = np.stack([table[c] for c in columns], axis=1) if columns else np.zeros((ds.num_rows, 0))
    return _from_array(x, f"'{path}'"), labels


Steps = list[np.ndarray] | None  # per recording, one label per time step


def _read_user_file(path_str: str, key: str, cfg: TimeSeriesDataConfig) -> tuple[Series, list[Any] | None, Steps]:
    path = Path(path_str).expanduser()
    if not path.exists():
        raise UserError(f"{key} '{path_str}' does not exist; check the path or set data.name to a built-in data set")
    fmt = cfg.format if cfg.format != "auto" else _EXTENSIONS.get(path.suffix.lower())
    if fmt is None:
        raise UserError(
            f"cannot tell the format of '{path}' from its extension; set data.format to one of "
            f"{', '.join(sorted(set(_EXTENSIONS.values())))}"
        )
    if cfg.step_label_column and fmt not in ("csv", "parquet"):
        raise UserError(
            f"data.step_label_column is for CSV/Parquet files in the long format, but '{path}' is {fmt}; "
            "store per-step labels as 'y_steps' [N, L] next to 'x' in an .npz file instead"
        )
    if fmt == "ts":
        return (*read_ts_file(path), None)
    if fmt in ("csv", "parquet"):
        return _read_long_table(path, fmt, cfg) if cfg.step_label_column else (*_read_table(path, fmt, cfg), None)
    try:  # allow_pickle=False: a data file must not be able to run code
        loaded = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as e:  # numpy's own text suggests allow_pickle, which is not the fix
        raise UserError(
            f"cannot read '{path}' as numeric NumPy data; save floats with numpy.save or numpy.savez(x=, y=)"
        ) from e
    if isinstance(loaded, np.ndarray):  # np.load tells .npy from .npz by content, not by name
        return _from_array(loaded, f"'{path}'"), None, None
    with loaded:
        if "x" not in loaded:
            raise UserError(f"'{path}' has keys {list(loaded.keys())}; store the series as 'x' (labels as 'y')")
        series = _from_array(loaded["x"], f"'{path}' key 'x'")
        labels = loaded["y"].tolist() if "y" in loaded else None
        if "y_steps" not in loaded:
            return series, labels, None
        y_steps, shape = loaded["y_steps"], loaded["x"].shape
        if y_steps.shape != (shape[0], shape[-1]) or y_steps.dtype.kind not in "iubfU":
            raise UserError(
                f"'{path}' key 'y_steps' is {y_steps.dtype} {y_steps.shape}; store one label (number or text) "
                f"per time step of each recording in 'x', shape [recordings, length] = {[shape[0], shape[-1]]}"
            )
        steps = [y_steps[i, : x.shape[1]] for i, x in enumerate(series)]  # padding steps of 'x' carry no label
        if y_steps.dtype.kind == "f" and any(np.isnan(s).any() for s in steps):
            raise UserError(f"'{path}' key 'y_steps' has NaN labels inside recordings; give every step a label")
        return series, labels, steps


def _fix_missing(x: np.ndarray, policy: str, where: str) -> np.ndarray:
    bad = ~np.isfinite(x)
    if not bad.any():
        return x
    if policy == "error":
        raise UserError(f"{where} has NaN or infinite values; set data.nan_policy=interpolate (or zero) to fill them")
    x = np.where(bad, np.float32(0), x)
    if policy == "interpolate":
        t = np.arange(x.shape[1])
        for c in np.flatnonzero(bad.any(axis=1)):
            ok = ~bad[c]
            if ok.any():  # np.interp holds the nearest valid value beyond the edges
                x[c] = np.interp(t, t[ok], x[c, ok])
    return x  # a channel with no valid value at all stays zero: nothing to interpolate from


def _normalize(x: np.ndarray) -> np.ndarray:
    # float64 so a constant series centres to exact zeros and stays zero after the 1e-8 floor.
    x64 = x.astype(np.float64)
    centred = x64 - x64.mean(axis=1, keepdims=True)
    return (centred / np.maximum(centred.std(axis=1, keepdims=True), 1e-8)).astype(np.float32)


def _channel_stats(series: Series) -> tuple[list[float], list[float]]:
    """Per-channel mean and std over every step of every series (std floored at 1e-8), rounded.

    Rounded to 8 significant digits: they are stored in ``info`` (checkpoints, exports), which must
    compare equal when the same data is loaded again, and a float64 sum's last bits may differ between
    numpy builds. The rounded values are the ones applied, in training and in ``embed`` alike.
    """
    flat = np.concatenate([x.astype(np.float64) for x in series], axis=1)
    return rounded_stats(flat.mean(axis=1), np.maximum(flat.std(axis=1), 1e-8))


def rounded_stats(mean: Any, std: Any) -> tuple[list[float], list[float]]:
    """Channel statistics as stored in ``info`` and applied: 8 significant digits (see ``_channel_stats``)."""
    return [float(f"{m:.8g}") for m in mean], [float(f"{v:.8g}") for v in std]


def apply_channel_stats(x: np.ndarray, mean: list[float], std: list[float]) -> np.ndarray:
    """``data.normalize=dataset``: ``(x - mean) / std`` per channel of ``x [C, L]``, in float64, as float32."""
    m = np.asarray(mean, dtype=np.float64)[:, None]
    s = np.asarray(std, dtype=np.float64)[:, None]
    return ((x - m) / s).astype(np.float32)


def clean_series(x: np.ndarray, cfg: TimeSeriesDataConfig, where: str) -> np.ndarray:
    """Missing values filled by ``data.nan_policy`` (or refused), as float32: the first step of every series."""
    return _fix_missing(x.astype(np.float32, copy=False), cfg.nan_policy, where)


def normalize_series(x: np.ndarray, cfg: TimeSeriesDataConfig) -> np.ndarray:
    """``data.normalize=series``: z-normalise each channel of one series (or window); otherwise unchanged."""
    return _normalize(x) if cfg.normalize == "series" else x


def _label_names(values: list[str]) -> list[str]:
    """Sorted unique labels: numerically when all are numbers (so '10' follows '9'), else as text."""
    unique = sorted(set(values))
    try:
        return sorted(unique, key=float)
    except ValueError:
        return unique


def _label_texts(values: list[Any] | None, where: str) -> list[str] | None:
    if values is None:
        return None
    for i, v in enumerate(values):
        if v is None or (isinstance(v, float) and v != v):
            raise UserError(
                f"row {i} of {where} has no label; fill it in, or drop the labels to use the data unlabelled"
            )
    # pandas turns an int column with gaps into floats: 3.0 must still read as '3'
    return [str(int(v)) if isinstance(v, float) and v.is_integer() else str(v) for v in values]


def _to_dataset(series: Series, labels: list[int] | None) -> datasets.Dataset:
    import datasets

    features = {"series": datasets.List(datasets.List(datasets.Value("float32"))), "length": datasets.Value("int32")}
    data: dict[str, Any] = {"series": series, "length": np.array([s.shape[1] for s in series], dtype=np.int32)}
    if labels is not None:
        features["label"] = datasets.Value("int64")
        data["label"] = np.asarray(labels, dtype=np.int64)
    return datasets.Dataset.from_dict(data, features=datasets.Features(features))  # columnar: fast for numpy input


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _examples(texts: set[str]) -> str:
    names = _label_names(list(texts))
    return ", ".join(repr(t) for t in names[:3]) + (", ..." if len(names) > 3 else "")


def _align_test_labels(train: list[str], test: list[str], where: dict[str, str], fix: str) -> list[str]:
    """Test labels spelled as in train, or a one-line ``UserError`` naming both sides.

    Text on one side and numbers on the other are refused (they would become disjoint classes and a
    silent 0 % score). Numbers spelled differently ('1' and '1.0' or '01') are mapped when each value
    has one spelling in train. Test labels that train never shows are refused, since no probe can predict them.
    """
    known, seen = set(train), set(test)
    if seen <= known:
        return test
    train_numeric, test_numeric = all(map(_is_number, known)), all(map(_is_number, seen))
    if train_numeric != test_numeric:
        kinds = ("numbers", "text") if train_numeric else ("text", "numbers")
        raise UserError(
            f"the labels of {where['train']} ({kinds[0]}: e.g. {_examples(known)}) and of {where['test']} "
            f"({kinds[1]}: e.g. {_examples(seen)}) do not match, so they would count as {len(known | seen)} "
            "unrelated classes and score 0 %; write the same label names in both files (e.g. replace the "
            f"{kinds[1]} by the matching {kinds[0]})"
        )
    if train_numeric:
        spellings: dict[float, set[str]] = {}
        for t in known:
            spellings.setdefault(float(t), set()).add(t)
        if all(len(v) == 1 for v in spellings.values()):
            one = {value: next(iter(names)) for value, names in spellings.items()}
            test = [one.get(float(t), t) for t in test]
            seen = set(test)
    unseen = sorted(seen - known)
    if unseen:
        counts = {t: test.count(t) for t in unseen[:5]}
        listed = ", ".join(f"{t!r} ({n}x)" for t, n in counts.items()) + (", ..." if len(unseen) > 5 else "")
        raise UserError(
            f"{where['test']} has label(s) that {where['train']} never shows: {listed}; the probes can only "
            f"predict the train labels ({_examples(known)}), so {fix}"
        )
    return test


def _resolve_window_label(cfg: TimeSeriesDataConfig, raw: dict[str, tuple[Series, Any, Steps]], names: dict) -> str:
    """'majority', 'recording', or '' without windows; refuses per-step labels that would be ignored."""
    has_steps = {split: steps is not None for split, (_, _, steps) in raw.items()}
    if cfg.window is None:
        for split, yes in has_steps.items():
            if yes:
                raise UserError(
                    f"{names[split]} has per-step labels ('y_steps'), which label windows; set data.window "
                    "(and data.window_label=majority), or drop 'y_steps'"
                )
        return ""
    mode = cfg.window_label or ("majority" if has_steps["train"] else "recording")
    for split, (_, labels, steps) in raw.items():
        if mode == "majority" and steps is None:
            raise UserError(
                f"data.window_label=majority needs per-step labels, but {names[split]} has none; store them as "
                "'y_steps' [N, L] in .npz or use CSV/Parquet with data.step_label_column, or set "
                "data.window_label=recording"
            )
        if mode == "recording" and labels is None and steps is not None:
            raise UserError(
                f"data.window_label=recording needs one label per recording ('y' in .npz), but {names[split]} "
                "has only per-step labels; set data.window_label=majority"
            )
    return mode


def _auto_split(cfg: TimeSeriesDataConfig, train: tuple[Series, Any, Steps], mode: str) -> dict[str, Any]:
    """Hold out ``test_fraction`` of the recordings, stratified by label, before any windowing."""
    from . import windows  # imported here: tests load this file on its own, outside the package

    series, labels, steps = train
    if mode == "majority":
        labels = [windows.majority(s) for s in steps]  # a recording counts for its most frequent step label
    if labels is None:
        raise UserError(
            "data.test_fraction splits labelled data for evaluation, but data.path has no labels; add them "
            "(label column, 'y' or 'y_steps'), or unset data.test_fraction to pretrain only"
        )
    keys = _label_texts(labels, "data.path")
    train_idx, test_idx = windows.stratified_split(keys, cfg.test_fraction, cfg.split_seed)
    if not test_idx:
        raise UserError(
            f"data.test_fraction={cfg.test_fraction} leaves no recording for the test split ({len(series)} "
            "recording(s); every label keeps one in train); raise it, add recordings (data.recording_column for "
            "a long file), or give data.test_path"
        )

    def pick(idx: list[int]) -> tuple[Series, Any, Steps]:
        return (
            [series[i] for i in idx],
            [train[1][i] for i in idx] if train[1] is not None else None,
            [steps[i] for i in idx] if steps is not None else None,
        )

    return {"train": pick(train_idx), "test": pick(test_idx)}


def _check_counts(split: str, dataset: str, series: Series, labels: Any, steps: Steps) -> None:
    if labels is not None and len(labels) != len(series):
        raise UserError(f"{dataset}: {len(series)} series but {len(labels)} labels; give one label per series")
    for i, (x, s) in enumerate(zip(series, steps or [], strict=False)):
        if len(s) != x.shape[1]:
            raise UserError(
                f"recording {i} of the {split} split of {dataset} has {x.shape[1]} steps but {len(s)} step labels"
            )


def load_timeseries(cfg: TimeSeriesDataConfig, stats: tuple[list[float], list[float]] | None = None) -> DataSplits:
    """Read the configured data set into ``DataSplits``.

    Built-in archives give labelled ``train``/``test`` splits. User data: ``path`` alone gives
    ``train`` (if labelled) and ``test=None``, so evaluation needs a labelled ``test_path`` or
    ``test_fraction``; unlabelled data gives ``train=None`` and serves pretraining only.
    With ``window`` every recording is cut into windows, which become the series of the splits.
    ``stats``: per-channel ``(mean, std)`` lists for ``normalize=dataset`` instead of the train
    split's own (a streamed run normalises its probes' splits with the archive's statistics).
    """
    from . import windows  # imported here: tests load this file on its own, outside the package

    if cfg.limit is not None and cfg.limit < 1:
        raise UserError(f"data.limit={cfg.limit} must be a positive number of series; unset it to use all")
    if cfg.test_path and not cfg.path:
        raise UserError("data.test_path was set without data.path; set data.path to the matching training file")
    if not cfg.path and not cfg.name:
        raise UserError("no time-series data configured; set data.name to a built-in data set or data.path to a file")
    if cfg.test_fraction is not None and not cfg.path:
        raise UserError("data.test_fraction splits your own file (data.path); built-in sets have their own test split")
    raw: dict[str, tuple[Series, list[Any] | None, Steps]] = {}
    if cfg.path:
        dataset = cfg.path
        names = {"train": f"data.path '{cfg.path}'", "test": f"data.test_path '{cfg.test_path}'"}
        fix = "drop those test rows or add training examples of them"
        raw["train"] = _read_user_file(cfg.path, "data.path", cfg)
        if cfg.test_path:
            raw["test"] = _read_user_file(cfg.test_path, "data.test_path", cfg)
    else:
        dataset, train_file, test_file = _builtin_files(cfg.name)
        names = {split: f"the {split} split of {dataset}" for split in ("train", "test")}
        fix = "choose another data set"
        raw["train"], raw["test"] = (*read_ts_file(train_file), None), (*read_ts_file(test_file), None)
    for split, parts in raw.items():
        _check_counts(split, dataset, *parts)
    mode = _resolve_window_label(cfg, raw, names)
    if cfg.path and cfg.test_path:
        unlabelled = [s for s, (_, labels, steps) in raw.items() if (steps if mode == "majority" else labels) is None]
        if unlabelled:
            raise UserError(
                "data.test_path is for evaluation and needs labels in both files; add a label "
                "column (data.label_column) or 'y' key, or drop data.test_path"
            )
    if cfg.test_fraction is not None:
        raw = _auto_split(cfg, raw["train"], mode)
        names = {split: f"the {split} part of data.path '{cfg.path}' (data.test_fraction)" for split in raw}
        fix = "change data.split_seed or data.test_fraction, or give data.test_path"
    stride = cfg.stride or cfg.window

    cleaned: dict[str, tuple[Series, list[str] | None]] = {}
    channels: int | None = None
    for split, (series, labels, steps) in raw.items():
        series = series[: cfg.limit]
        labels = labels[: cfg.limit] if labels is not None else None
        steps = steps[: cfg.limit] if steps is not None else None
        if not series:
            raise UserError(f"the {split} split of {dataset} holds no series; check the file or data.series_column")
        texts = _label_texts(labels, f"the {split} split of {dataset}") if mode != "majority" else None
        out: Series = []
        out_labels: list[Any] = []
        longest = 0
        for i, x in enumerate(series):
            where = f"{'recording' if cfg.window else 'series'} {i} of the {split} split of {dataset}"
            if x.shape[1] == 0:
                raise UserError(f"{where} has length zero; remove that row or fill in its values")
            channels = x.shape[0] if channels is None else channels
            if x.shape[0] != channels:
                raise UserError(f"{where} has {x.shape[0]} channels, others {channels}; give every series the same")
            x = clean_series(x, cfg, where)
            longest = max(longest, x.shape[1])
            pieces = windows.cut(x, cfg.window, stride) if cfg.window else [x]
            if mode == "majority":
                out_labels.extend(windows.majority_labels(steps[i], cfg.window, stride).tolist())
            elif texts is not None:
                out_labels.extend([texts[i]] * len(pieces))
            out.extend(normalize_series(p, cfg) for p in pieces)
        if not out:
            raise UserError(
                f"data.window={cfg.window} is longer than every recording of the {split} split of {dataset} "
                f"(longest: {longest} steps); choose a shorter window"
            )
        labelled = mode == "majority" or texts is not None
        cleaned[split] = out, (_label_texts(out_labels, f"the {split} split of {dataset}") if labelled else None)
    stats_info: dict[str, list[float]] = {}
    if cfg.normalize == "dataset":  # statistics of the train split only, so the test split stays unseen
        if stats is not None and len(stats[0]) != channels:
            raise UserError(
                f"{dataset} has {channels} channel(s) but the streamed archive (data.path) has {len(stats[0])}; "
                "the probes' files must hold the same channels as the archive"
            )
        mean, std = stats if stats is not None else _channel_stats(cleaned["train"][0])
        stats_info = {"channel_mean": mean, "channel_std": std}  # in info: exports apply them to raw input too
        for split, (xs, texts) in cleaned.items():
            cleaned[split] = [apply_channel_stats(x, mean, std) for x in xs], texts

    label_names = None
    if all(texts is not None for _, texts in cleaned.values()):
        if "test" in cleaned:
            xs, texts = cleaned["test"]
            cleaned["test"] = xs, _align_test_labels(cleaned["train"][1], texts, names, fix)
        label_names = _label_names(cleaned["train"][1])
    index = {name: k for k, name in enumerate(label_names or [])}
    built = {s: _to_dataset(xs, [index[t] for t in ts] if label_names else None) for s, (xs, ts) in cleaned.items()}

    import datasets

    parts = [built["train"]] + ([built["test"]] if cfg.pretrain_split == "train+test" and "test" in built else [])
    pretrain = datasets.concatenate_datasets([p.select_columns(["series", "length"]) for p in parts])  # no labels
    lengths = [x.shape[1] for xs, _ in cleaned.values() for x in xs]
    info = {
        "channels": channels,
        "max_length": max(lengths),
        "min_length": min(lengths),
        "num_classes": len(label_names or []),
        "dataset": dataset,
        **stats_info,
    }
    if label_names is None:
        return DataSplits(pretrain=pretrain, info=info)
    return DataSplits(pretrain, built["train"], built.get("test"), label_names, info)
