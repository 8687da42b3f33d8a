"""Audio data: the Hydrogen drum kits, the user's own audio folder, or a hub data set -> ``DataSplits``.

Every clip is decoded once at load time with ``soundfile`` (WAV/FLAC/AIFF/OGG; ``torchaudio.load``
and the ``datasets`` audio feature need torchcodec, which does not install here), mixed down to
mono, cut to ``max_seconds`` and resampled with ``torchaudio.functional.resample``. Each split is a
``datasets.Dataset`` with columns ``audio`` (float32 samples at ``sample_rate``), ``length`` (int32)
and, for labelled splits, ``label`` (int64).
"""

from __future__ import annotations

import io
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from gsg_multimodal.domain import DataSplits
from gsg_multimodal.errors import UserError

if TYPE_CHECKING:
    import datasets

DRUMKITS_DIR = "/usr/share/hydrogen/data/drumkits"
BUILTIN_DATASETS: dict[str, str] = {
    "drums": "Hydrogen drum kits (Debian hydrogen-drumkits): ~700 real one-shot recordings in 14 kits, "
    "6 drum types (kick, snare, hihat, tom, cymbal, percussion)",
}
AUDIO_EXTENSIONS = (".wav", ".flac", ".aif", ".aiff", ".ogg", ".mp3")

# Drum-type rules, tried in this order on the lower-cased instrument name with any "(...)" part
# removed (it names brands and sizes: 'Kick (Tama Superstar 22")'). The first match wins.
# EXCLUDE comes first: names that say nothing about the drum ('15', 'Sample: beats_01-39.flac',
# 'Drum 1', 'FX'), or sounds between classes (side stick and rim click are played on the snare
# but sound like a click; whistle and water glass are not drums).
DRUM_CLASSES = ["kick", "snare", "hihat", "tom", "cymbal", "percussion"]
EXCLUDE = re.compile(r"^\W*$|^\d+$|sample:|\bfx\b|zap|(?<!bass )\bdrum \d|click|stick|\brim\b|whistle|waterglass")
NOTE_PREFIX = re.compile(r"^[a-g]#?\d\s*-\s*")  # rumpf_kit prefixes a MIDI note: "c3 - bass drum 1"
DRUM_RULES: list[tuple[str, re.Pattern[str]]] = [
    ("hihat", re.compile(r"hi-?\s?hat|hihat|\bo?hh\b|\bhat\b")),
    ("kick", re.compile(r"kick|bass ?drum")),
    ("snare", re.compile(r"snare")),
    ("tom", re.compile(r"\btom")),
    ("cymbal", re.compile(r"crash|ride|china|splash|cymbal|\bcup\b")),
    (
        "percussion",
        re.compile(
            r"clap|cowbell|conga|bongo|djembe|sangban|dununba|kenkeni|tambourine|agogo|maraca|clave|woodblock"
            r"|cajon|snap"
        ),
    ),
]


@dataclass
class AudioDataConfig:
    """The ``data`` section: which clips, how they are split, and the log-mel front end.

    ``name: drums`` reads the Hydrogen kits; ``path`` (which wins over ``name``) reads an audio folder:
    ``<path>/<label>/<clip>`` (split here, stratified), ``<path>/{train,test}/<label>/<clip>`` (split as
    given) or ``<path>/<clip>`` (unlabelled, pretraining only). ``hub`` names a Hugging Face data set.
    """

    name: str | None = "drums"
    path: str | None = None
    hub: str | None = None
    hub_config: str | None = None
    hub_train_split: str = "train"
    hub_test_split: str | None = "test"
    audio_column: str = "audio"
    label_column: str | None = "label"
    split: Literal["instrument", "kit", "random"] = "instrument"  # how labelled rows are cut into train/test
    test_fraction: float = 0.25
    split_seed: int = 0
    pretrain_split: Literal["train", "train+test"] = "train"
    limit: int | None = None  # first N clips of each split (after shuffling with split_seed)
    max_seconds: float | None = 4.0  # clips are cut here at load time (cymbal tails run to 12 s)
    # Front end (BYOL-A's range): log-mel of sample_rate audio, win_ms windows every hop_ms.
    sample_rate: int = 16000
    n_mels: int = 64
    win_ms: float = 64.0
    hop_ms: float = 10.0
    f_min: float = 60.0
    f_max: float | None = 7800.0

    def __post_init__(self) -> None:
        def check(key: str, ok: bool, what: str) -> None:
            if not ok:
                raise UserError(
                    f"data.{key}={getattr(self, key)!r} must be {what}; fix it in the config's data section"
                )

        check("sample_rate", self.sample_rate >= 1000, "a sample rate of at least 1000 Hz")
        check("n_mels", self.n_mels >= 4, "at least 4 mel bands")
        check("win_ms", 1 <= self.win_ms <= 1000, "a window of 1..1000 ms")
        check("hop_ms", 0 < self.hop_ms <= self.win_ms, "positive and no longer than data.win_ms")
        check("f_min", self.f_min >= 0, "at least 0 Hz")
        nyquist = self.sample_rate / 2
        check("f_max", self.f_max is None or self.f_min < self.f_max <= nyquist, f"in (f_min, {nyquist:g}] or null")
        check("test_fraction", 0 < self.test_fraction < 1, "between 0 and 1")
        check("limit", self.limit is None or self.limit >= 1, "a positive number of clips (or null for all)")
        check("max_seconds", self.max_seconds is None or self.max_seconds > 0, "positive (or null for whole clips)")

    @property
    def n_fft(self) -> int:
        return int(round(self.win_ms * self.sample_rate / 1000))

    @property
    def hop_length(self) -> int:
        return max(1, int(round(self.hop_ms * self.sample_rate / 1000)))


# ---------------------------------------------------------------- decoding


def read_clip(source: str | Path | bytes, cfg: AudioDataConfig, name: str) -> tuple[np.ndarray, int]:
    """One file (or its bytes) -> mono float32 samples at the file's own rate, cut to ``cfg.max_seconds``.

    An unreadable or empty file raises ``UserError`` naming it; a silent clip is kept as it is.
    """
    import soundfile as sf

    try:
        with sf.SoundFile(io.BytesIO(source) if isinstance(source, bytes) else str(source)) as f:
            sr = f.samplerate
            frames = f.frames if cfg.max_seconds is None else min(f.frames, int(np.ceil(cfg.max_seconds * sr)))
            x = f.read(frames, dtype="float32", always_2d=True)  # read only what is kept: long clips are cut
    except (sf.LibsndfileError, RuntimeError, OSError, ValueError) as e:
        raise UserError(f"cannot decode audio file '{name}' ({e}); remove it or convert it to WAV/FLAC") from e
    if x.shape[0] == 0:
        raise UserError(f"audio file '{name}' holds no samples; remove it from the data")
    if not np.isfinite(x).all():
        raise UserError(f"audio file '{name}' holds NaN or infinite samples; remove it or re-export it")
    return x.mean(axis=1), sr


def resample_clips(clips: list[tuple[np.ndarray, int]], cfg: AudioDataConfig) -> list[np.ndarray]:
    """Every clip at ``cfg.sample_rate`` with torchaudio, in zero-padded batches of one source rate.

    One call per clip would rebuild the sinc kernel each time (~20x slower for 700 drum samples).
    Zero padding is what the resampler assumes beyond a clip's end anyway, so batching changes nothing.
    """
    import torch
    import torchaudio.functional as AF

    out: list[np.ndarray | None] = [None] * len(clips)
    by_rate: dict[int, list[int]] = {}
    for i, (_, sr) in enumerate(clips):
        by_rate.setdefault(sr, []).append(i)
    for sr, idx in by_rate.items():
        idx.sort(key=lambda i: len(clips[i][0]))  # similar lengths per batch: little padding
        for start in range(0, len(idx), 64):
            part = idx[start : start + 64]
            x = torch.zeros(len(part), len(clips[part[-1]][0]))
            for row, i in enumerate(part):
                x[row, : len(clips[i][0])] = torch.from_numpy(clips[i][0])
            y = AF.resample(x, sr, cfg.sample_rate) if sr != cfg.sample_rate else x
            for row, i in enumerate(part):
                n = max(1, int(np.ceil(len(clips[i][0]) * cfg.sample_rate / sr)))
                if cfg.max_seconds is not None:
                    n = min(n, int(round(cfg.max_seconds * cfg.sample_rate)))
                out[i] = y[row, :n].numpy().astype(np.float32, copy=True)
    return out  # type: ignore[return-value]


def decode_all(sources: list[Any], names: list[str], cfg: AudioDataConfig) -> list[np.ndarray]:
    """Read and resample many clips (file paths or bytes)."""
    return resample_clips([read_clip(s, cfg, n) for s, n in zip(sources, names, strict=True)], cfg)


def _to_dataset(clips: list[np.ndarray], labels: list[int] | None) -> datasets.Dataset:
    """Clips -> a ``Dataset`` built straight from Arrow buffers (``from_dict`` on 700 numpy clips takes seconds)."""
    import datasets
    import pyarrow as pa

    lengths = np.array([len(c) for c in clips], dtype=np.int32)
    offsets = np.zeros(len(clips) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum(lengths)
    values = np.concatenate(clips) if clips else np.zeros(0, dtype=np.float32)
    columns = {"audio": pa.LargeListArray.from_arrays(pa.array(offsets), pa.array(values, pa.float32()))}
    features = {"audio": datasets.LargeList(datasets.Value("float32")), "length": datasets.Value("int32")}
    columns["length"] = pa.array(lengths)
    if labels is not None:
        columns["label"] = pa.array(np.asarray(labels, dtype=np.int64))
        features["label"] = datasets.Value("int64")
    table = datasets.table.InMemoryTable(pa.table(columns))
    ds = datasets.Dataset(table, info=datasets.DatasetInfo(features=datasets.Features(features)))
    # Rows as NumPy arrays (zero-copy views of the Arrow buffers), not Python lists of floats:
    # fetching and collating 64 one-second drum clips took 133 ms as lists and 30 ms as arrays.
    return ds.with_format("numpy")


# ---------------------------------------------------------------- drum kits


def drum_class(instrument: str) -> str | None:
    """The drum type of a Hydrogen instrument name, or ``None`` when the name is ambiguous (left out)."""
    name = NOTE_PREFIX.sub("", re.sub(r"\(.*?\)", " ", instrument.lower()).strip()).strip()
    if EXCLUDE.search(name):
        return None
    for label, pattern in DRUM_RULES:
        if pattern.search(name):
            return label
    return None


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]  # some kits declare the Hydrogen XML namespace, some do not


def scan_drumkits(root: str | Path = DRUMKITS_DIR) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Every sample file of every kit with its kit, instrument and drum type.

    Returns ``(rows, counts)``: rows ``{"path", "kit", "instrument", "label"}`` (each file once, in a
    fixed order) and counts of files left out as ambiguous and of references to missing files.
    """
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"the drum kits are not installed ({root} is missing); run: apt-get install hydrogen-drumkits")
    rows: list[dict[str, Any]] = []
    seen: set[Path] = set()
    counts = {"ambiguous": 0, "missing": 0}
    for kit_xml in sorted(root.glob("*/drumkit.xml")):
        try:
            tree = ET.parse(kit_xml).getroot()
        except ET.ParseError as e:
            raise UserError(f"cannot parse '{kit_xml}' ({e}); reinstall hydrogen-drumkits") from e
        for inst in (el for el in tree.iter() if _local(el.tag) == "instrument"):
            name = next((c.text or "" for c in inst if _local(c.tag) == "name"), "")
            label = drum_class(name)
            files = [el.text.strip() for el in inst.iter() if _local(el.tag) == "filename" and el.text]
            for file in files:  # one file per velocity layer: each is its own recording
                path = kit_xml.parent / file
                if path in seen:
                    continue
                seen.add(path)
                if not path.is_file():
                    counts["missing"] += 1  # the kit's XML names a file the package does not ship
                elif label is None:
                    counts["ambiguous"] += 1
                else:
                    rows.append({"path": path, "kit": kit_xml.parent.name, "instrument": name, "label": label})
    if not rows:
        raise UserError(f"no labelled drum samples found under {root}; reinstall hydrogen-drumkits")
    return rows, counts


# ---------------------------------------------------------------- splits and folders


def split_rows(labels: np.ndarray, groups: np.ndarray, cfg: AudioDataConfig) -> tuple[np.ndarray, np.ndarray]:
    """Train/test indices, stratified by label, with every group (e.g. one drum's velocity layers) on one side."""
    from sklearn.model_selection import StratifiedGroupKFold

    n_splits = max(2, int(round(1 / cfg.test_fraction)))
    if len(np.unique(groups)) < n_splits:
        raise UserError(
            f"only {len(np.unique(groups))} groups to split into {n_splits} folds; "
            "raise data.test_fraction or use data.split=random"
        )
    folds = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=cfg.split_seed)
    train, test = next(folds.split(np.zeros(len(labels)), labels, groups))
    return train, test


def _audio_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS)


def scan_folder(path: str) -> dict[str, list[tuple[Path, str | None]]]:
    """An audio folder -> ``{split: [(file, label or None)]}`` (see ``AudioDataConfig``)."""
    root = Path(path).expanduser()
    if not root.is_dir():
        raise UserError(f"data.path '{path}' is not a folder; point it at an audio folder (<label>/<clip>.wav)")
    split_dirs = {s: root / s for s in ("train", "test") if (root / s).is_dir()}
    if split_dirs and "train" not in split_dirs:
        raise UserError(f"'{root}' has a test/ folder but no train/ folder; add train/<label>/ clips")
    out: dict[str, list[tuple[Path, str | None]]] = {}
    for split, folder in split_dirs.items() or {"all": root}.items():
        files = _audio_files(folder)
        if not files:
            raise UserError(f"no audio files ({', '.join(AUDIO_EXTENSIONS)}) under '{folder}'; check data.path")
        # <label>/<clip>: the first folder below the split is the label; clips directly inside are unlabelled.
        parts = [f.relative_to(folder).parts for f in files]
        labelled = [len(p) > 1 for p in parts]
        if any(labelled) and not all(labelled):
            loose = files[labelled.index(False)]
            raise UserError(f"'{loose}' lies outside any label folder while other clips are in one; move it")
        out[split] = [(f, p[0] if len(p) > 1 else None) for f, p in zip(files, parts, strict=True)]
    return out


def _load_hub(cfg: AudioDataConfig) -> dict[str, tuple[list[Any], list[Any] | None]]:
    """A hub data set's audio column as raw bytes (decoded by us: the ``datasets`` decoder needs torchcodec)."""
    import datasets

    out: dict[str, tuple[list[Any], list[Any] | None]] = {}
    for split in [cfg.hub_train_split] + ([cfg.hub_test_split] if cfg.hub_test_split else []):
        try:
            ds = datasets.load_dataset(cfg.hub, cfg.hub_config, split=split)
        except Exception as e:  # offline, unknown name, unknown split: the hub raises many types
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise UserError(
                f"cannot load hub data set '{cfg.hub}' split '{split}' ({first}); check the name and that you are "
                "online, or use data.path with a local audio folder"
            ) from e
        if cfg.audio_column not in ds.column_names:
            raise UserError(f"hub data set '{cfg.hub}' has no column '{cfg.audio_column}'; set data.audio_column")
        if isinstance(ds.features[cfg.audio_column], datasets.Audio):
            ds = ds.cast_column(cfg.audio_column, datasets.Audio(decode=False))
        labels = list(ds[cfg.label_column]) if cfg.label_column in ds.column_names else None
        if isinstance(ds.features.get(cfg.label_column), datasets.ClassLabel):
            labels = [ds.features[cfg.label_column].int2str(v) for v in labels]
        key = "train" if split == cfg.hub_train_split else "test"
        out[key] = (list(ds[cfg.audio_column]), labels)
    return out


def _hub_source(item: Any, name: str) -> bytes | str:
    """The bytes (or local path) of one undecoded hub audio cell."""
    if isinstance(item, dict) and item.get("bytes"):
        return item["bytes"]
    if isinstance(item, dict) and item.get("path"):
        return item["path"]
    if isinstance(item, dict) and "array" in item:  # already decoded elsewhere
        raise UserError(f"{name} is a decoded array; load the data set with its audio column undecoded")
    raise UserError(f"{name} holds neither audio bytes nor a file path; set data.audio_column to the audio column")


# ---------------------------------------------------------------- front-end statistics


def logmel_stats(clips: list[np.ndarray], cfg: AudioDataConfig) -> tuple[float, float]:
    """Mean and std of the log-mel values of ``clips`` (every frame of every clip), for normalisation.

    Rounded to 6 significant digits: they are stored in ``DataSplits.info``, which must compare equal
    when the data is loaded again (a sum's last bits can depend on the thread count).
    """
    import torch

    from .frontend import LogMel

    frontend = LogMel(cfg)
    total, total_sq, count = 0.0, 0.0, 0
    order = np.argsort([len(c) for c in clips])  # similar lengths together: little padding per batch
    for start in range(0, len(clips), 64):
        chunk = [clips[i] for i in order[start : start + 64]]
        x = torch.zeros(len(chunk), max(len(c) for c in chunk))
        for i, c in enumerate(chunk):
            x[i, : len(c)] = torch.from_numpy(c)
        lengths = torch.tensor([len(c) for c in chunk])
        with torch.no_grad():
            m = frontend(x).double()  # [N, F, T]
        valid = torch.arange(m.shape[-1]) < frontend.frames(lengths)[:, None]  # frames that saw the clip
        vals = m.masked_select(valid[:, None, :])
        total, total_sq, count = total + vals.sum().item(), total_sq + (vals**2).sum().item(), count + vals.numel()
    mean = total / count
    std = max((total_sq / count - mean**2) ** 0.5, 1e-6)
    return float(f"{mean:.6g}"), float(f"{std:.6g}")


# ---------------------------------------------------------------- entry point


def _label_index(names: list[str | None]) -> list[str]:
    unique = sorted({n for n in names if n is not None})
    if len(unique) < 2:
        raise UserError(f"labelled audio needs at least two classes, found {unique}; add clips of another class")
    return unique


def load_audio(cfg: AudioDataConfig) -> DataSplits:
    """Read the configured clips into ``DataSplits`` with log-mel statistics in ``info``."""
    extra: dict[str, Any] = {}
    label_names: list[str] | None
    if cfg.path or cfg.hub:
        if cfg.path:
            dataset = cfg.path
            listed = scan_folder(cfg.path)
            items = {s: ([f for f, _ in rows], [lab for _, lab in rows]) for s, rows in listed.items()}
            names_of = {s: [str(f) for f in files] for s, (files, _) in items.items()}
        else:
            dataset = cfg.hub
            items = _load_hub(cfg)
            names_of = {s: [f"row {i} of {cfg.hub} {s}" for i in range(len(v))] for s, (v, _) in items.items()}
        labels_all = [lab for _, labs in items.values() for lab in (labs or [None])]
        label_names = _label_index(labels_all) if None not in labels_all else None
        index = {n: k for k, n in enumerate(label_names or [])}
        decoded: dict[str, tuple[list[np.ndarray], list[int] | None]] = {}
        for split, (sources, labs) in items.items():
            rng = np.random.default_rng(cfg.split_seed)
            keep = np.sort(rng.permutation(len(sources))[: cfg.limit]) if cfg.limit else np.arange(len(sources))
            names = [names_of[split][i] for i in keep]
            picked = [_hub_source(sources[i], n) if cfg.hub else sources[i] for i, n in zip(keep, names, strict=True)]
            clips = decode_all(picked, names, cfg)
            decoded[split] = clips, ([index[labs[i]] for i in keep] if label_names else None)
        if "all" in decoded:  # one labelled folder: split it here, stratified by label
            clips, labs = decoded.pop("all")
            if label_names is None:
                decoded["train"] = clips, None
            else:
                y = np.asarray(labs)
                tr, te = split_rows(y, np.arange(len(y)), cfg)
                decoded["train"] = [clips[i] for i in tr], y[tr].tolist()
                decoded["test"] = [clips[i] for i in te], y[te].tolist()
    elif cfg.name:
        if cfg.name.lower() != "drums":
            raise UserError(f"unknown built-in audio data set '{cfg.name}'; use 'drums', or set data.path / data.hub")
        dataset = "drums"
        rows, counts = scan_drumkits()
        label_names = list(DRUM_CLASSES)
        y = np.array([label_names.index(r["label"]) for r in rows])
        if cfg.split == "random":
            groups = np.arange(len(rows))
        else:
            groups = np.unique(
                [r["kit"] + ("" if cfg.split == "kit" else "/" + r["instrument"]) for r in rows], return_inverse=True
            )[1]
        tr, te = split_rows(y, groups, cfg)
        decoded = {}
        for split, idx in (("train", tr), ("test", te)):
            if cfg.limit:  # a class-mixed subset: the rows are in kit order
                idx = np.sort(np.random.default_rng(cfg.split_seed).permutation(idx)[: cfg.limit])
            paths = [rows[i]["path"] for i in idx]
            decoded[split] = decode_all(paths, [str(p) for p in paths], cfg), y[idx].tolist()
        extra = {"left_out_ambiguous": counts["ambiguous"], "missing_files": counts["missing"]}
    else:
        raise UserError("no audio data configured; set data.name: drums, data.path to a folder, or data.hub")

    import datasets

    built = {s: _to_dataset(clips, labs) for s, (clips, labs) in decoded.items()}
    parts = [built["train"]] + ([built["test"]] if cfg.pretrain_split == "train+test" and "test" in built else [])
    pretrain = datasets.concatenate_datasets([p.select_columns(["audio", "length"]) for p in parts])  # keeps NumPy rows
    pre_clips = decoded["train"][0] + (decoded["test"][0] if len(parts) > 1 else [])
    mean, std = logmel_stats(pre_clips, cfg)
    wave_std = float(f"{max(float(np.sqrt(np.mean(np.concatenate(pre_clips).astype(np.float64) ** 2))), 1e-6):.6g}")
    info = {
        "dataset": dataset,
        "sample_rate": cfg.sample_rate,
        "n_mels": cfg.n_mels,
        "logmel_mean": mean,
        "logmel_std": std,
        "wave_std": wave_std,
        "num_classes": len(label_names or []),
        **extra,
    }
    if label_names is None or "test" not in built:
        return DataSplits(pretrain=pretrain, train=built["train"] if label_names else None, info=info)
    return DataSplits(pretrain, built["train"], built["test"], label_names, info)
