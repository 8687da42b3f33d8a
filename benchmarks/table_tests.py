"""Data-set-level tests between rows of a table runner CSV, Holm-corrected as one family.

    python benchmarks/table_tests.py docs/data/ts_table_5seeds.csv --probe svm \\
        "GSG instance-untrained" "GSG instance-SimSiam" "GSG instance-BYOL" "GSG instance-TS2Vec objective"

Each comparison ``A-B`` pairs the seeds of A and B on every data set where both ran, takes the per-seed
differences A - B, and reduces each data set to the mean of them: seeds of one data set share its data
and test split, so the data set is the unit (``gsg_multimodal.stats``, the same tests as the benchmark
report). Per comparison: wins / ties / losses over data sets, the mean difference with a 95%
hierarchical-bootstrap interval, the exact sign-flip p and the smallest p it could reach with that many
data sets, Holm's adjustment over the comparisons given, and a TOST equivalence test against
``--margin`` points (Holm-adjusted too). The family is what you list: name the comparisons before you
look at the table.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

from gsg_multimodal.stats import EQUIVALENCE_MARGIN, UnitComparison, compare_units, holm, unit_differences


def differences(rows: list[dict[str, str]], a: str, b: str, probe: str) -> dict[str, list[float]]:
    """Per data set, the differences ``a - b`` of the seeds both rows have (float noise removed: equal scores tie)."""
    scores: dict[tuple[str, str], dict[str, float]] = {}
    for r in rows:
        if r.get(probe):
            scores.setdefault((r["dataset"], r["row"]), {})[r["seed"]] = float(r[probe])
    pairs: dict[str, list[tuple[float, float]]] = {}
    for ds in sorted({ds for ds, _ in scores}):
        sa, sb = scores.get((ds, a), {}), scores.get((ds, b), {})
        pairs[ds] = [(sa[s], sb[s]) for s in sorted(set(sa) & set(sb), key=int)]
    return unit_differences(pairs)


def parse_comparison(text: str, names: set[str]) -> tuple[str, str]:
    """``"A-B"`` -> ``(A, B)``; row names may hold dashes, so the split is the one that names two rows."""
    for i, ch in enumerate(text):
        if ch == "-" and text[:i] in names and text[i + 1 :] in names:
            return text[:i], text[i + 1 :]
    raise SystemExit(f"error: '{text}' is not 'A-B' with A and B rows of the CSV ({', '.join(sorted(names))})")


def render(results: list[tuple[str, UnitComparison]], probe: str) -> str:
    margin = 100 * results[0][1].equivalence.margin
    lines = [
        f"| comparison ({probe}) | data sets | wins / ties / losses | mean difference (points) | 95% CI | p | min p "
        f"| p (Holm) | TOST +-{margin:g} pt, p (Holm) | verdict |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for name, c in results:
        lo, hi = c.ci
        diff = round(100 * c.mean_diff, 9) + 0.0  # a tie prints +0.0, not -0.0
        lines.append(
            f"| {name} | {c.units} | {c.wins} / {c.ties} / {c.losses} | {diff:+.1f} "
            f"| [{100 * lo:+.1f}, {100 * hi:+.1f}] | {c.p_value:.3f} | {c.min_p:.3f} | {c.p_holm:.3f} "
            f"| {c.tost_p_holm:.3f} | {c.verdict()} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("csv", help="a table runner CSV (benchmarks/ts_table.py --report)")
    parser.add_argument("comparisons", nargs="+", help="'A-B' row pairs, the family to correct over")
    parser.add_argument("--probe", default="svm", choices=("svm", "linear", "knn"))
    parser.add_argument("--margin", type=float, default=100 * EQUIVALENCE_MARGIN, help="equivalence margin, points")
    args = parser.parse_args()
    path = Path(args.csv)
    if not path.is_file():
        raise SystemExit(f"error: no CSV at '{path}'; write one with benchmarks/ts_table.py --report")
    rows = list(csv.DictReader(path.open()))
    names = {r["row"] for r in rows}
    results = []
    for text in args.comparisons:
        a, b = parse_comparison(text, names)
        diffs = {ds: d for ds, d in differences(rows, a, b, args.probe).items() if d}
        if not diffs:
            raise SystemExit(f"error: rows '{a}' and '{b}' share no seed of any data set; nothing to compare")
        results.append((f"{a} - {b}", compare_units(diffs, margin=args.margin / 100)))
    for (_, c), p, tp in zip(
        results, holm([c.p_value for _, c in results]), holm([c.equivalence.p for _, c in results]), strict=True
    ):
        c.p_holm, c.tost_p_holm = p, tp
    print(render(results, args.probe))


if __name__ == "__main__":
    main()
