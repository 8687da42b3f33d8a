"""The benchmark report's markdown: header with provenance, budget tables, paired tests, ablation tables.

Everything is read from the cells' cached ``result.json`` files (``ReportData``). Each section is a
function returning its markdown lines; the ablation sections also return the series their figure
plots (drawn by ``report_figures``), computed in the same pass so table and figure cannot disagree.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .stats import fmt_pct, mean_std, paired_comparison
from .suite import Cell, equal_compute_epochs
from .variants import PAIRS, VARIANTS, display_name

if TYPE_CHECKING:
    from pathlib import Path

    from .benchmark import Benchmark

PROBES = (("knn", "kNN"), ("linear", "linear"), ("svm", "SVM"))
PAIRING_KEYS = ("pair_11_21", "pair_11_22", "pair_12_21", "pair_12_22")


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
        return [self.results[c]["scores"][probe] for c in cells if c in self.results]

    def seeds_of(self, dataset: str, objective: str, epochs: int, **kw: Any) -> list[Cell]:
        return [Cell(dataset, objective, s, epochs, **kw) for s in self.suite.seeds]

    def pairs_for(self, gsg: str, base: str, budget: str, probe: str, datasets: list[str]) -> tuple[list, list]:
        """Scores of (GSG, base) runs that share data set and seed, for one budget and probe."""
        a, b = [], []
        for ds in datasets:
            if gsg not in self.suite.objectives_of(ds) or base not in self.suite.objectives_of(ds):
                continue
            e = self.suite.epochs_of(ds)
            eg, eb = (
                (e, e) if budget == "equal epochs" else (equal_compute_epochs(gsg, e), equal_compute_epochs(base, e))
            )
            for s in self.suite.seeds:
                ca, cb = Cell(ds, gsg, s, eg), Cell(ds, base, s, eb)
                if ca in self.results and cb in self.results and probe in self.results[ca]["scores"]:
                    a.append(self.results[ca]["scores"][probe])
                    b.append(self.results[cb]["scores"][probe])
        return a, b

    def comparisons(self) -> list[tuple[str, str, str]]:
        """(GSG variant, base, budget) triples the suite has; 2-view GSG costs what its base costs."""
        out = []
        for gsg, base in PAIRS:
            for budget in ("equal epochs", "equal compute"):
                if budget == "equal compute" and VARIANTS[gsg].passes == VARIANTS[base].passes:
                    continue  # the same runs as at equal epochs
                out.append((gsg, base, budget))
        return out


def z_std_low(curve: list[dict[str, Any]]) -> float | None:
    """The lowest std of normalised z over training, relative to 1/sqrt(d) (1 = no collapse, 0 = collapsed)."""
    ratios = [r["z_std"] / r["z_std_ref"] for r in curve if "z_std" in r]
    return min(ratios) if ratios else None


# ---------------------------------------------------------------------------- header and summary


def header(data: ReportData, command: str, wall_s: float) -> list[str]:
    from .provenance import git_commit, machine_summary

    bench, suite, results = data.bench, data.suite, data.results
    total = len(bench.cells)
    done = len(results)
    cell_wall = sum(r["wall_s"] for r in results.values())
    lines = [
        f"# Benchmark suite `{suite.name}`",
        "",
        suite.description.strip(),
        "",
        f"- command: `{command}` (suite file `{bench.suite_path}`)",
        f"- commit: {git_commit()}",
        f"- machine: {machine_summary()}",
        f"- report written: {time.strftime('%Y-%m-%d %H:%M %Z')}",
        f"- seeds: {suite.seeds}; equal-epochs budgets: "
        + ", ".join(f"{ds} {suite.epochs_of(ds)} epochs" for ds in suite.datasets),
        f"- cells done: {done} of {total}; summed cell wall time {cell_wall / 60:.1f} min; "
        f"this invocation {wall_s / 60:.1f} min",
        "- scores: test-split accuracy in percent, mean +- sample std over seeds (n = seeds done); "
        "probes fit on the frozen encoder's train-split features (kNN: weighted cosine; linear: logistic "
        "regression; SVM: RBF), hyper-parameters by cross-validation on the train split only",
        "- lowest z-std: the smallest std of L2-normalised z over training, over seeds, relative to its "
        "no-collapse value 1/sqrt(d): near 1 is healthy, a value near 0 means the run collapsed at some point; "
        "encoder forwards: samples x views encoded in training (what equal compute equalises)",
        "",
    ]
    if done < total:
        lines += [f"**Incomplete:** {total - done} cell(s) have not run; their rows show fewer seeds or n/a.", ""]
    failed = bench.failures()
    if failed:
        lines += [f"**Failed:** {len(failed)} cell(s) raised an error (rerun to retry):", ""]
        lines += [*[f"- `{c.key}`: {msg}" for c, msg in failed.items()], ""]
    return lines


def summary(data: ReportData, words: list[str]) -> list[str]:
    """The plain-words conclusions of the paired tests, and the suite's own commentary."""
    lines = ["## In plain words (generated from the paired tests)", ""]
    lines += [f"- {w}" for w in words] or ["- No GSG/base pair has finished yet."]
    if data.suite.commentary:
        from .suite import suite_file

        lines += ["", suite_file(data.suite.commentary, data.bench.suite_path).read_text().strip()]
    return [*lines, ""]


# ---------------------------------------------------------------------------- budgets and paired tests


def budget_tables(data: ReportData) -> list[str]:
    lines: list[str] = []
    suite = data.suite
    for ds in suite.datasets:
        e = suite.epochs_of(ds)
        domain = data.bench.base[ds].domain
        lines += [f"## {ds} ({domain}): equal epochs ({e} epochs each)", ""]
        lines += [f"Data set config: `{suite.datasets[ds].config}` with {suite.datasets[ds].overrides}.", ""]
        lines += [_budget_table(data, ds, lambda obj, e=e: e), ""]
        lines += [
            f"## {ds} ({domain}): equal compute (encoder forwards of 2 views x {e} epochs)",
            "",
            "4-view objectives train for half the epochs; 2-view objectives are the same runs as above.",
            "",
            _budget_table(data, ds, lambda obj, e=e: equal_compute_epochs(obj, e), skip=("supervised", "random")),
            "",
        ]
    return lines


def _budget_table(data: ReportData, ds: str, epochs_of: Any, skip: tuple[str, ...] = ()) -> str:
    rows = []
    results = data.results
    for obj in data.suite.objectives_of(ds):
        if obj in skip:
            continue
        cells = data.seeds_of(ds, obj, epochs_of(obj))
        done = [c for c in cells if c in results]
        fwd = [results[c]["encoder_forwards"] for c in done]
        # The supervised head's features are meant to cluster by class: its z-std is no collapse signal.
        curves = [results[c]["curve"] for c in done if obj != "supervised"]
        low = [v for curve in curves if (v := z_std_low(curve)) is not None]
        wall = [results[c]["wall_s"] for c in done]
        rows.append(
            [display_name(obj), str(epochs_of(obj) if obj != "random" else 0)]
            + [fmt_pct(data.scores(cells, p)) for p, _ in PROBES]
            + [f"{min(low):.2f}" if low else "n/a"]
            + [f"{mean_std(fwd)[0]:,.0f}" if fwd else "n/a", f"{mean_std(wall)[0]:.0f}" if wall else "n/a"]
            + [str(len(done))]
        )
    header = ["objective", "epochs", *[label for _, label in PROBES], "lowest z-std", "encoder forwards"]
    header += ["wall s", "n"]
    return table(header, rows)


def paired(data: ReportData) -> tuple[list[str], list[str]]:
    """Paired GSG-vs-base tests over data sets x seeds: the section's lines, and plain-words conclusions."""
    lines = [
        "## GSG against its base method (paired over data sets x seeds)",
        "",
        "Each pair is one data set and one seed: the GSG run and its base run share the data, encoder, "
        "initialisation seed and budget. Verdict from the two-sided Wilcoxon signed-rank test at 0.05; with "
        "n pairs the smallest possible p is 2 / 2^n (0.25 for 3 pairs), so a single data set with 3 seeds can "
        "never reach a verdict on its own: read its wins, losses and mean difference instead.",
        "",
    ]
    domains: dict[str, list[str]] = {}
    for ds in data.suite.datasets:
        domains.setdefault(data.bench.base[ds].domain, []).append(ds)
    groups = {"all data sets": list(data.suite.datasets)}
    if len(domains) > 1:
        groups |= {f"{d} ({', '.join(names)})": names for d, names in domains.items()}
    rows, words = [], []
    for gsg, base, budget in data.comparisons():
        for group, datasets in groups.items():
            for probe, label in PROBES:
                a, b = data.pairs_for(gsg, base, budget, probe, datasets)
                if not a:
                    continue
                r = paired_comparison(a, b)
                p = "n/a" if r.p_value is None else f"{r.p_value:.3f}"
                versus = f"{display_name(gsg)} vs {display_name(base)}"
                rows.append(
                    [versus, budget, group, label, str(r.pairs), str(r.wins)]
                    + [str(r.losses), str(r.ties), f"{100 * r.mean_diff:+.1f}", p, r.verdict]
                )
                if probe == "linear":
                    words.append(
                        f"{versus}, {budget}, {group}, linear probe: **{r.verdict}** "
                        f"({r.wins} wins, {r.losses} losses, {r.ties} ties over {r.pairs} pairs; "
                        f"mean {100 * r.mean_diff:+.1f} points; p = {p})."
                    )
    header = ["comparison", "budget", "data sets", "probe", "pairs", "wins", "losses", "ties"]
    header += ["mean diff (pp)", "p", "verdict"]
    lines += [table(header, rows) if rows else "No pair has both runs yet.", ""]
    return lines + per_dataset_diffs(data), words


def per_dataset_diffs(data: ReportData) -> list[str]:
    """Linear-probe difference GSG - base per data set (mean over seeds, wins of n)."""
    comps = data.comparisons()
    rows = []
    for ds in data.suite.datasets:
        row = [ds]
        for gsg, base, budget in comps:
            a, b = data.pairs_for(gsg, base, budget, "linear", [ds])
            if not a:
                row.append("n/a")
                continue
            r = paired_comparison(a, b)
            row.append(f"{100 * r.mean_diff:+.1f} ({r.wins}/{r.pairs})")
        rows.append(row)
    header = ["data set"] + [f"{display_name(g)} - {display_name(b)}, {budget}" for g, b, budget in comps]
    return [
        "Per data set, linear probe: mean difference in points (GSG run better in k of n seeds):",
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
        for obj in suite.batch_objectives:
            cells_of = {
                bs: data.seeds_of(ds, obj, suite.epochs_of(ds), batch_size=None if bs == base_bs else bs)
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
        "Equal epochs; the learning rate scales linearly with the batch size from each config's own "
        "(batch, lr). Linear-probe accuracy:",
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
                cells = data.seeds_of(ds, obj, suite.epochs_of(ds), predictor=pred)
                done = [c for c in cells if c in results]
                final = [results[c]["curve"][-1] for c in done if results[c]["curve"]]
                ratio = [f["z_std"] / f["z_std_ref"] for f in final]
                rows.append(
                    [ds, display_name(obj), "yes" if pred else "no", fmt_pct(data.scores(cells, "linear"))]
                    + [fmt_pct(data.scores(cells, "knn")), f"{mean_std(ratio)[0]:.2f}" if ratio else "n/a"]
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
        "SimSiam is known to collapse without its predictor; GSG is claimed not to. Collapse shows as the "
        "std of L2-normalised z falling far below 1/sqrt(d).",
        "",
    ]
    header = ["data set", "objective", "predictor", "linear", "kNN", "final z-std / (1/sqrt d)"]
    return ablation(data, intro, header, per_dataset)


def pairings(data: ReportData) -> Section | None:
    """How often each GSG pairing is chosen; plot: (data set, {objective: {pairing key: (steps, fractions)}})."""
    suite = data.suite
    gsg_objs = [o for o in ("gsg", "gsg2", "byol-gsg") if o in suite.objectives]
    if not gsg_objs:
        return None
    ds = (suite.ablation_datasets() or list(suite.datasets))[0]
    curves = {}
    for obj in gsg_objs:
        curve = data.results.get(Cell(ds, obj, suite.seeds[0], suite.epochs_of(ds)), {}).get("curve", [])
        curves[obj] = {k: ([r["step"] for r in curve if k in r], [r[k] for r in curve if k in r]) for k in PAIRING_KEYS}
    lines = [
        "## Which GSG pairing is chosen",
        "",
        "Fraction of samples for which each of the four cross pairs (view of sample 1, view of its partner) "
        "was the closest; by symmetry each should be near 0.25.",
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
                    v = data.scores(data.seeds_of(source, obj, suite.epochs_of(source)), "linear")
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
    cells = [Cell(ds, obj, data.suite.seeds[0], data.suite.epochs_of(ds)) for obj in objs]
    return [(c.objective, data.bench.cell_dir(c) / "run") for c in cells if c in data.results]
