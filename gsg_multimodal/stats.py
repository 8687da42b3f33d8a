"""Statistics for the benchmark report, with the data set as the unit of analysis.

Seeds of one data set share its data, its test split and its recipe: they are repeated measurements of
one unit, not independent pairs. The confirmatory tests therefore reduce each data set to one number
(the mean over seeds of the paired per-seed differences, each rounded to the test split's resolution
``1/n_test`` so equal accuracies tie exactly) and test those numbers:

- ``sign_flip_p``: exact sign-flip (paired permutation) test of the mean difference; with ``n`` units
  no two-sided p can go below ``2 / 2^n`` (``min_p``), whatever the effect size.
- ``tost``: two one-sided sign-flip tests against an equivalence margin (default +-1 point).
- ``hierarchical_bootstrap_ci``: percentile interval of the mean difference, resampling data sets,
  then seeds within each resampled data set.
- ``holm``: Holm's step-down adjustment over a family of tests.

``paired_comparison`` / ``wilcoxon_p`` remain for seeds within ONE data set (exploratory, read with care).
Cross-checked against scipy in ``tests/test_stats_and_suite.py``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

ALPHA = 0.05
EQUIVALENCE_MARGIN = 0.01  # +-1 point of accuracy: "no practically relevant difference"
BOOTSTRAP_RESAMPLES = 10_000
EXACT_MAX_UNITS = 16  # up to 2^16 sign patterns are enumerated; beyond, a seeded Monte Carlo estimate
MONTE_CARLO_RESAMPLES = 100_000


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof=1; 0 for a single value). Every table uses this one."""
    if not len(values):
        raise ValueError("no values")
    n = len(values)
    mean = sum(values) / n
    if n == 1:
        return mean, 0.0
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))


def fmt_pct(values: Sequence[float]) -> str:
    if not len(values):
        return "n/a"
    mean, std = mean_std(values)
    return f"{100 * mean:.1f} +- {100 * std:.1f}" if len(values) > 1 else f"{100 * mean:.1f}"


# ---------------------------------------------------------------------------- resolution and units


def round_to_resolution(diff: float, n_test: int | None) -> float:
    """``diff`` rounded to the nearest multiple of ``1/n_test`` (one test sample), so equal accuracies tie.

    Without a known test-set size only floating-point noise is removed (rounding to 1e-9).
    """
    if n_test:
        return round(diff * n_test) / n_test
    return round(diff, 9)


def unit_differences(
    pairs: Mapping[str, Sequence[tuple[float, float]]], n_test: Mapping[str, int | None] | None = None
) -> dict[str, list[float]]:
    """Per data set, the per-seed differences ``a - b`` rounded to that data set's test resolution."""
    n_test = n_test or {}
    return {unit: [round_to_resolution(a - b, n_test.get(unit)) for a, b in ab] for unit, ab in pairs.items() if ab}


def unit_means(groups: Mapping[str, Sequence[float]]) -> dict[str, float]:
    """One number per unit (data set): the mean over its seeds, with float noise removed."""
    return {unit: round(sum(v) / len(v), 12) for unit, v in groups.items() if len(v)}


# ---------------------------------------------------------------------------- tests


def min_p(n: int, alternative: str = "two-sided") -> float:
    """The smallest p an exact sign-flip or Wilcoxon signed-rank test can reach with ``n`` non-zero units."""
    if n <= 0:
        return 1.0
    return min(1.0, (2.0 if alternative == "two-sided" else 1.0) / 2**n)


def _sign_flip_sums(x: np.ndarray, seed: int) -> np.ndarray:
    """The statistic ``sum(s_i x_i)`` over every sign pattern (exact) or over random ones (large n)."""
    n = len(x)
    if n <= EXACT_MAX_UNITS:
        signs = np.array(list(itertools.product((1.0, -1.0), repeat=n)))
    else:
        signs = np.random.default_rng(seed).choice((1.0, -1.0), size=(MONTE_CARLO_RESAMPLES, n))
    return signs @ x


def sign_flip_p(x: Sequence[float], alternative: str = "two-sided", seed: int = 0) -> float:
    """Exact sign-flip test of "the mean of ``x`` is 0" (``x``: one paired difference per unit).

    Under the null each difference is symmetric about 0, so all ``2^n`` sign patterns are equally
    likely; p is the share of patterns whose sum is at least as extreme as the observed one.
    ``alternative``: ``two-sided``, ``greater`` (mean > 0) or ``less``. Exact for n <= 16; above, a
    Monte Carlo estimate with 100,000 seeded patterns (``(1 + hits) / (1 + draws)``). 1.0 for no units.
    """
    arr = np.asarray(x, dtype=float)
    if arr.size == 0:
        return 1.0
    observed = float(arr.sum())
    sums = _sign_flip_sums(arr, seed)
    tol = 1e-9 * max(1.0, float(np.abs(arr).sum()))  # the observed pattern must count as "as extreme"
    if alternative == "two-sided":
        hits = np.abs(sums) >= abs(observed) - tol
    elif alternative == "greater":
        hits = sums >= observed - tol
    elif alternative == "less":
        hits = sums <= observed + tol
    else:
        raise ValueError(f"alternative must be two-sided, greater or less, not {alternative!r}")
    if arr.size <= EXACT_MAX_UNITS:
        return float(hits.mean())
    return float((1 + hits.sum()) / (1 + len(sums)))


@dataclass
class TostResult:
    margin: float
    p_lower: float  # H0: mean <= -margin
    p_upper: float  # H0: mean >= +margin
    p: float  # max of the two: equivalence is shown when p < alpha
    equivalent: bool


def tost(x: Sequence[float], margin: float = EQUIVALENCE_MARGIN, alpha: float = ALPHA, seed: int = 0) -> TostResult:
    """Two one-sided sign-flip tests: is the mean of ``x`` inside ``(-margin, +margin)``?

    Each one-sided test shifts the differences by the margin and asks for a sign-flip p below
    ``alpha``; with ``n`` units neither can go below ``1 / 2^n``, so 5 data sets are needed at 0.05.
    """
    arr = np.asarray(x, dtype=float)
    if arr.size == 0:
        return TostResult(margin, 1.0, 1.0, 1.0, False)
    p_lower = sign_flip_p(arr + margin, "greater", seed)
    p_upper = sign_flip_p(arr - margin, "less", seed)
    p = max(p_lower, p_upper)
    return TostResult(margin, p_lower, p_upper, p, p < alpha)


def holm(pvalues: Sequence[float | None]) -> list[float | None]:
    """Holm's step-down adjusted p-values (family-wise error over the given tests; None stays None)."""
    idx = [i for i, p in enumerate(pvalues) if p is not None]
    m = len(idx)
    order = sorted(idx, key=lambda i: pvalues[i])
    adjusted: list[float | None] = [None] * len(pvalues)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * float(pvalues[i])))
        adjusted[i] = running
    return adjusted


def hierarchical_bootstrap_ci(
    groups: Mapping[str, Sequence[float]] | Sequence[Sequence[float]],
    level: float = 0.95,
    n_boot: int = BOOTSTRAP_RESAMPLES,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile interval of the mean over units of the per-unit mean, by a two-level bootstrap.

    Each resample draws the units (data sets) with replacement, then, within each drawn unit, its
    values (seeds) with replacement; the statistic is the mean over drawn units of their means, the
    same statistic the tests use. With few units the interval is too narrow, as every percentile
    bootstrap is: read it next to ``min_p``.
    """
    vals = [np.asarray(v, dtype=float) for v in (groups.values() if isinstance(groups, Mapping) else groups)]
    vals = [v for v in vals if v.size]
    if not vals:
        return (math.nan, math.nan)
    k = len(vals)
    sizes = np.array([v.size for v in vals])
    width = int(sizes.max())
    table = np.full((k, width), np.nan)
    for i, v in enumerate(vals):
        table[i, : v.size] = v
    rng = np.random.default_rng(seed)
    units = rng.integers(0, k, size=(n_boot, k))  # which data sets
    within = (rng.random((n_boot, k, width)) * sizes[units][..., None]).astype(int)  # which seeds of each
    mask = np.arange(width)[None, None, :] < sizes[units][..., None]
    drawn = np.where(mask, table[units[..., None], within], 0.0)
    stat = (drawn.sum(-1) / sizes[units]).mean(-1)
    tail = (1 - level) / 2
    lo, hi = np.quantile(stat, [tail, 1 - tail])
    return float(lo), float(hi)


@dataclass
class UnitComparison:
    """A comparison of two recipes with the data set as the unit (``a - b``, accuracy units)."""

    units: int  # data sets
    seeds: int  # paired seeds over all data sets
    wins: int  # data sets whose mean difference is > 0
    losses: int
    ties: int
    mean_diff: float  # mean over data sets of the mean over seeds
    ci: tuple[float, float]  # hierarchical-bootstrap interval of mean_diff
    p_value: float  # exact two-sided sign-flip test over data sets
    min_p: float  # the smallest p this test could reach with this many data sets
    equivalence: TostResult
    per_unit: dict[str, float] = field(default_factory=dict)
    p_holm: float | None = None  # filled in for the confirmatory family
    tost_p_holm: float | None = None

    def verdict(self, alpha: float = ALPHA) -> str:
        p = self.p_holm if self.p_holm is not None else self.p_value
        if p < alpha and self.mean_diff != 0:
            return "better" if self.mean_diff > 0 else "worse"
        tp = self.tost_p_holm if self.tost_p_holm is not None else self.equivalence.p
        if tp < alpha:
            return f"equivalent within +-{100 * self.equivalence.margin:g} pt"
        if self.min_p >= alpha:
            return "cannot be decided (too few data sets)"
        return "no detectable difference"


def compare_units(
    groups: Mapping[str, Sequence[float]],
    margin: float = EQUIVALENCE_MARGIN,
    alpha: float = ALPHA,
    n_boot: int = BOOTSTRAP_RESAMPLES,
    seed: int = 0,
) -> UnitComparison:
    """Data-set-level test of per-seed differences ``groups`` (data set -> rounded differences).

    Each data set contributes one number, the mean of its differences; the sign-flip test, the TOST
    and the win/loss counts use those numbers; the interval resamples data sets, then seeds.
    """
    means = unit_means(groups)
    x = list(means.values())
    nonzero = sum(v != 0 for v in x)
    return UnitComparison(
        units=len(x),
        seeds=sum(len(v) for v in groups.values()),
        wins=sum(v > 0 for v in x),
        losses=sum(v < 0 for v in x),
        ties=len(x) - nonzero,
        mean_diff=sum(x) / len(x) if x else 0.0,
        ci=hierarchical_bootstrap_ci(groups, n_boot=n_boot, seed=seed),
        p_value=sign_flip_p(x),
        min_p=min_p(nonzero),  # a data set with difference 0 is the same under either sign
        equivalence=tost(x, margin, alpha),
        per_unit=means,
    )


# ---------------------------------------------------------------------------- seeds within one data set


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
    """Seeds of ONE data set, pair by pair: wins, losses, ties, mean difference, Wilcoxon p.

    Seeds share the data set, so this says how stable a difference is on that data set; it is not
    evidence across data sets (use ``compare_units``). With 3 pairs no two-sided p can go below 0.25,
    with 5 pairs not below 0.0625.
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
    """Two-sided Wilcoxon signed-rank p-value (exact when there are no zeros or tied magnitudes).

    1.0 when every difference is zero, None for no pairs. Zero differences are split between the signs
    (``zsplit``), which then needs scipy's normal approximation.
    """
    if not diffs:
        return None
    if all(d == 0 for d in diffs):
        return 1.0
    from scipy.stats import wilcoxon

    mags = [abs(d) for d in diffs]
    exact = 0 not in diffs and len(set(mags)) == len(mags)
    return float(wilcoxon(diffs, zero_method="zsplit", method="exact" if exact else "auto").pvalue)
