"""Raw clips as a user holds them -> rows as training made them (``GSGEncoder.embed``, ``gsg embed``).

Files are decoded by ``read_clip`` (mono, cut to ``data.max_seconds``) and waveforms are cut the same
way; then every clip is resampled to ``data.sample_rate`` by ``resample_clips``, as ``load_audio``
does. The front end (log-mel with the training clips' statistics, or the waveform scale, both in
``info``) and the eval crop (``views.crop_seconds`` from the onset) belong to the eval input.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from gsg_multimodal.domain import RawData
from gsg_multimodal.errors import UserError

from .data import AUDIO_EXTENSIONS, AudioDataConfig, read_clip, resample_clips, scan_folder


def _waveform(item: Any, rate: int, cfg: AudioDataConfig, what: str) -> tuple[np.ndarray, int]:
    x = np.asarray(item.detach().cpu().numpy() if hasattr(item, "detach") else item)
    if x.dtype.kind not in "fiu" or x.ndim != 1:
        raise UserError(
            f"{what} is {x.dtype} of shape {list(x.shape)}; give mono waveforms as 1-D float arrays "
            "(mix channels down first: x.mean(axis=0)), or file paths"
        )
    if x.size == 0:
        raise UserError(f"{what} holds no samples; remove it")
    x = x.astype(np.float32)
    if not np.isfinite(x).all():
        raise UserError(f"{what} holds NaN or infinite samples; fix or remove it")
    if cfg.max_seconds is not None:  # cut where read_clip cuts a file of that rate
        x = x[: int(np.ceil(cfg.max_seconds * rate))]
    return x, rate


def audio_rows(raw: Any, cfg: AudioDataConfig, sample_rate: int | None = None) -> list[dict[str, Any]]:
    """Sound-file paths and/or 1-D waveforms at ``sample_rate`` Hz (default ``data.sample_rate``) -> rows."""
    if isinstance(raw, (str, Path)) or (isinstance(raw, np.ndarray) and raw.ndim == 1):
        raise UserError("pass a list of clips (file paths or 1-D waveforms), e.g. [path] or [waveform]")
    if not isinstance(raw, (list, tuple)) and not (isinstance(raw, np.ndarray) and raw.ndim == 2):
        raise UserError(f"cannot embed a {type(raw).__name__}; pass a list of file paths or 1-D waveforms")
    rate = int(sample_rate or cfg.sample_rate)
    if rate < 1:
        raise UserError(f"sample_rate={sample_rate} must be a positive number of samples per second")
    clips = []
    for i, item in enumerate(raw):
        if isinstance(item, (str, Path)):
            if not Path(item).is_file():
                raise UserError(f"clip {i} of the input, '{item}', is not a file; give sound files or waveforms")
            clips.append(read_clip(item, cfg, str(item)))
        else:
            clips.append(_waveform(item, rate, cfg, f"clip {i} of the input"))
    return [{"audio": x, "length": len(x)} for x in resample_clips(clips, cfg)]


def read_audio(path: Path) -> RawData:
    """An audio folder (``<label>/<clip>``, ``{train,test}/<label>/<clip>`` or clips directly inside) or one file."""
    if path.is_file():
        if path.suffix.lower() not in AUDIO_EXTENSIONS:
            raise UserError(f"'{path}' is not a sound file ({', '.join(AUDIO_EXTENSIONS)}); give one, or a folder")
        return RawData([path], None, [path.name])
    if not any(p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS for p in path.rglob("*")):
        raise UserError(f"no sound files ({', '.join(AUDIO_EXTENSIONS)}) under '{path}'; give an audio folder or file")
    listed = scan_folder(str(path))  # the reader of data.path: its labels are the folders training saw
    files = [(f, label) for split in ("train", "test", "all") for f, label in listed.get(split, [])]
    labels = [label for _, label in files]
    return RawData(
        [f for f, _ in files],
        labels if any(v is not None for v in labels) else None,
        [str(f.relative_to(path)) for f, _ in files],
    )
