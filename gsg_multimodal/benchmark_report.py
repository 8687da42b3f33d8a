"""The benchmark report: markdown tables (``report_tables``) and matplotlib figures (``report_figures``), in order.

Everything is computed from the cells' cached ``result.json`` files, so the report can be
rewritten at any time (``gsg benchmark SUITE --report-only``), also for a suite that is
only partly done: missing cells show as ``n/a`` and the header counts them. The per-cell,
per-seed numbers are written beside the report as ``<report>.csv``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from . import report_figures as figures
from . import report_tables as tables

if TYPE_CHECKING:
    from .benchmark import Benchmark


def write_benchmark_report(bench: Benchmark, out: Path, wall_s: float, command: str = "gsg benchmark") -> Path:
    data = tables.ReportData(bench)
    writer = figures.FigureWriter(out)
    csv_path = tables.write_results_csv(bench, out.with_suffix(".csv"), data.results)
    confirmatory, confirmed = tables.confirmatory(data)
    paired, words = tables.paired(data)
    lines = [*tables.header(data, command, wall_s, csv_path.name), *tables.summary(data, confirmed + words)]
    lines += [*tables.floor_table(data), *confirmatory, *paired, *tables.budget_tables(data)]
    sweep = tables.batch_sweep(data)
    if sweep is not None:
        lines += sweep.lines
        if sweep.plot is not None:
            caption = "Linear-probe accuracy against batch size (mean +- std over seeds)"
            lines += writer.save(figures.draw_batch_sweep(sweep.plot), "accuracy_vs_batch", caption)
    collapse = tables.no_predictor(data)
    if collapse is not None:
        lines += collapse.lines
        if collapse.plot is not None:
            caption = "Std of normalised z over training, relative to 1/sqrt(d); a fall towards 0 is collapse"
            lines += writer.save(figures.draw_z_std(collapse.plot, bench.suite.seeds[0]), "z_std", caption)
    chosen = tables.pairings(data)
    if chosen is not None:
        caption = "How often each GSG pairing is chosen over training (seed 0)"
        lines += [*chosen.lines, *writer.save(figures.draw_pairings(chosen.plot), "pairings", caption)]
    lines += tables.transfer(data)
    runs = tables.embedding_runs(data)
    if runs:
        caption = f"t-SNE of {bench.suite.embedding_map} test-split embeddings, coloured by label (seed 0)"
        lines += ["## Embedding map", "", *writer.save(figures.draw_embedding_map(runs), "embedding_tsne", caption)]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines).rstrip() + "\n")
    return out
