"""Does a row's gain over the untrained encoder follow how much it spreads the features?

    python benchmarks/rank_vs_gain.py docs/data/ts_table_5seeds.csv

Reads a table runner CSV (``benchmarks/ts_table.py --report``). For every trained cell it pairs the accuracy
gain over the untrained encoder of the same data set and seed with the ratio of their effective ranks (the
collapse measure: below 1, the features are less spread than before training). Prints, per row, the
median rank ratio, the mean gain, and Spearman's correlation between the two, then the same over all
trained cells. A positive correlation says the cells that gain are the ones whose features spread.
"""

from __future__ import annotations

import argparse
import csv
import statistics
from pathlib import Path

from scipy.stats import spearmanr


def pairs(rows: list[dict[str, str]], untrained: str, probe: str) -> dict[str, list[tuple[float, float]]]:
    """``{row: [(gain in points, effective-rank ratio), ...]}`` over the cells that have an untrained twin."""
    base = {(r["dataset"], r["seed"]): r for r in rows if r["row"] == untrained}
    if not base:
        raise SystemExit(f"error: the CSV has no '{untrained}' row; name the untrained row with --untrained")
    out: dict[str, list[tuple[float, float]]] = {}
    for r in rows:
        twin = base.get((r["dataset"], r["seed"]))
        if r["row"] == untrained or twin is None or not r["effective_rank"] or not twin["effective_rank"]:
            continue  # hand-crafted rows have no encoder rank; cells without a twin cannot be paired
        gain = 100 * (float(r[probe]) - float(twin[probe]))
        out.setdefault(r["row"], []).append((gain, float(r["effective_rank"]) / float(twin["effective_rank"])))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("csv", help="a table runner CSV with an untrained row")
    parser.add_argument("--untrained", default="untrained", help="the name of the untrained row")
    parser.add_argument("--probe", default="svm", choices=("svm", "linear", "knn"))
    args = parser.parse_args()
    path = Path(args.csv)
    if not path.is_file():
        raise SystemExit(f"error: no CSV at '{path}'; write one with benchmarks/ts_table.py --report")
    by_row = pairs(list(csv.DictReader(path.open())), args.untrained, args.probe)
    print(f"| row | cells | median rank ratio | mean {args.probe} gain (points) | Spearman |")
    print("| --- | ---: | ---: | ---: | ---: |")
    everything = [p for ps in by_row.values() for p in ps]
    for name, ps in [*sorted(by_row.items()), ("all trained cells", everything)]:
        gains, ratios = zip(*ps, strict=True)
        rho = spearmanr(gains, ratios).statistic if len(ps) > 2 else float("nan")
        print(f"| {name} | {len(ps)} | {statistics.median(ratios):.2f} | {statistics.fmean(gains):+.1f} | {rho:.2f} |")


if __name__ == "__main__":
    main()
