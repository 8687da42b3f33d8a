"""Summary statistics for benchmark tables: mean +- std over seeds, and paired GSG-vs-base tests."""

from __future__ import annotations

import math
from dataclasses import dataclass

ALPHA = 0.05


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof=1; 0 for a single value)."""
    if not values:
        raise ValueError("no values")
    n = len(values)
    mean = sum(values) / n
    if n == 1:
        return mean, 0.0
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))


def fmt_pct(values: list[float]) -> str:
    if not values:
        return "n/a"
    mean, std = mean_std(values)
    return f"{100 * mean:.1f} +- {100 * std:.1f}" if len(values) > 1 else f"{100 * mean:.1f}"


@dataclass
class PairedResult:
    pairs: int
    wins: int
    losses: int
    ties: int
    mean_diff: float  # in accuracy units (0.01 = one percentage point)
    p_value: float | None  # Wilcoxon signed-rank, two-sided; None when it cannot be computed
    verdict: str


def paired_comparison(a: list[float], b: list[float], alpha: float = ALPHA) -> PairedResult:
    """Is ``a`` (GSG) better than ``b`` (its base method), pair by pair (same data set, same seed)?

    Wins/losses count pairs; the Wilcoxon signed-rank test (exact for small samples) gives the
    p-value. The verdict is "better" or "worse" only when p < ``alpha``; otherwise "no detectable
    difference", which with few pairs is the honest answer: with 3 pairs no two-sided p-value can
    go below 0.25, with 6 pairs not below 0.031.
    """
    if len(a) != len(b):
        raise ValueError("paired samples must have the same length")
    diffs = [x - y for x, y in zip(a, b, strict=True)]
    wins = sum(d > 0 for d in diffs)
    losses = sum(d < 0 for d in diffs)
    ties = len(diffs) - wins - losses
    mean_diff = sum(diffs) / len(diffs) if diffs else 0.0
    p = wilcoxon_p(diffs)
    if p is not None and p < alpha and mean_diff != 0:
        verdict = "better" if mean_diff > 0 else "worse"
    else:
        verdict = "no detectable difference"
    return PairedResult(len(diffs), wins, losses, ties, mean_diff, p, verdict)


def wilcoxon_p(diffs: list[float]) -> float | None:
    """Two-sided Wilcoxon signed-rank p-value; 1.0 when every difference is zero, None for no pairs."""
    if not diffs:
        return None
    if all(d == 0 for d in diffs):
        return 1.0
    from scipy.stats import wilcoxon

    return float(wilcoxon(diffs, zero_method="zsplit").pvalue)
