"""Long recordings -> fixed-length windows: start positions, per-window majority labels, a recording-level split.

Pure NumPy helpers used by ``data.load_timeseries`` when ``data.window`` or ``data.test_fraction`` is set.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def window_starts(length: int, window: int, stride: int) -> np.ndarray:
    """Start of every full window; a tail shorter than ``window`` is dropped (none when ``length < window``)."""
    if length < window:
        return np.zeros(0, dtype=np.int64)
    return np.arange(0, length - window + 1, stride, dtype=np.int64)


def cut(x: np.ndarray, window: int, stride: int) -> list[np.ndarray]:
    """``[C, L]`` -> list of ``[C, window]`` windows starting every ``stride`` steps."""
    return [x[:, s : s + window] for s in window_starts(x.shape[1], window, stride)]


def majority_labels(steps: np.ndarray, window: int, stride: int) -> np.ndarray:
    """The most frequent per-step label of each window (same windows as ``cut``).

    Ties go to the label that sorts first (``np.unique`` order: numbers by value, text alphabetically).
    Counting runs on per-label cumulative sums, so a million-step recording costs O(labels x steps).
    """
    steps = np.asarray(steps)
    starts = window_starts(len(steps), window, stride)
    if len(starts) == 0:
        return steps[:0]
    values, codes = np.unique(steps, return_inverse=True)
    counts = np.empty((len(values), len(starts)), dtype=np.int64)
    for k in range(len(values)):
        cumulative = np.concatenate([[0], np.cumsum(codes.reshape(-1) == k)])
        counts[k] = cumulative[starts + window] - cumulative[starts]
    return values[counts.argmax(axis=0)]  # argmax takes the first maximum: the lowest code wins a tie


def majority(steps: np.ndarray) -> object:
    """The most frequent label of a whole recording (ties: the one that sorts first)."""
    values, counts = np.unique(np.asarray(steps), return_counts=True)
    return values[counts.argmax()]


def stratified_split(labels: Sequence[str], fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Indices of train and test recordings: per label, ``round(n * fraction)`` of its recordings go to test.

    Seeded and reproducible. Every label keeps at least one recording in train (a label seen only
    in test could not be predicted), so a label with a single recording stays on the train side.
    Both index lists are sorted, keeping the file's order within each side.
    """
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels)
    test: list[int] = []
    for label in sorted(set(labels.tolist())):
        members = rng.permutation(np.flatnonzero(labels == label))
        n_test = min(int(np.floor(len(members) * fraction + 0.5)), len(members) - 1)
        test.extend(members[:n_test].tolist())
    chosen = set(test)
    return [i for i in range(len(labels)) if i not in chosen], sorted(test)
