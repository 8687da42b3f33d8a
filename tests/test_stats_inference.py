"""The benchmark's inference: known answers, scipy cross-checks, and the data set as the unit (no training)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as sps

from gsg_multimodal.stats import (
    compare_units,
    hierarchical_bootstrap_ci,
    holm,
    min_p,
    round_to_resolution,
    sign_flip_p,
    tost,
    unit_differences,
    unit_means,
    wilcoxon_p,
)

from .conftest import ROOT, TINY


def scipy_sign_flip(x: list[float], alternative: str) -> float:
    """scipy's exact paired permutation test (one sample: the signs are flipped) of the sum."""
    res = sps.permutation_test(
        (np.asarray(x),), np.sum, permutation_type="samples", n_resamples=np.inf, alternative=alternative
    )
    return float(res.pvalue)


@pytest.mark.parametrize(
    "x",
    [
        [0.03, -0.01, 0.02, 0.05, 0.004, -0.02, 0.01],
        [0.01, 0.02, 0.03],
        [0.02, 0.0, -0.01, 0.015, 0.0, 0.04],
        [-0.1, -0.2, 0.05, -0.03, -0.07, 0.01, -0.02, -0.04, -0.05],
    ],
)
@pytest.mark.parametrize("alternative", ["two-sided", "greater", "less"])
def test_sign_flip_p_matches_scipys_exact_permutation_test(x: list[float], alternative: str) -> None:
    assert sign_flip_p(x, alternative) == pytest.approx(scipy_sign_flip(x, alternative), abs=1e-12)


def test_the_smallest_reachable_p_is_two_over_two_to_the_n() -> None:
    for n in range(1, 9):
        all_up = [0.01 * (i + 1) for i in range(n)]  # distinct magnitudes: Wilcoxon is exact too
        assert sign_flip_p(all_up) == pytest.approx(min_p(n)) == pytest.approx(2 / 2**n if n > 1 else 1.0)
        assert wilcoxon_p(all_up) == pytest.approx(sps.wilcoxon(all_up, method="exact").pvalue)
        assert wilcoxon_p(all_up) == pytest.approx(min_p(n))
        assert min_p(n, "greater") == pytest.approx(1 / 2**n)
    # 5 data sets, all in GSG's favour, can never reach 0.05 two-sided; 6 can.
    assert min_p(5) > 0.05 > min_p(6)
    assert sign_flip_p([]) == 1.0 and sign_flip_p([0.0, 0.0]) == 1.0 and min_p(0) == 1.0


def test_monte_carlo_beyond_sixteen_units_is_close_to_the_exact_answer() -> None:
    rng = np.random.default_rng(3)
    x = list(rng.normal(0.004, 0.01, size=17))
    exact = scipy_sign_flip(x, "two-sided")
    assert sign_flip_p(x) == pytest.approx(exact, abs=0.01)


def test_tost_known_answers_and_scipy_cross_check() -> None:
    # Six tiny differences: each one-sided test rejects with every sign agreeing: p = 1/64 < 0.05.
    near = tost([0.001, -0.002, 0.0, 0.003, 0.001, -0.001])
    assert near.p_lower == pytest.approx(1 / 64) and near.p_upper == pytest.approx(1 / 64) and near.equivalent
    # A 2-point difference is outside +-1 point: not equivalent.
    far = tost([0.02] * 6)
    assert far.p_upper == 1.0 and not far.equivalent
    # Four units can never show equivalence at 0.05 (1/16 > 0.05).
    assert not tost([0.0] * 4).equivalent and tost([0.0] * 4).p == pytest.approx(1 / 16)
    x = [0.004, -0.006, 0.012, 0.001, -0.003, 0.007, 0.0]
    res = tost(x, margin=0.01)
    shifted_up = scipy_sign_flip([v + 0.01 for v in x], "greater")
    shifted_down = scipy_sign_flip([v - 0.01 for v in x], "less")
    assert res.p_lower == pytest.approx(shifted_up) and res.p_upper == pytest.approx(shifted_down)
    assert res.p == pytest.approx(max(shifted_up, shifted_down))


def test_holm_by_hand() -> None:
    # sorted: 0.005 x 4 = 0.02; 0.01 x 3 = 0.03; 0.03 x 2 = 0.06; 0.04 x 1 = 0.04 -> monotone 0.06
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, None, 0.01]) == [pytest.approx(0.5), None, pytest.approx(0.02)]
    assert holm([0.9, 0.8]) == pytest.approx([1.0, 1.0]) and holm([]) == []  # 0.8 x 2 caps at 1
    assert holm([0.02, 0.03, 0.04]) == pytest.approx([0.06, 0.06, 0.06])  # 0.06, then monotone


def test_rounding_to_the_test_resolution_makes_equal_accuracies_tie() -> None:
    # 37/150 - 37/150 computed from two float paths is not exactly 0; rounded it is.
    a, b = 37 / 150, (0.1 + 0.1468) * (37 / 150) / 0.2468
    assert a - b != 0 and round_to_resolution(a - b, 150) == 0.0
    assert round_to_resolution(38 / 150 - 37 / 150, 150) == pytest.approx(1 / 150)
    assert round_to_resolution(0.30000000000000004 - 0.3, None) == 0.0
    diffs = unit_differences({"d": [(0.5, 0.5 + 1e-13), (0.52, 0.5)], "e": []}, {"d": 50})
    assert diffs == {"d": [0.0, pytest.approx(0.02)]}


def test_the_data_set_is_the_unit_not_the_seed() -> None:
    # One data set with ten seeds all +2 points, two with one seed each of -1 point. Pooled over seeds this
    # looks like 10 wins of 12 (mean +1.5); with the data set as the unit it is 1 up, 2 down, mean 0.
    groups = {"big": [0.02] * 10, "x": [-0.01], "y": [-0.01]}
    assert unit_means(groups) == {"big": 0.02, "x": -0.01, "y": -0.01}
    r = compare_units(groups)
    assert (r.units, r.seeds, r.wins, r.losses, r.ties) == (3, 12, 1, 2, 0)
    assert r.mean_diff == pytest.approx(0.0) and r.p_value == pytest.approx(1.0)
    assert r.min_p == pytest.approx(0.25)
    assert r.verdict() == "cannot be decided (too few data sets)"
    # Seven data sets that each gain 2-4 points: the test can and does decide.
    up = compare_units({f"d{i}": [0.02 + 0.003 * i, 0.025] for i in range(7)})
    assert up.p_value == pytest.approx(2 / 128) and up.verdict() == "better"
    assert up.ci[0] > 0 and up.ci[0] <= up.mean_diff <= up.ci[1]


def test_hierarchical_bootstrap_known_cases() -> None:
    # No variation anywhere: the interval is the point.
    assert hierarchical_bootstrap_ci({"a": [0.01, 0.01], "b": [0.01]}) == pytest.approx((0.01, 0.01))
    # One seed per data set: the two-level bootstrap is the ordinary bootstrap of the mean (scipy's percentile).
    x = np.random.default_rng(0).normal(0.01, 0.02, size=12)
    ours = hierarchical_bootstrap_ci([[v] for v in x], n_boot=20_000, seed=1)
    ref = sps.bootstrap((x,), np.mean, method="percentile", n_resamples=20_000, random_state=2).confidence_interval
    assert ours == pytest.approx((ref.low, ref.high), abs=0.002)
    # Seeds are resampled within data sets: one data set with spread seeds gives a non-degenerate interval.
    lo, hi = hierarchical_bootstrap_ci({"a": [0.0, 0.02, 0.04]}, n_boot=5_000)
    assert lo < 0.02 < hi and lo >= 0.0 and hi <= 0.04


def test_hierarchical_bootstrap_covers_the_true_mean_on_a_constructed_case() -> None:
    """Data set effects ~ N(2 pt, 1 pt), seed noise ~ N(0, 1 pt), 20 data sets x 5 seeds: ~95% coverage."""
    rng = np.random.default_rng(7)
    true_mean, hits, trials = 0.02, 0, 200
    for t in range(trials):
        effects = rng.normal(true_mean, 0.01, size=20)
        groups = [list(e + rng.normal(0, 0.01, size=5)) for e in effects]
        lo, hi = hierarchical_bootstrap_ci(groups, n_boot=1000, seed=t)
        hits += lo <= true_mean <= hi
    assert 0.88 <= hits / trials <= 0.99, hits / trials


# ---------------------------------------------------------------------------- the report on constructed results


def constructed_bench(tmp_path: Path, gains: dict[str, dict[str, float]]) -> object:
    """A suite of three data sets with invented results: accuracy = 0.5 + gain (random: 0.5), n_test = 200."""
    from gsg_multimodal.benchmark import Benchmark

    suite = tmp_path / "configs" / "suite_t.yaml"
    suite.parent.mkdir()
    datasets = {name: {"config": f"{ROOT}/configs/acsf1_gsg.yaml", "overrides": TINY} for name in ("d1", "d2", "d3")}
    suite.write_text(
        json.dumps(
            {
                "seeds": [0, 1, 2, 3, 4],
                "steps": 8,
                "objectives": ["simsiam", "gsg", "gsg-random", "random"],
                "no_predictor": [],
                "datasets": datasets,
            }
        )
    )
    bench = Benchmark(suite, tmp_path / "out")
    fake = {}
    for cell in bench.cells:
        gain = 0.0 if cell.objective == "random" else gains[cell.dataset][cell.objective]
        acc = round((0.5 + gain + 0.005 * (cell.seed % 2)) * 200) / 200
        fake[cell] = {
            "key": cell.key,
            "cell": {**cell.__dict__},
            "tags": sorted(bench.cells[cell]),
            "wall_s": 1.0,
            "batch_size": 8,
            "scores": {"knn": acc, "linear": acc, "svm": acc},
            "macro_f1": {"knn": acc, "linear": acc, "svm": acc},
            "effective_rank": 5.0,
            "rank_ceiling": 32.0,
            "n_train": 40,
            "n_test": 200,
            "code": {"version": "0.1.0", "commit": "abc1234" if cell.dataset != "d3" else "def5678", "dirty": False},
            "steps_done": cell.steps,
            "encoder_forwards": 0,
            "curve": [],
        }
    bench.results = lambda: fake
    return bench


def test_the_report_excludes_data_sets_below_the_floor_and_tests_the_rest(tmp_path: Path) -> None:
    from gsg_multimodal import report_tables as tables

    gains = {
        "d1": {"simsiam": 0.05, "gsg": 0.07, "gsg-random": 0.06},
        "d2": {"simsiam": 0.04, "gsg": 0.05, "gsg-random": 0.05},
        "d3": {"simsiam": -0.02, "gsg": 0.03, "gsg-random": 0.01},  # SimSiam does not beat its untrained encoder
    }
    bench = constructed_bench(tmp_path, gains)
    data = tables.ReportData(bench)
    assert data.n_test("d1") == 200
    r, excluded = data.comparison("gsg", "simsiam", "equal_compute", "linear", ["d1", "d2", "d3"])
    assert list(excluded) == ["d3"] and "SimSiam does not beat its untrained encoder (-2.0 pt)" in excluded["d3"]
    assert r.units == 2 and r.seeds == 10 and r.mean_diff == pytest.approx(0.015) and r.min_p == pytest.approx(0.5)
    guide, none_out = data.comparison("gsg", "gsg-random", "equal_compute", "linear", ["d1", "d2", "d3"])
    assert none_out == {} and guide.units == 3 and guide.per_unit == pytest.approx({"d1": 0.01, "d2": 0.0, "d3": 0.02})
    assert guide.ties == 1 and guide.min_p == pytest.approx(0.5)  # a tied data set cannot help the test

    lines, words = tables.confirmatory(data)
    text = "\n".join(lines)
    assert "| SimSiam+GSG (4 views) vs SimSiam | primary endpoint | equal compute | 2 | d3 | 10 | +1.5 |" in text
    assert words[0].startswith("**Primary endpoint:** SimSiam+GSG (4 views) vs SimSiam, equal compute")
    # Holm over two tests: the smallest p must be below 0.025, which needs 7 data sets all in one direction.
    assert "below 0.025, which an exact test over data sets reaches only with 7 or more" in text
    assert any("d3 (SimSiam does not beat" in w for w in words)
    floor = "\n".join(tables.floor_table(data))
    assert "| SimSiam | equal steps | +5.0 | +4.0 | **-2.0** | 2 of 3 |" in floor  # 2 of 3 sets above the floor
    assert "- SimSiam, equal steps: d3\n" in floor
    header = "\n".join(tables.header(data, "gsg benchmark t", 0.0, "report.csv"))
    assert "**the cells come from 2 code states**" in header and "0.1.0 @ def5678" in header


def test_results_csv_has_one_row_per_cell_and_seed_with_its_code(tmp_path: Path) -> None:
    from gsg_multimodal.report_tables import CSV_COLUMNS, write_results_csv

    gains = {d: {"simsiam": 0.01, "gsg": 0.02, "gsg-random": 0.0} for d in ("d1", "d2", "d3")}
    bench = constructed_bench(tmp_path, gains)
    path = write_results_csv(bench, tmp_path / "report.csv")
    with path.open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(bench.cells) and tuple(rows[0]) == CSV_COLUMNS
    gsg = [r for r in rows if r["objective"] == "gsg" and r["dataset"] == "d1"]
    assert sorted(r["steps"] for r in gsg) == ["4"] * 5 + ["8"] * 5  # equal compute (half) and equal steps
    assert {r["commit"] for r in rows} == {"abc1234", "def5678"} and {r["n_test"] for r in rows} == {"200"}
    assert {r["domain"] for r in rows} == {"timeseries"} and rows[0]["dirty"] == "False"


def test_the_time_left_is_estimated_from_the_same_cell_then_per_step() -> None:
    from gsg_multimodal.report_tables import remaining_time
    from gsg_multimodal.suite import Cell

    done = {
        Cell("a", "gsg", 0, 100): {"wall_s": 50.0},
        Cell("a", "gsg", 1, 100): {"wall_s": 70.0},
        Cell("a", "gsg", 0, 200): {"wall_s": 100.0},
    }
    todo = [
        Cell("a", "gsg", 2, 100),  # same cell: mean of its seeds, 60 s
        Cell("a", "gsg", 2, 400),  # per step over a/gsg: mean(0.5, 0.7, 0.5) x 400 = 226.7 s
        Cell("b", "gsg", 0, 100),  # nothing like it has finished
    ]
    seconds, unknown = remaining_time(todo, done)
    assert seconds == pytest.approx(60.0 + 400 * (0.5 + 0.7 + 0.5) / 3) and unknown == 1
    assert remaining_time([], done) == (0.0, 0)
