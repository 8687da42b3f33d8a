"""The benchmark report's markdown: header with provenance, budget tables, paired tests, ablation tables.

Everything is read from the cells' cached ``result.json`` files (``ReportData``). Each section is a
function returning its markdown lines; the ablation sections also return the series their figure
plots (drawn by ``report_figures``), computed in the same pass so table and figure cannot disagree.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from .stats import (
    ALPHA,
    BOOTSTRAP_RESAMPLES,
    EQUIVALENCE_MARGIN,
    UnitComparison,
    compare_units,
    fmt_pct,
    holm,
    mean_std,
    min_p,
    unit_differences,
)
from .suite import Cell, budget_steps, sweep_steps
from .variants import PAIRS, RANDOM, VARIANTS, display_name

if TYPE_CHECKING:
    from pathlib import Path

    from .benchmark import Benchmark

PROBES = (("knn", "kNN"), ("linear", "linear"), ("svm", "SVM"))
PAIRING_KEYS = ("pair_11_21", "pair_11_22", "pair_12_21", "pair_12_22")
BUDGETS = {"equal_steps": "equal steps", "equal_compute": "equal compute"}

# The pre-declared confirmatory family (declared here, before any suite runs; changing it after seeing
# results turns it into an exploratory analysis). The first entry is THE primary endpoint:
# linear-probe test accuracy, equal compute, all data sets of the suite, SimSiam+GSG (4 views) minus SimSiam.
PRIMARY_PROBE = "linear"
CONFIRMATORY: tuple[tuple[str, str, str, str], ...] = (
    ("gsg", "simsiam", "equal_compute", "primary endpoint"),
    # Same views, same partner, same compute: only the choice of the pair differs. The test of the guide itself.
    ("gsg", "gsg-random", "equal_compute", "the guide (closest pair vs a random one)"),
)
# Exploratory comparisons: every GSG form against its base, and the controls that isolate the guide.
CONTROLS: tuple[tuple[str, str], ...] = (("gsg", "gsg-random"), ("gsg", "gsg-hard"))
EXPLORATORY: tuple[tuple[str, str], ...] = (*PAIRS, *CONTROLS)


def table(header: list[str], rows: list[list[str]]) -> str:
    """A markdown table, numbers right-aligned (every column after the first)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


@dataclass
class Section:
    """A section's markdown lines and, for a section with a figure, what the figure plots (``None``: no figure)."""

    lines: list[str] = field(default_factory=list)
    plot: Any = None


class ReportData:
    """The suite's cached results, and the lookups every section makes."""

    def __init__(self, bench: Benchmark) -> None:
        self.bench = bench
        self.suite = bench.suite
        self.results = bench.results()

    def scores(self, cells: list[Cell], probe: str) -> list[float]:
        return [
            self.results[c]["scores"][probe] for c in cells if c in self.results and probe in self.results[c]["scores"]
        ]

    def seeds_of(self, dataset: str, objective: str, steps: int, **kw: Any) -> list[Cell]:
        return [Cell(dataset, objective, s, steps, **kw) for s in self.suite.seeds]

    def cells_at(self, dataset: str, objective: str, budget: str) -> list[Cell]:
        """The seeds of ``objective`` on ``dataset`` at a budget (``equal_steps`` / ``equal_compute``)."""
        return self.seeds_of(dataset, objective, budget_steps(objective, self.suite.steps_of(dataset), budget))

    def has(self, dataset: str, *objectives: str) -> bool:
        return all(o in self.suite.objectives_of(dataset) for o in objectives)

    def n_test(self, dataset: str) -> int | None:
        """The test split's size (accuracies are multiples of 1/n_test), from any finished cell of the data set."""
        sizes = {r.get("n_test") for c, r in self.results.items() if c.dataset == dataset and r.get("n_test")}
        return sizes.pop() if len(sizes) == 1 else None

    def paired_scores(self, a: str, b: str, budget: str, probe: str, dataset: str) -> list[tuple[float, float]]:
        """(a, b) scores of the seeds where both runs of ``dataset`` are done."""
        if not self.has(dataset, a, b):
            return []
        out = []
        for ca, cb in zip(self.cells_at(dataset, a, budget), self.cells_at(dataset, b, budget), strict=True):
            ra, rb = self.results.get(ca), self.results.get(cb)
            if ra and rb and probe in ra["scores"] and probe in rb["scores"]:
                out.append((ra["scores"][probe], rb["scores"][probe]))
        return out

    def differences(self, a: str, b: str, budget: str, probe: str, datasets: list[str]) -> dict[str, list[float]]:
        """Per data set, the per-seed differences a - b rounded to its test resolution (1/n_test)."""
        pairs = {ds: self.paired_scores(a, b, budget, probe, ds) for ds in datasets}
        return unit_differences(pairs, {ds: self.n_test(ds) for ds in datasets})

    def floor_gain(self, dataset: str, objective: str, budget: str) -> float | None:
        """Mean over seeds of (linear accuracy - the untrained encoder's), rounded to 1/n_test; None: not known."""
        diffs = self.differences(objective, RANDOM, budget, PRIMARY_PROBE, [dataset]).get(dataset)
        return sum(diffs) / len(diffs) if diffs else None

    def excluded(self, a: str, b: str, budget: str, dataset: str) -> str | None:
        """Why ``dataset`` cannot enter an a-vs-b test: an arm does not beat its untrained encoder (or has no floor)."""
        reasons = []
        for obj in (a, b):
            gain = self.floor_gain(dataset, obj, budget)
            if gain is None:
                reasons.append(f"{display_name(obj)}: no random-init cell to check against")
            elif gain <= 0:
                reasons.append(f"{display_name(obj)} does not beat its untrained encoder ({100 * gain:+.1f} pt)")
        return "; ".join(reasons) or None

    def comparison(
        self, a: str, b: str, budget: str, probe: str, datasets: list[str]
    ) -> tuple[UnitComparison | None, dict]:
        """The data-set-level test of a - b on the eligible ``datasets``; and {excluded data set: reason}."""
        eligible, excluded = [], {}
        for ds in datasets:
            if not self.paired_scores(a, b, budget, probe, ds):
                continue
            reason = self.excluded(a, b, budget, ds)
            if reason:
                excluded[ds] = reason
            else:
                eligible.append(ds)
        groups = self.differences(a, b, budget, probe, eligible)
        return (compare_units(groups) if groups else None), excluded

    def comparisons(self) -> list[tuple[str, str, str]]:
        """(GSG variant, other, budget) triples the suite has; equal compute only where the costs differ."""
        out = []
        for a, b in EXPLORATORY:
            if not any(self.has(ds, a, b) for ds in self.suite.datasets):
                continue
            for budget in self.suite.budgets:
                if budget == "equal_compute" and "equal_steps" in self.suite.budgets and same_cost(a, b):
                    continue  # the same runs as at equal steps
                out.append((a, b, budget))
        return out


def same_cost(a: str, b: str) -> bool:
    """Equal steps already is equal compute for these two."""
    return VARIANTS[a].passes == VARIANTS[b].passes


def z_std_low(curve: list[dict[str, Any]]) -> float | None:
    """The lowest std of normalised z over training, relative to 1/sqrt(d) (1 = no collapse, 0 = collapsed)."""
    ratios = [r["z_std"] / r["z_std_ref"] for r in curve if "z_std" in r]
    return min(ratios) if ratios else None


def mean_of(values: list[float], fmt: str = "{:.1f}") -> str:
    return fmt.format(mean_std(values)[0]) if values else "n/a"


def pp(x: float) -> str:
    return f"{100 * x:+.1f}"


def fmt_p(p: float | None) -> str:
    return "n/a" if p is None else (f"{p:.3f}" if p >= 0.001 else f"{p:.1e}")


# ---------------------------------------------------------------------------- header and summary


def code_states(data: ReportData) -> dict[str, list[Cell]]:
    """The code fingerprints the finished cells were produced with: description -> cells."""
    from .provenance import describe_code

    states: dict[str, list[Cell]] = {}
    for cell, r in data.results.items():
        states.setdefault(describe_code(r.get("code")), []).append(cell)
    return states


def remaining_time(todo: list[Cell], results: dict[Cell, dict[str, Any]]) -> tuple[float, int]:
    """Estimated seconds of cell time for ``todo``, and how many of its cells nothing finished resembles.

    A cell is estimated by the mean wall time of the finished seeds of the same cell; failing that, by the
    finished cells of its data set and objective, per optimiser step, times its steps (the budgets differ
    between equal steps, equal compute and the batch sweep).
    """
    same: dict[Cell, list[float]] = {}  # keyed by the cell with its seed set to 0
    per_step: dict[tuple[str, str], list[float]] = {}
    for cell, r in results.items():
        same.setdefault(replace(cell, seed=0), []).append(r["wall_s"])
        if cell.steps:
            per_step.setdefault((cell.dataset, cell.objective), []).append(r["wall_s"] / cell.steps)
    total, unknown = 0.0, 0
    for cell in todo:
        walls = same.get(replace(cell, seed=0))
        rates = per_step.get((cell.dataset, cell.objective))
        if walls:
            total += sum(walls) / len(walls)
        elif rates:
            total += sum(rates) / len(rates) * cell.steps
        else:
            unknown += 1
    return total, unknown


def header(data: ReportData, command: str, wall_s: float, csv_name: str | None = None) -> list[str]:
    from .provenance import git_commit, machine_summary

    bench, suite, results = data.bench, data.suite, data.results
    total = len(bench.cells)
    done = len(results)
    cell_wall = sum(r["wall_s"] for r in results.values())
    states = code_states(data)
    lines = [
        f"# Benchmark suite `{suite.name}`",
        "",
        suite.description.strip(),
        "",
        f"- command: `{command}` (suite file `{bench.suite_path}`)",
        f"- report written with commit: {git_commit()}",
    ]
    if len(states) == 1:
        lines.append(f"- every cell trained and evaluated with: {next(iter(states))}")
    elif states:
        lines.append(f"- **the cells come from {len(states)} code states** (per cell in the CSV):")
        for state, cells in sorted(states.items(), key=lambda kv: -len(kv[1])):
            datasets = sorted({c.dataset for c in cells})
            lines.append(f"  - {state}: {len(cells)} cell(s) ({', '.join(datasets)})")
    lines += [
        f"- machine: {machine_summary()}",
        f"- report written: {time.strftime('%Y-%m-%d %H:%M %Z')}",
        f"- seeds: {suite.seeds}; step budgets (optimiser steps of a 2-view objective): "
        + ", ".join(f"{ds} {suite.steps_of(ds)}" for ds in suite.datasets)
        + f"; tables: {', '.join(BUDGETS[b] for b in suite.budgets)} (equal compute gives objectives that "
        "encode 4 views half the steps)",
        f"- cells done: {done} of {total}; summed cell wall time {cell_wall / 60:.1f} min; "
        f"this invocation {wall_s / 60:.1f} min",
    ]
    if csv_name:
        lines.append(f"- per-cell, per-seed results (every test below can be recomputed from it): `{csv_name}`")
    lines += [
        "- scores: test-split accuracy in percent, mean +- sample std (ddof=1) over seeds (n = seeds done); "
        "probes fit on the frozen encoder's train-split features (kNN: weighted cosine; linear: logistic "
        "regression; SVM: RBF), hyper-parameters by cross-validation on the train split only",
        "- eff. rank: effective rank of the eval-mode encoder features of the test split (exp of the entropy of "
        "the normalised singular values, mean over seeds): 1 means every sample maps to one line (collapse); "
        "lowest z-std: the smallest std of L2-normalised projections over training relative to 1/sqrt(d); "
        "encoder forwards: samples x views encoded in training (what equal compute equalises)",
        "",
    ]
    if done < total:
        lines += [f"**Incomplete:** {total - done} cell(s) have not run; their rows show fewer seeds or n/a.", ""]
        left_s, unknown = remaining_time([c for c in bench.cells if c not in results], results)
        if left_s:
            guess = f"about {left_s / 3600:.1f} h of cell time at the speed of the finished cells"
            lines += [
                f"Time to finish: {guess} (divide by the number of workers; transfer rows not counted"
                + (f"; {unknown} cell(s) without a finished cell to estimate from" if unknown else "")
                + ").",
                "",
            ]
    failed = bench.failures()
    if failed:
        lines += [f"**Failed:** {len(failed)} cell(s) raised an error (rerun to retry):", ""]
        lines += [*[f"- `{c.key}`: {msg}" for c, msg in failed.items()], ""]
    return lines


def summary(data: ReportData, words: list[str]) -> list[str]:
    """The plain-words conclusions of the tests, and the suite's own commentary."""
    lines = ["## In plain words (generated from the tests)", ""]
    lines += [f"- {w}" for w in words] or ["- No GSG/base pair has finished yet."]
    if data.suite.commentary:
        from .suite import suite_file

        lines += ["", suite_file(data.suite.commentary, data.bench.suite_path).read_text().strip()]
    return [*lines, ""]


# ---------------------------------------------------------------------------- the floor


def floor_table(data: ReportData) -> list[str]:
    """Does every recipe beat its untrained encoder? Linear probe, per data set and budget."""
    suite = data.suite
    rows: list[list[str]] = []
    failing: dict[str, list[str]] = {}  # row label -> data sets where it does not beat its floor
    objectives = [o for o in dict.fromkeys(o for ds in suite.datasets for o in suite.objectives_of(ds)) if o != RANDOM]
    for obj in objectives:
        for budget in data.suite.budgets:
            label = BUDGETS[budget]
            if budget == "equal_compute" and (
                obj == "supervised" or (VARIANTS[obj].passes == 2 and "equal_steps" in data.suite.budgets)
            ):
                continue  # supervised has no equal-compute row; a 2-view objective's rows are the same runs
            row, above, scored = [display_name(obj), label], 0, 0
            for ds in suite.datasets:
                gain = data.floor_gain(ds, obj, budget) if data.has(ds, obj, RANDOM) else None
                if gain is None:
                    row.append("n/a")
                    continue
                scored += 1
                if gain > 0:
                    above += 1
                    row.append(pp(gain))
                else:
                    row.append(f"**{pp(gain)}**")
                    failing.setdefault(f"{display_name(obj)}, {label}", []).append(ds)
            rows.append([*row, f"{above} of {scored}"])
    lines = [
        "## Does each recipe beat its untrained encoder?",
        "",
        "Linear-probe accuracy minus that of the same encoder before pretraining (same seed), in points, mean "
        "over seeds (differences rounded to one test sample). A comparison means nothing on a data set where a "
        "recipe does not beat its own floor: such data sets are **excluded from the tests below** for every "
        "comparison that involves that recipe at that budget (bold: does not beat its floor). The last column "
        "counts the data sets where the recipe is above its floor, of those with a score.",
        "",
        table(["objective", "budget", *suite.datasets, "above floor"], rows) if rows else "No cell has finished yet.",
        "",
    ]
    if failing:
        lines += ["Cells that do not beat their untrained encoder:", ""]
        lines += [*[f"- {row}: {', '.join(sets)}" for row, sets in failing.items()], ""]
    return lines


# ---------------------------------------------------------------------------- budgets


def budget_tables(data: ReportData) -> list[str]:
    lines: list[str] = []
    suite = data.suite
    for ds in suite.datasets:
        steps = suite.steps_of(ds)
        domain = data.bench.base[ds].domain
        n_test = data.n_test(ds)
        res = f"; {n_test} test samples (one sample = {100 / n_test:.2f} points)" if n_test else ""
        config = f"Data set config: `{suite.datasets[ds].config}` with {suite.datasets[ds].overrides}{res}."
        for i, budget in enumerate(suite.budgets):
            # The untrained floor is listed once, in the first table; the supervised ceiling only at equal steps.
            skip = (() if i == 0 else (RANDOM,)) + (("supervised",) if budget == "equal_compute" else ())
            if budget == "equal_steps":
                lines += [f"## {ds} ({domain}): equal steps ({steps} optimiser steps each)", "", config, ""]
            else:
                lines += [
                    f"## {ds} ({domain}): equal compute (encoder forwards of 2 views x {steps} steps)",
                    "",
                    *([config, ""] if i == 0 else []),
                    f"Objectives that encode 4 views per sample train for {steps // 2} steps"
                    + ("; 2-view objectives are the same runs as above." if i else "."),
                    "",
                ]
            lines += [_budget_table(data, ds, budget, skip=skip), ""]
    return lines


def _budget_table(data: ReportData, ds: str, budget: str, skip: tuple[str, ...] = ()) -> str:
    rows = []
    results = data.results
    for obj in data.suite.objectives_of(ds):
        if obj in skip:
            continue
        cells = data.cells_at(ds, obj, budget)
        done = [c for c in cells if c in results]
        fwd = [results[c]["encoder_forwards"] for c in done]
        # The supervised head's features are meant to cluster by class: its z-std is no collapse signal.
        curves = [results[c]["curve"] for c in done if obj != "supervised"]
        low = [v for curve in curves if (v := z_std_low(curve)) is not None]
        erank = [r for c in done if (r := results[c].get("effective_rank")) is not None]
        wall = [results[c]["wall_s"] for c in done]
        rows.append(
            [display_name(obj), str(cells[0].steps)]
            + [fmt_pct(data.scores(cells, p)) for p, _ in PROBES]
            + [mean_of(erank), f"{min(low):.2f}" if low else "n/a"]
            + [mean_of(fwd, "{:,.0f}"), mean_of(wall, "{:.0f}")]
            + [str(len(done))]
        )
    header = ["objective", "steps", *[label for _, label in PROBES], "eff. rank", "lowest z-std", "encoder forwards"]
    header += ["wall s", "n"]
    return table(header, rows)


# ---------------------------------------------------------------------------- tests


def _test_row(
    name: str, role: str, budget: str, r: UnitComparison | None, excluded: dict, holm_cols: bool
) -> list[str]:
    ex = ", ".join(excluded) or "none"
    if r is None:
        return [name, role, BUDGETS[budget], "0", ex, *["n/a"] * (8 if holm_cols else 7), "no eligible data set"]
    cols = [name, role, BUDGETS[budget], str(r.units), ex, str(r.seeds), pp(r.mean_diff)]
    cols += [f"[{pp(r.ci[0])}, {pp(r.ci[1])}]", f"{r.wins}/{r.losses}/{r.ties}", fmt_p(r.p_value)]
    if holm_cols:
        cols += [fmt_p(r.p_holm)]
    cols += [fmt_p(r.min_p), fmt_p(r.tost_p_holm if holm_cols else r.equivalence.p), r.verdict()]
    return cols


def _words(name: str, budget: str, group: str, r: UnitComparison, holm_applied: bool) -> str:
    p = f"p = {fmt_p(r.p_value)}" + (f", Holm-adjusted {fmt_p(r.p_holm)}" if holm_applied else "")
    return (
        f"{name}, {BUDGETS[budget]}, {group}, linear probe: **{r.verdict()}** (mean {pp(r.mean_diff)} points over "
        f"{r.units} data set(s), 95% CI [{pp(r.ci[0])}, {pp(r.ci[1])}]; {r.wins} data sets up, {r.losses} down, "
        f"{r.ties} tied; {p}; the smallest p {r.units} data set(s) allow is {fmt_p(r.min_p)})."
    )


def units_needed(alpha: float) -> int:
    """The fewest units with which an exact two-sided sign-flip test can go below ``alpha``."""
    n = 1
    while min_p(n) >= alpha:
        n += 1
    return n


def confirmatory(data: ReportData) -> tuple[list[str], list[str]]:
    """The pre-declared tests, Holm-corrected as a family: the section's lines and plain-words conclusions."""
    datasets = list(data.suite.datasets)
    family = [
        (a, b, budget, role)
        for a, b, budget, role in CONFIRMATORY
        if budget in data.suite.budgets and any(data.has(ds, a, b) for ds in datasets)
    ]
    margin = 100 * EQUIVALENCE_MARGIN
    lines = [
        "## Confirmatory tests (pre-declared)",
        "",
        "**Primary endpoint**, declared in the code before any run: linear-probe test accuracy, equal compute, "
        "all data sets of the suite, SimSiam+GSG (4 views) minus SimSiam. The confirmatory family adds one test, "
        "GSG against GSG with the case chosen at random (same views, partner and compute: the guide itself). "
        "Everything after this section is exploratory.",
        "",
        "- unit: the **data set** (its seeds share data and test split, so they are not independent pairs): each "
        "data set contributes the mean over seeds of the paired per-seed differences, each rounded to one test "
        "sample (1/n_test) so equal accuracies tie;",
        "- test: exact two-sided sign-flip test over data sets; Holm's correction over the family; with n data "
        "sets no p can go below 2/2^n (column *min p*), so fewer than 6 data sets can never reach 0.05;",
        f"- effect: mean difference over data sets with a 95% hierarchical-bootstrap interval ({BOOTSTRAP_RESAMPLES:,} "
        "resamples of data sets, then of seeds within each);",
        f"- equivalence: TOST (two one-sided sign-flip tests) with margin +-{margin:g} point, Holm over the family; "
        "equivalence needs at least 5 data sets at 0.05;",
        "- data sets where either arm does not beat its untrained encoder are excluded (listed).",
        f"- power in the best case: Holm over {len(family)} test(s) asks the smallest p to be below "
        f"{ALPHA / max(1, len(family)):.3g}, which an exact test over data sets reaches only with "
        f"{units_needed(ALPHA / max(1, len(family)))} or more eligible data sets, all with the same sign; this suite "
        f"has {len(datasets)}.",
        "",
    ]
    results = [
        (a, b, budget, role, *data.comparison(a, b, budget, PRIMARY_PROBE, datasets)) for a, b, budget, role in family
    ]
    tested = [r for *_, r, _ in results if r is not None]
    for r, ph, th in zip(
        tested, holm([r.p_value for r in tested]), holm([r.equivalence.p for r in tested]), strict=True
    ):
        r.p_holm, r.tost_p_holm = ph, th
    rows, words = [], []
    for a, b, budget, role, r, excluded in results:
        name = f"{display_name(a)} vs {display_name(b)}"
        rows.append(_test_row(name, role, budget, r, excluded, holm_cols=True))
        if r is not None:
            words.append(
                ("**Primary endpoint:** " if role == "primary endpoint" else "Confirmatory: ")
                + _words(name, budget, "eligible data sets", r, True)
            )
        if excluded:
            words.append(
                f"{name}: excluded from the test, " + "; ".join(f"{ds} ({why})" for ds, why in excluded.items())
            )
    header = ["comparison", "role", "budget", "data sets", "excluded", "seeds", "mean diff (pp)", "95% CI (pp)"]
    header += ["up/down/tied", "p", "p (Holm)", "min p", f"TOST p (Holm, +-{margin:g} pt)", "verdict"]
    lines += [table(header, rows) if rows else "The suite has neither confirmatory pair.", ""]
    return lines, words


def paired(data: ReportData) -> tuple[list[str], list[str]]:
    """Exploratory data-set-level tests of every comparison, budget, probe and domain; lines and plain words."""
    lines = [
        "## Exploratory comparisons (data set as the unit, not corrected for multiplicity)",
        "",
        "Every GSG form against its base method, and GSG against its controls (random case selection: the guide; "
        "hard partner: the nearest other sample). Same unit, test, interval and exclusions as above; p-values "
        "are not adjusted, so read them as leads, not findings.",
        "",
    ]
    domains: dict[str, list[str]] = {}
    for ds in data.suite.datasets:
        domains.setdefault(data.bench.base[ds].domain, []).append(ds)
    groups = {"all data sets": list(data.suite.datasets)}
    if len(domains) > 1:
        groups |= {f"{d} ({', '.join(names)})": names for d, names in domains.items()}
    rows, words = [], []
    for a, b, budget in data.comparisons():
        name = f"{display_name(a)} vs {display_name(b)}"
        for group, datasets in groups.items():
            for probe, label in PROBES:
                r, excluded = data.comparison(a, b, budget, probe, datasets)
                if r is None and not excluded:
                    continue
                row = _test_row(name, label, budget, r, excluded, holm_cols=False)
                rows.append([row[0], group, *row[1:]])
                if probe == PRIMARY_PROBE and group == "all data sets" and r is not None:
                    words.append("Exploratory: " + _words(name, budget, group, r, False))
    header = ["comparison", "data sets", "probe", "budget", "n", "excluded", "seeds", "mean diff (pp)", "95% CI (pp)"]
    header += ["up/down/tied", "p", "min p", f"TOST p (+-{100 * EQUIVALENCE_MARGIN:g} pt)", "verdict"]
    lines += [table(header, rows) if rows else "No pair has both runs yet.", ""]
    return lines + per_dataset_diffs(data), words


def per_dataset_diffs(data: ReportData) -> list[str]:
    """Linear-probe difference per data set (mean over seeds, rounded to one test sample; seeds up of n)."""
    comps = data.comparisons()
    rows = []
    for ds in data.suite.datasets:
        row = [ds]
        for a, b, budget in comps:
            diffs = data.differences(a, b, budget, PRIMARY_PROBE, [ds]).get(ds)
            if not diffs:
                row.append("n/a")
                continue
            mark = " (below floor)" if data.excluded(a, b, budget, ds) else ""
            row.append(f"{pp(sum(diffs) / len(diffs))} ({sum(d > 0 for d in diffs)}/{len(diffs)}){mark}")
        rows.append(row)
    header = ["data set"] + [f"{display_name(a)} - {display_name(b)}, {BUDGETS[budget]}" for a, b, budget in comps]
    return [
        "Per data set, linear probe: mean difference in points (the first run better in k of n seeds; "
        "'below floor': excluded from the tests above). Seeds of one data set are not independent: these are "
        "descriptions, not tests.",
        "",
        table(header, rows),
        "",
    ]


# ---------------------------------------------------------------------------- ablations (table + figure data)


def ablation(
    data: ReportData, intro: list[str], header: list[str], per_dataset: Callable[[str], tuple[list, list]]
) -> Section:
    """An ablation over the suite's ablation data sets: ``per_dataset(ds)`` gives (table rows, plotted series)."""
    section = Section(intro)
    datasets = data.suite.ablation_datasets()
    if not datasets:
        return section
    rows, plot = [], {}
    for ds in datasets:
        ds_rows, plot[ds] = per_dataset(ds)
        rows += ds_rows
    section.lines += [table(header, rows), ""]
    section.plot = plot
    return section


def batch_sweep(data: ReportData) -> Section | None:
    """Linear-probe accuracy against the batch size; plot: {data set: [(label, batch sizes, means, stds)]}."""
    suite = data.suite
    if not suite.batch_sizes:
        return None
    sizes = sorted(suite.batch_sizes)

    def per_dataset(ds: str) -> tuple[list, list]:
        rows, series = [], []
        base_bs = data.bench.base[ds].train.batch_size
        steps = suite.steps_of(ds)
        for obj in suite.batch_objectives:
            cells_of = {
                bs: data.seeds_of(ds, obj, sweep_steps(steps, base_bs, bs), batch_size=None if bs == base_bs else bs)
                for bs in sizes
            }
            rows.append([ds, display_name(obj), *[fmt_pct(data.scores(cells_of[bs], "linear")) for bs in sizes]])
            xs, ms, ss = [], [], []
            for bs in sizes:
                v = data.scores(cells_of[bs], "linear")
                if v:
                    m, s = mean_std(v)
                    xs.append(bs)
                    ms.append(100 * m)
                    ss.append(100 * s)
            series.append((display_name(obj), xs, ms, ss))
        return rows, series

    intro = [
        "## Small batches",
        "",
        "Every batch size sees as many samples (the data set's step budget scaled by its config's batch / "
        "batch); the learning rate scales linearly with the batch size from each config's own (batch, lr). "
        "Linear-probe accuracy:",
        "",
    ]
    return ablation(data, intro, ["data set", "objective", *[f"batch {b}" for b in sizes]], per_dataset)


def no_predictor(data: ReportData) -> Section | None:
    """Runs with and without a predictor; plot: {data set: [(label, steps, z-std x sqrt(d), with predictor)]}."""
    suite, results = data.suite, data.results
    if not suite.no_predictor:
        return None

    def per_dataset(ds: str) -> tuple[list, list]:
        rows, series = [], []
        for obj in suite.no_predictor:
            for pred in (True, False):
                cells = data.seeds_of(ds, obj, suite.steps_of(ds), predictor=pred)
                done = [c for c in cells if c in results]
                final = [results[c]["curve"][-1] for c in done if results[c]["curve"]]
                ratio = [f["z_std"] / f["z_std_ref"] for f in final if "z_std" in f]
                erank = [r for c in done if (r := results[c].get("effective_rank")) is not None]
                ceiling = [r for c in done if (r := results[c].get("rank_ceiling")) is not None]
                rows.append(
                    [ds, display_name(obj), "yes" if pred else "no", fmt_pct(data.scores(cells, "linear"))]
                    + [fmt_pct(data.scores(cells, "knn"))]
                    + [f"{mean_of(erank)} of {min(ceiling):.0f}" if erank and ceiling else mean_of(erank)]
                    + [mean_of(ratio, "{:.2f}")]
                )
                if done and results[done[0]]["curve"]:
                    curve = results[done[0]]["curve"]
                    label = f"{display_name(obj)}{'' if pred else ', no predictor'}"
                    steps, values = [r["step"] for r in curve], [r["z_std"] / r["z_std_ref"] for r in curve]
                    series.append((label, steps, values, pred))
        return rows, series

    intro = [
        "## Without a predictor",
        "",
        "SimSiam is known to collapse without its predictor; GSG is claimed not to. Collapse shows where it can: "
        "as a low effective rank of the eval-mode encoder features (test split; 1 = every sample on one line, "
        "out of at most min(n_test, d)), and as the std of L2-normalised pre-BatchNorm projections falling far "
        "below 1/sqrt(d) during training. Equal steps.",
        "",
    ]
    header = ["data set", "objective", "predictor", "linear", "kNN", "eff. rank (eval features)"]
    header += ["final z-std / (1/sqrt d)"]
    return ablation(data, intro, header, per_dataset)


def pairings(data: ReportData) -> Section | None:
    """How often each GSG pairing is chosen; plot: (data set, {objective: {pairing key: (steps, fractions)}})."""
    suite = data.suite
    gsg_objs = [o for o in ("gsg", "gsg2", "byol-gsg", "gsg-random", "gsg-hard") if o in suite.objectives]
    if not gsg_objs:
        return None
    ds = (suite.ablation_datasets() or list(suite.datasets))[0]
    curves = {}
    for obj in gsg_objs:
        curve = data.results.get(Cell(ds, obj, suite.seeds[0], suite.steps_of(ds)), {}).get("curve", [])
        if obj in ("gsg-random", "gsg-hard") and not any(k in r for r in curve for k in PAIRING_KEYS):
            continue  # a control that does not log the chosen case
        curves[obj] = {k: ([r["step"] for r in curve if k in r], [r[k] for r in curve if k in r]) for k in PAIRING_KEYS}
    lines = [
        "## Which GSG pairing is chosen",
        "",
        "Fraction of samples for which each of the four cross pairs (view of sample 1, view of its partner) "
        "was the closest (for GSG with random selection: the case drawn); by symmetry each should be near 0.25.",
        "",
    ]
    return Section(lines, (ds, curves))


def transfer(data: ReportData) -> list[str]:
    suite = data.suite
    rows_all = data.bench.transfer_results()
    if not suite.transfer.pairs:
        return []
    lines = [
        "## Transfer",
        "",
        "Pretrain on the row's data set, evaluate the frozen encoder on the column's (linear probe; the "
        "diagonal is in-domain). Mean +- std over seeds.",
        "",
    ]
    targets = sorted({t for ts in suite.transfer.pairs.values() for t in ts} | set(suite.transfer.pairs))
    for obj in suite.transfer.objectives:
        rows = []
        for source in suite.transfer.pairs:
            cells = []
            for target in targets:
                if target == source:
                    v = data.scores(data.cells_at(source, obj, "equal_steps"), "linear")
                else:
                    v = [
                        r["scores"]["linear"]
                        for r in rows_all
                        if r["source"] == source and r["target"] == target and r["objective"] == obj
                    ]
                cells.append(fmt_pct(v) if v else "-")
            rows.append([source, *cells])
        lines += [f"**{display_name(obj)}**", "", table(["pretrained on \\ evaluated on", *targets], rows), ""]
    return lines


def embedding_runs(data: ReportData) -> list[tuple[str, Path]]:
    """(objective, run folder) of the seed-0 runs whose embeddings the map shows (none when it is off)."""
    ds = data.suite.embedding_map
    if ds is None:
        return []
    objs = [o for o in ("random", "simsiam", "gsg") if o in data.suite.objectives_of(ds)]
    cells = [data.cells_at(ds, obj, "equal_steps")[0] for obj in objs]
    return [(c.objective, data.bench.cell_dir(c) / "run") for c in cells if c in data.results]


CSV_COLUMNS = (
    "suite", "dataset", "domain", "objective", "method", "seed", "steps", "steps_done", "batch_size", "predictor",
    "tables", "n_train", "n_test", "knn", "linear", "svm", "knn_macro_f1", "linear_macro_f1", "svm_macro_f1",
    "effective_rank", "rank_ceiling", "encoder_forwards", "wall_s", "version", "commit", "dirty", "key",
)  # fmt: skip


def result_rows(bench: Benchmark, results: dict[Cell, dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """One flat row per finished cell and seed: every number the report's tests are computed from."""
    from .variants import display_name

    rows = []
    for cell, r in (bench.results() if results is None else results).items():
        code = r.get("code") or {}
        rows.append(
            {
                "suite": bench.suite.name,
                "dataset": cell.dataset,
                "domain": bench.base[cell.dataset].domain,
                "objective": cell.objective,
                "method": display_name(cell.objective),
                "seed": cell.seed,
                "steps": cell.steps,
                "steps_done": r.get("steps_done", r.get("steps")),
                "batch_size": r.get("batch_size"),
                "predictor": cell.predictor,
                "tables": " ".join(r.get("tags", [])),
                "n_train": r.get("n_train"),
                "n_test": r.get("n_test"),
                **{p: r["scores"].get(p) for p in ("knn", "linear", "svm")},
                **{f"{p}_macro_f1": r.get("macro_f1", {}).get(p) for p in ("knn", "linear", "svm")},
                "effective_rank": r.get("effective_rank"),
                "rank_ceiling": r.get("rank_ceiling"),
                "encoder_forwards": r.get("encoder_forwards"),
                "wall_s": r.get("wall_s"),
                "version": code.get("version"),
                "commit": code.get("commit"),
                "dirty": code.get("dirty"),
                "key": cell.key,
            }
        )
    return sorted(rows, key=lambda row: (row["dataset"], row["objective"], row["steps"], row["key"]))


def write_results_csv(bench: Benchmark, path: Path, results: dict[Cell, dict[str, Any]] | None = None) -> Path:
    """The per-cell, per-seed results as CSV (``results``: ``bench.results()`` when already read), one row a cell."""
    import csv

    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        for row in result_rows(bench, results):
            writer.writerow({k: "" if v is None else v for k, v in row.items()})
    return path
