"""Benchmark statistics against hand-computed values, and suite expansion / validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from gsg_multimodal.errors import UserError
from gsg_multimodal.stats import fmt_pct, mean_std, paired_comparison, wilcoxon_p
from gsg_multimodal.suite import Cell, cell_overrides, equal_compute_epochs, expand, load_suite

from .conftest import ROOT


def test_mean_std_is_the_sample_std() -> None:
    # values 0.7, 0.8, 0.9: mean 0.8, squared deviations 0.01 + 0 + 0.01 over n-1 = 2 -> std 0.1
    mean, std = mean_std([0.7, 0.8, 0.9])
    assert mean == pytest.approx(0.8) and std == pytest.approx(0.1)
    assert mean_std([0.5]) == (0.5, 0.0)
    assert fmt_pct([0.7, 0.8, 0.9]) == "80.0 +- 10.0" and fmt_pct([0.5]) == "50.0" and fmt_pct([]) == "n/a"


def test_wilcoxon_exact_p_values_by_hand() -> None:
    # 3 positive differences: of the 2^3 equally likely sign patterns under H0, only "all +" and
    # "all -" are as extreme, so the two-sided p is 2/8.
    assert wilcoxon_p([0.01, 0.02, 0.03]) == pytest.approx(0.25)
    # 6 positive differences: 2/64
    assert wilcoxon_p([0.01, 0.02, 0.03, 0.04, 0.05, 0.06]) == pytest.approx(2 / 64)
    # ranks 1..4 with signs +,+,+,- : W- = 4 -> P(W <= 4 or W >= 6) over the 16 patterns.
    # Sums of a subset of {1,2,3,4} <= 4: {}, {1}, {2}, {3}, {4}, {1,2}, {1,3} = 7 patterns; by symmetry
    # >= 6 is also 7; two-sided p = 14/16.
    assert wilcoxon_p([0.01, 0.02, 0.03, -0.04]) == pytest.approx(14 / 16)
    assert wilcoxon_p([0.0, 0.0]) == 1.0 and wilcoxon_p([]) is None


def test_paired_comparison_counts_and_verdicts() -> None:
    better = paired_comparison([0.9] * 6, [0.8, 0.81, 0.82, 0.83, 0.84, 0.85])
    assert (better.wins, better.losses, better.ties) == (6, 0, 0)
    assert better.mean_diff == pytest.approx(0.075) and better.verdict == "better"
    worse = paired_comparison([0.8, 0.81, 0.82, 0.83, 0.84, 0.85], [0.9] * 6)
    assert worse.verdict == "worse" and worse.losses == 6
    # 3 pairs can never reach p < 0.05, however large the gain: the verdict must say so.
    few = paired_comparison([0.9, 0.9, 0.9], [0.5, 0.6, 0.7])
    assert few.p_value == pytest.approx(0.25) and few.verdict == "no detectable difference"
    mixed = paired_comparison([0.8, 0.7, 0.75], [0.7, 0.8, 0.75])
    assert (mixed.wins, mixed.losses, mixed.ties) == (1, 1, 1) and mixed.verdict == "no detectable difference"
    with pytest.raises(ValueError):
        paired_comparison([0.1], [0.1, 0.2])


def test_smoke_suite_expands_into_tagged_cells() -> None:
    suite, _ = load_suite("smoke")
    cells = expand(suite, {"GunPoint": 16, "ArrowHead": 16})
    per_seed = [c for c in cells if c.dataset == "GunPoint" and c.seed == 0]
    # 8 objectives at equal epochs; the two 4-view objectives again at half the epochs (equal compute);
    # batch 8 for simsiam and gsg (batch 16 is the config's own, so the plain cell); no-predictor x2.
    assert len(per_seed) == 8 + 2 + 2 + 2
    assert Cell("GunPoint", "gsg", 0, 2) in cells and "equal_compute" in cells[Cell("GunPoint", "gsg", 0, 2)]
    plain = cells[Cell("GunPoint", "simsiam", 0, 4)]
    assert {"equal_epochs", "equal_compute", "batch", "no_predictor", "transfer"} <= plain
    assert "batch" in cells[Cell("GunPoint", "gsg", 0, 4, batch_size=8)]
    assert "no_predictor" in cells[Cell("GunPoint", "gsg", 0, 4, predictor=False)]
    assert len(cells) == 2 * 3 * len(per_seed)


def test_equal_compute_gives_four_view_objectives_half_the_epochs() -> None:
    assert equal_compute_epochs("gsg", 10) == 5 and equal_compute_epochs("byol-gsg", 10) == 5
    assert equal_compute_epochs("simsiam", 10) == 10 and equal_compute_epochs("gsg2", 10) == 10
    assert equal_compute_epochs("random", 10) == 10


def test_cell_overrides_scale_the_learning_rate_with_the_batch() -> None:
    out = cell_overrides(Cell("d", "gsg", 2, 6, batch_size=8), base_batch=32, base_lr=0.05)
    gsg = ["objective.method=gsg", "objective.gsg_views=4"]
    assert out == ["seed=2", "train.epochs=6", *gsg, "train.batch_size=8", "optim.lr=0.0125"]
    no_pred = cell_overrides(Cell("d", "random", 0, 6, predictor=False), 32, 0.05)
    assert no_pred == ["seed=0", "train.epochs=6", "model.predictor=false"]


def write_suite(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "configs" / "suite_x.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(body)
    return path


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("seeds: [0]\n", "names no data sets"),
        (f"objectives: [simsiam, moco]\ndatasets: {{a: {{config: {ROOT}/configs/acsf1_gsg.yaml}}}}\n", "moco"),
        (f"seeds: [1, 1]\ndatasets: {{a: {{config: {ROOT}/configs/acsf1_gsg.yaml}}}}\n", "distinct"),
        ("datasets: {a: {config: configs/nowhere.yaml}}\n", "missing config"),
        (
            f"datasets: {{a: {{config: {ROOT}/configs/acsf1_gsg.yaml}}}}\ntransfer: {{pairs: {{a: [b]}}}}\n",
            "'b', which is not under datasets",
        ),
        (f"datasets: {{a: {{config: {ROOT}/configs/acsf1_gsg.yaml, epochs: 1}}}}\n", "at least 2"),
        (f"datasets: {{a: {{config: {ROOT}/configs/acsf1_gsg.yaml, epochs: 3}}}}\n", "use an even number"),
        (f"datasets: {{a: {{config: {ROOT}/configs/acsf1_gsg.yaml}}}}\nbudget: 3\n", "budget"),
    ],
)
def test_bad_suites_name_the_problem(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(UserError, match=message):
        load_suite(write_suite(tmp_path, body))


def test_unknown_suite_name_lists_the_choices() -> None:
    with pytest.raises(UserError, match="smoke, cpu or gpu"):
        load_suite("no-such-suite")


def test_the_shipped_suites_load_and_every_data_set_config_resolves() -> None:
    from gsg_multimodal.benchmark import Benchmark

    for name in ("smoke", "cpu", "gpu"):
        bench = Benchmark(name, "/nonexistent/never-written")
        assert bench.cells and all(job[1] in bench.suite.datasets for job in bench.transfer_jobs())
        for cell in list(bench.cells)[:3]:
            bench.cell_config(cell)  # every override is a real config key
