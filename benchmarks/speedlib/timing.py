"""Timing and reporting: samples per second, interleaved repetitions, medians with their range, verdicts."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterable
from typing import Any

import torch


def sync(device: torch.device | None = None) -> None:
    """Wait for the GPU's queued work (nothing to wait for on the CPU)."""
    if torch.cuda.is_available() and (device is None or device.type == "cuda"):
        torch.cuda.synchronize()


def rate(fn: Callable[[], Any], n: int, batch_size: int, device: torch.device | None = None) -> float:
    """Samples per second over ``n`` calls of ``fn``, each call one batch of ``batch_size``."""
    sync(device)
    start = time.perf_counter()
    for _ in range(n):
        fn()
    sync(device)
    return n * batch_size / (time.perf_counter() - start)


def interleaved(jobs: dict[str, Callable[[], float]], repeats: int) -> dict[str, list[float]]:
    """Each job's measurements over ``repeats`` repetitions, run A, B, C, then C, B, A, ...

    Reversing the order every other repetition spreads a machine's drift over all jobs alike.
    """
    names = list(jobs)
    out: dict[str, list[float]] = {name: [] for name in names}
    for rep in range(repeats):
        for name in names if rep % 2 == 0 else names[::-1]:
            out[name].append(jobs[name]())
    return out


def ratios(top: Iterable[float], bottom: Iterable[float]) -> list[float]:
    """Per-repetition ratios ``top / bottom`` (a median of these drifts less than a ratio of medians)."""
    return [a / b for a, b in zip(top, bottom, strict=True)]


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def spread(xs: list[float], fmt: str = "{:.0f}") -> str:
    """The median, with the range in brackets when there are several values."""
    med = fmt.format(median(xs))
    return med if len(xs) < 2 else f"{med} ({fmt.format(min(xs))}-{fmt.format(max(xs))})"


def table(headers: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "| " + " | ".join("---" for _ in headers) + " |"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


class Verdicts:
    """PASS/MISS lines against the performance targets, printed as they come and again at the end."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def __call__(self, ok: bool | None, what: str) -> None:
        word = "n/a " if ok is None else ("PASS" if ok else "MISS")
        line = f"{word}  {what}"
        self.lines.append(line)
        print(line)
