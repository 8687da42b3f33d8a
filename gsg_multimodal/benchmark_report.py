"""The benchmark report: markdown tables with provenance, paired tests, and matplotlib plots.

Everything is computed from the cells' cached ``result.json`` files, so the report can be
rewritten at any time (``gsg benchmark SUITE --report-only``), also for a suite that is
only partly done: missing cells show as ``n/a`` and the header counts them.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .stats import fmt_pct, mean_std, paired_comparison
from .suite import Cell, equal_compute_epochs
from .variants import PAIRS, VARIANTS, display_name

if TYPE_CHECKING:
    from .benchmark import Benchmark

PROBES = (("knn", "kNN"), ("linear", "linear"), ("svm", "SVM"))


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


class Report:
    def __init__(self, bench: Benchmark, out: Path, command: str) -> None:
        self.bench = bench
        self.command = command
        self.suite = bench.suite
        self.out = out
        self.fig_dir = out.parent / f"{out.stem}_figures"
        self.results = bench.results()
        self.lines: list[str] = []
        self.figures: list[str] = []

    # ------------------------------------------------------------------ helpers

    def scores(self, cells: list[Cell], probe: str) -> list[float]:
        return [self.results[c]["scores"][probe] for c in cells if c in self.results]

    def seeds_of(self, dataset: str, objective: str, epochs: int, **kw: Any) -> list[Cell]:
        return [Cell(dataset, objective, s, epochs, **kw) for s in self.suite.seeds]

    def add(self, *lines: str) -> None:
        self.lines.extend(lines)

    def figure(self, fig: Any, name: str, caption: str) -> None:
        import matplotlib.pyplot as plt

        self.fig_dir.mkdir(parents=True, exist_ok=True)
        path = self.fig_dir / f"{name}.png"
        fig.savefig(path, dpi=110, bbox_inches="tight")
        plt.close(fig)
        rel = path.relative_to(self.out.parent)
        self.figures.append(str(path))
        self.add(f"![{caption}]({rel.as_posix()})", "", f"*{caption}*", "")

    # ------------------------------------------------------------------ sections

    def header(self, wall_s: float) -> None:
        from .provenance import git_commit, machine_summary

        total = len(self.bench.cells)
        done = len(self.results)
        cell_wall = sum(r["wall_s"] for r in self.results.values())
        self.add(
            f"# Benchmark suite `{self.suite.name}`",
            "",
            self.suite.description.strip(),
            "",
            f"- command: `{self.command}` (suite file `{self.bench.suite_path}`)",
            f"- commit: {git_commit()}",
            f"- machine: {machine_summary()}",
            f"- report written: {time.strftime('%Y-%m-%d %H:%M %Z')}",
            f"- seeds: {self.suite.seeds}; equal-epochs budgets: "
            + ", ".join(f"{ds} {self.suite.epochs_of(ds)} epochs" for ds in self.suite.datasets),
            f"- cells done: {done} of {total}; summed cell wall time {cell_wall / 60:.1f} min; "
            f"this invocation {wall_s / 60:.1f} min",
            "- scores: test-split accuracy in percent, mean +- sample std over seeds (n = seeds done); "
            "probes fit on the frozen encoder's train-split features (kNN: weighted cosine; linear: logistic "
            "regression; SVM: RBF), hyper-parameters by cross-validation on the train split only",
            "- lowest z-std: the smallest std of L2-normalised z over training, over seeds, relative to its "
            "no-collapse value 1/sqrt(d): near 1 is healthy, a value near 0 means the run collapsed at some point; "
            "encoder forwards: samples x views encoded in training (what equal compute equalises)",
            "",
        )
        if done < total:
            self.add(f"**Incomplete:** {total - done} cell(s) have not run; their rows show fewer seeds or n/a.", "")
        failed = self.bench.failures()
        if failed:
            self.add(f"**Failed:** {len(failed)} cell(s) raised an error (rerun to retry):", "")
            self.add(*[f"- `{c.key}`: {msg}" for c, msg in failed.items()], "")

    def budget_tables(self) -> None:
        for ds in self.suite.datasets:
            e = self.suite.epochs_of(ds)
            self.add(f"## {ds} ({self.bench.base[ds].domain}): equal epochs ({e} epochs each)", "")
            self.add(
                f"Data set config: `{self.suite.datasets[ds].config}` with {self.suite.datasets[ds].overrides}.", ""
            )
            self.add(self._budget_table(ds, lambda obj, e=e: e), "")
            self.add(
                f"## {ds} ({self.bench.base[ds].domain}): equal compute (encoder forwards of 2 views x {e} epochs)",
                "",
                "4-view objectives train for half the epochs; 2-view objectives are the same runs as above.",
                "",
                self._budget_table(ds, lambda obj, e=e: equal_compute_epochs(obj, e), skip=("supervised", "random")),
                "",
            )

    def _budget_table(self, ds: str, epochs_of: Any, skip: tuple[str, ...] = ()) -> str:
        rows = []
        for obj in self.suite.objectives_of(ds):
            if obj in skip:
                continue
            cells = self.seeds_of(ds, obj, epochs_of(obj))
            done = [c for c in cells if c in self.results]
            fwd = [self.results[c]["encoder_forwards"] for c in done]
            # The supervised head's features are meant to cluster by class: its z-std is no collapse signal.
            curves = [self.results[c]["curve"] for c in done if obj != "supervised"]
            low = [v for curve in curves if (v := z_std_low(curve)) is not None]
            wall = [self.results[c]["wall_s"] for c in done]
            rows.append(
                [display_name(obj), str(epochs_of(obj) if obj != "random" else 0)]
                + [fmt_pct(self.scores(cells, p)) for p, _ in PROBES]
                + [f"{min(low):.2f}" if low else "n/a"]
                + [f"{mean_std(fwd)[0]:,.0f}" if fwd else "n/a", f"{mean_std(wall)[0]:.0f}" if wall else "n/a"]
                + [str(len(done))]
            )
        header = ["objective", "epochs", *[label for _, label in PROBES], "lowest z-std", "encoder forwards"]
        header += ["wall s", "n"]
        return table(header, rows)

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

    def paired(self) -> list[str]:
        """Paired GSG-vs-base tests over data sets x seeds; returns plain-words conclusions."""
        self.add(
            "## GSG against its base method (paired over data sets x seeds)",
            "",
            "Each pair is one data set and one seed: the GSG run and its base run share the data, encoder, "
            "initialisation seed and budget. Verdict from the two-sided Wilcoxon signed-rank test at 0.05; with "
            "n pairs the smallest possible p is 2 / 2^n (0.25 for 3 pairs), so a single data set with 3 seeds can "
            "never reach a verdict on its own: read its wins, losses and mean difference instead.",
            "",
        )
        domains: dict[str, list[str]] = {}
        for ds in self.suite.datasets:
            domains.setdefault(self.bench.base[ds].domain, []).append(ds)
        groups = {"all data sets": list(self.suite.datasets)}
        if len(domains) > 1:
            groups |= {f"{d} ({', '.join(names)})": names for d, names in domains.items()}
        rows, words = [], []
        for gsg, base, budget in self.comparisons():
            for group, datasets in groups.items():
                for probe, label in PROBES:
                    a, b = self.pairs_for(gsg, base, budget, probe, datasets)
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
        self.add(table(header, rows) if rows else "No pair has both runs yet.", "")
        self.per_dataset_diffs()
        return words

    def per_dataset_diffs(self) -> None:
        """Linear-probe difference GSG - base per data set (mean over seeds, wins of n)."""
        comps = self.comparisons()
        rows = []
        for ds in self.suite.datasets:
            row = [ds]
            for gsg, base, budget in comps:
                a, b = self.pairs_for(gsg, base, budget, "linear", [ds])
                if not a:
                    row.append("n/a")
                    continue
                r = paired_comparison(a, b)
                row.append(f"{100 * r.mean_diff:+.1f} ({r.wins}/{r.pairs})")
            rows.append(row)
        header = ["data set"] + [f"{display_name(g)} - {display_name(b)}, {budget}" for g, b, budget in comps]
        self.add(
            "Per data set, linear probe: mean difference in points (GSG run better in k of n seeds):",
            "",
            table(header, rows),
            "",
        )

    def batch_sweep(self) -> None:
        if not self.suite.batch_sizes:
            return
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        sizes = sorted(self.suite.batch_sizes)
        self.add(
            "## Small batches",
            "",
            "Equal epochs; the learning rate scales linearly with the batch size from each config's own "
            "(batch, lr). Linear-probe accuracy:",
            "",
        )
        rows = []
        datasets = self.suite.ablation_datasets()
        if not datasets:
            return
        n = len(datasets)
        fig, axes = plt.subplots(1, n, figsize=(4.2 * n, 3.2), squeeze=False)
        for ax, ds in zip(axes[0], datasets, strict=True):
            base_bs = self.bench.base[ds].train.batch_size
            for obj in self.suite.batch_objectives:
                cells_of = {
                    bs: self.seeds_of(ds, obj, self.suite.epochs_of(ds), batch_size=None if bs == base_bs else bs)
                    for bs in sizes
                }
                rows.append([ds, display_name(obj), *[fmt_pct(self.scores(cells_of[bs], "linear")) for bs in sizes]])
                xs, ms, ss = [], [], []
                for bs in sizes:
                    v = self.scores(cells_of[bs], "linear")
                    if v:
                        m, s = mean_std(v)
                        xs.append(bs)
                        ms.append(100 * m)
                        ss.append(100 * s)
                if xs:
                    ax.errorbar(xs, ms, yerr=ss, marker="o", capsize=3, label=display_name(obj))
            ax.set_xscale("log", base=2)
            ax.set_xlabel("batch size")
            ax.set_ylabel("linear-probe accuracy (%)")
            ax.set_title(ds)
            ax.legend(fontsize=7)
        self.add(table(["data set", "objective", *[f"batch {b}" for b in sizes]], rows), "")
        self.figure(fig, "accuracy_vs_batch", "Linear-probe accuracy against batch size (mean +- std over seeds)")

    def no_predictor(self) -> None:
        if not self.suite.no_predictor:
            return
        import matplotlib.pyplot as plt

        self.add(
            "## Without a predictor",
            "",
            "SimSiam is known to collapse without its predictor; GSG is claimed not to. Collapse shows as the "
            "std of L2-normalised z falling far below 1/sqrt(d).",
            "",
        )
        rows = []
        datasets = self.suite.ablation_datasets()
        if not datasets:
            return
        n = len(datasets)
        fig, axes = plt.subplots(1, n, figsize=(4.2 * n, 3.2), squeeze=False)
        for ax, ds in zip(axes[0], datasets, strict=True):
            for obj in self.suite.no_predictor:
                for pred in (True, False):
                    cells = self.seeds_of(ds, obj, self.suite.epochs_of(ds), predictor=pred)
                    done = [c for c in cells if c in self.results]
                    final = [self.results[c]["curve"][-1] for c in done if self.results[c]["curve"]]
                    ratio = [f["z_std"] / f["z_std_ref"] for f in final]
                    rows.append(
                        [ds, display_name(obj), "yes" if pred else "no", fmt_pct(self.scores(cells, "linear"))]
                        + [fmt_pct(self.scores(cells, "knn")), f"{mean_std(ratio)[0]:.2f}" if ratio else "n/a"]
                    )
                    if done and self.results[done[0]]["curve"]:
                        curve = self.results[done[0]]["curve"]
                        ax.plot(
                            [r["step"] for r in curve],
                            [r["z_std"] / r["z_std_ref"] for r in curve],
                            linestyle="-" if pred else "--",
                            label=f"{display_name(obj)}{'' if pred else ', no predictor'}",
                        )
            ax.axhline(1.0, color="grey", linewidth=0.8)
            ax.set_xlabel("step")
            ax.set_ylabel("z-std x sqrt(d)")
            ax.set_title(f"{ds} (seed {self.suite.seeds[0]})")
            ax.legend(fontsize=7)
        header = ["data set", "objective", "predictor", "linear", "kNN", "final z-std / (1/sqrt d)"]
        self.add(table(header, rows), "")
        self.figure(
            fig, "z_std", "Std of normalised z over training, relative to 1/sqrt(d); a fall towards 0 is collapse"
        )

    def pairings(self) -> None:
        import matplotlib.pyplot as plt

        keys = ("pair_11_21", "pair_11_22", "pair_12_21", "pair_12_22")
        gsg_objs = [o for o in ("gsg", "gsg2", "byol-gsg") if o in self.suite.objectives]
        if not gsg_objs:
            return
        self.add(
            "## Which GSG pairing is chosen",
            "",
            "Fraction of samples for which each of the four cross pairs (view of sample 1, view of its partner) "
            "was the closest; by symmetry each should be near 0.25.",
            "",
        )
        ds = (self.suite.ablation_datasets() or list(self.suite.datasets))[0]
        fig, axes = plt.subplots(1, len(gsg_objs), figsize=(4.2 * len(gsg_objs), 3.2), squeeze=False)
        for ax, obj in zip(axes[0], gsg_objs, strict=True):
            cell = Cell(ds, obj, self.suite.seeds[0], self.suite.epochs_of(ds))
            curve = self.results.get(cell, {}).get("curve", [])
            for k in keys:
                ax.plot([r["step"] for r in curve if k in r], [r[k] for r in curve if k in r], label=k[5:])
            ax.set_ylim(0, 0.6)
            ax.set_title(f"{display_name(obj)}, {ds}")
            ax.set_xlabel("step")
            ax.legend(fontsize=7)
        self.figure(fig, "pairings", "How often each GSG pairing is chosen over training (seed 0)")

    def transfer(self) -> None:
        rows_all = self.bench.transfer_results()
        if not self.suite.transfer.pairs:
            return
        self.add(
            "## Transfer",
            "",
            "Pretrain on the row's data set, evaluate the frozen encoder on the column's (linear probe; the "
            "diagonal is in-domain). Mean +- std over seeds.",
            "",
        )
        targets = sorted({t for ts in self.suite.transfer.pairs.values() for t in ts} | set(self.suite.transfer.pairs))
        for obj in self.suite.transfer.objectives:
            rows = []
            for source in self.suite.transfer.pairs:
                cells = []
                for target in targets:
                    if target == source:
                        v = self.scores(self.seeds_of(source, obj, self.suite.epochs_of(source)), "linear")
                    else:
                        v = [
                            r["scores"]["linear"]
                            for r in rows_all
                            if r["source"] == source and r["target"] == target and r["objective"] == obj
                        ]
                    cells.append(fmt_pct(v) if v else "-")
                rows.append([source, *cells])
            self.add(f"**{display_name(obj)}**", "", table(["pretrained on \\ evaluated on", *targets], rows), "")

    def embedding_map(self) -> None:
        ds = self.suite.embedding_map
        if ds is None:
            return
        import matplotlib.pyplot as plt
        import numpy as np

        objs = [o for o in ("random", "simsiam", "gsg") if o in self.suite.objectives_of(ds)]
        panels = []
        for obj in objs:
            cell = Cell(ds, obj, self.suite.seeds[0], self.suite.epochs_of(ds))
            if cell in self.results:
                panels.append((obj, self.bench.cell_dir(cell) / "run"))
        if not panels:
            return
        from sklearn.manifold import TSNE

        fig, axes = plt.subplots(1, len(panels), figsize=(4.0 * len(panels), 3.8), squeeze=False)
        for ax, (obj, run_dir) in zip(axes[0], panels, strict=True):
            x, y = split_features(run_dir, random_init=obj == "random")
            xy = TSNE(n_components=2, perplexity=min(30.0, (len(x) - 1) / 3), random_state=0, init="pca").fit_transform(
                x
            )
            for label in np.unique(y):
                m = y == label
                ax.scatter(xy[m, 0], xy[m, 1], s=6, label=str(label))
            ax.set_title(display_name(obj), fontsize=9)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[0][-1].legend(fontsize=6, markerscale=2, loc="best")
        self.add("## Embedding map", "")
        self.figure(fig, "embedding_tsne", f"t-SNE of {ds} test-split embeddings, coloured by label (seed 0)")

    def write(self, wall_s: float) -> Path:
        import matplotlib

        matplotlib.use("Agg")
        self.header(wall_s)
        summary_at = len(self.lines)  # the plain-words summary goes first, but comes from the paired tests
        words = self.paired()
        self.budget_tables()
        self.batch_sweep()
        self.no_predictor()
        self.pairings()
        self.transfer()
        self.embedding_map()
        summary = ["## In plain words (generated from the paired tests)", ""]
        summary += [f"- {w}" for w in words] or ["- No GSG/base pair has finished yet."]
        if self.suite.commentary:
            from .suite import suite_file

            text = suite_file(self.suite.commentary, self.bench.suite_path).read_text().strip()
            summary += ["", text]
        self.lines[summary_at:summary_at] = [*summary, ""]
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.out.write_text("\n".join(self.lines).rstrip() + "\n")
        return self.out


def z_std_low(curve: list[dict[str, Any]]) -> float | None:
    """The lowest std of normalised z over training, relative to 1/sqrt(d) (1 = no collapse, 0 = collapsed)."""
    ratios = [r["z_std"] / r["z_std_ref"] for r in curve if "z_std" in r]
    return min(ratios) if ratios else None


def split_features(run_dir: Path, random_init: bool) -> tuple[Any, Any]:
    """Frozen features and labels of a run's test split (the encoder before pretraining if ``random_init``)."""
    from .evaluate import run_features

    feats, *_ = run_features(run_dir, random_init, splits=("test",))
    return feats["test"]


def write_benchmark_report(bench: Benchmark, out: Path, wall_s: float, command: str = "gsg benchmark") -> Path:
    return Report(bench, out, command).write(wall_s)
