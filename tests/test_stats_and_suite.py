"""Benchmark statistics against hand-computed values, and suite expansion / validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from gsg_multimodal.errors import UserError
from gsg_multimodal.stats import fmt_pct, mean_std, paired_comparison, wilcoxon_p
from gsg_multimodal.suite import Cell, cell_overrides, equal_compute_steps, expand, load_suite, sweep_steps

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
    assert suite.steps == 12 and suite.budgets == ["equal_steps", "equal_compute"]
    cells = expand(suite, {"GunPoint": 16, "ArrowHead": 16})
    per_seed = [c for c in cells if c.dataset == "GunPoint" and c.seed == 0]
    # 9 objectives at equal steps (random at 0 steps); the three 4-view objectives (gsg, gsg-random, byol-gsg)
    # again at half the steps (equal compute); batch 8 for simsiam and gsg (batch 16 is the config's own, so
    # the plain cell); no-predictor x2.
    assert len(per_seed) == 9 + 3 + 2 + 2
    assert "equal_compute" in cells[Cell("GunPoint", "gsg", 0, 6)]
    assert "equal_compute" in cells[Cell("GunPoint", "gsg-random", 0, 6)]
    assert cells[Cell("GunPoint", "random", 0, 0)] == {"floor"}
    plain = cells[Cell("GunPoint", "simsiam", 0, 12)]
    assert {"equal_steps", "equal_compute", "batch", "no_predictor", "transfer"} <= plain
    # The batch sweep sees as many samples at every batch size: batch 8 gets twice the steps of batch 16.
    assert "batch" in cells[Cell("GunPoint", "gsg", 0, 24, batch_size=8)]
    assert "no_predictor" in cells[Cell("GunPoint", "gsg", 0, 12, predictor=False)]
    assert len(cells) == 2 * 3 * len(per_seed)
    assert all(c.key.split("/")[2].startswith(f"t{c.steps}-") for c in cells)  # keys name the step budget


def test_equal_compute_gives_four_view_objectives_half_the_steps() -> None:
    from gsg_multimodal.variants import VARIANTS

    for name, variant in VARIANTS.items():
        steps = equal_compute_steps(name, 10)
        assert steps * variant.passes == 10 * 2, name  # the encoder forwards of a 2-view method at 10 steps
    assert equal_compute_steps("gsg-random", 10) == 5 and equal_compute_steps("gsg-hard", 10) == 5
    assert equal_compute_steps("random", 10) == 0
    assert sweep_steps(100, 256, 64) == 400 and sweep_steps(100, 256, 256) == 100 and sweep_steps(100, None, 8) == 100


def test_budgets_select_the_tables_and_random_is_always_the_floor(tmp_path: Path) -> None:
    path = write_suite(
        tmp_path,
        f"seeds: [0, 1, 2, 3, 4]\nsteps: 40\nbudgets: [equal_compute]\n"
        f"objectives: [simsiam, gsg, gsg-random, random]\nno_predictor: []\n"
        f"datasets: {{a: {{config: {ROOT}/configs/acsf1_gsg.yaml, steps: 100}}}}\n",
    )
    suite, _ = load_suite(path)
    cells = expand(suite)
    assert {(c.objective, c.steps) for c in cells} == {("simsiam", 100), ("gsg", 50), ("gsg-random", 50), ("random", 0)}
    assert len(cells) == 4 * 5


def test_cell_overrides_set_the_step_budget_and_scale_the_learning_rate_with_the_batch() -> None:
    out = cell_overrides(Cell("d", "gsg", 2, 6, batch_size=8), base_batch=32, base_lr=0.05)
    gsg = ["objective.method=gsg", "objective.gsg_views=4"]
    assert out == ["seed=2", "train.steps=6", *gsg, "train.batch_size=8", "optim.lr=0.0125"]
    no_pred = cell_overrides(Cell("d", "random", 0, 0, predictor=False), 32, 0.05)
    assert no_pred == ["seed=0", "model.predictor=false"]  # the untrained encoder has no budget


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
        (f"datasets: {{a: {{config: {ROOT}/configs/acsf1_gsg.yaml, steps: 1}}}}\n", "at least 2"),
        (f"datasets: {{a: {{config: {ROOT}/configs/acsf1_gsg.yaml, steps: 3}}}}\n", "use an even number"),
        (
            f"epochs: 4\ndatasets: {{a: {{config: {ROOT}/configs/acsf1_gsg.yaml}}}}\n",
            "'epochs' was replaced by 'steps'",
        ),
        (
            f"datasets: {{a: {{config: {ROOT}/configs/acsf1_gsg.yaml, epochs: 4}}}}\n",
            "'datasets.a.epochs' was replaced",
        ),
        (f"budgets: [equal_time]\ndatasets: {{a: {{config: {ROOT}/configs/acsf1_gsg.yaml}}}}\n", "equal_time"),
        (f"datasets: {{a: {{config: {ROOT}/configs/acsf1_gsg.yaml}}}}\nbudget: 3\n", "budget"),
    ],
)
def test_bad_suites_name_the_problem(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(UserError, match=message):
        load_suite(write_suite(tmp_path, body))


def test_unknown_suite_name_lists_the_choices() -> None:
    with pytest.raises(UserError, match="one of: cpu, cpu-recipes, gpu, gpu-quick, smoke "):
        load_suite("no-such-suite")


def test_a_users_own_suite_is_found_by_name_and_listed_in_the_help(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gsg_multimodal.cli import build_parser

    (tmp_path / "configs").mkdir()
    mine = tmp_path / "configs" / "suite_my_sensors.yaml"
    smoke = (ROOT / "configs" / "suite_smoke.yaml").read_text()
    mine.write_text(smoke.replace("config: configs/", f"config: {ROOT}/configs/"))
    monkeypatch.chdir(tmp_path)
    suite, path = load_suite("my-sensors")
    assert path == mine and suite.datasets.keys() == load_suite("smoke")[0].datasets.keys()
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    suite_help = next(a.help for a in sub.choices["benchmark"]._actions if a.dest == "suite")
    assert "my-sensors, smoke" in suite_help and "cpu-recipes" in suite_help  # the user's and the shipped ones


def test_the_shipped_suites_load_and_every_data_set_config_resolves() -> None:
    from gsg_multimodal.benchmark import Benchmark

    for name in ("smoke", "cpu", "gpu", "gpu-quick", "cpu-recipes"):
        bench = Benchmark(name, "/nonexistent/never-written")
        assert bench.cells and all(job[1] in bench.suite.datasets for job in bench.transfer_jobs())
        for cell in list(bench.cells)[:3]:
            cfg = bench.cell_config(cell)  # every override is a real config key
            assert cfg.train.steps == (cell.steps or None)
        # The evidence suites run five seeds and both controls of the guide.
        if name in ("cpu", "gpu"):
            assert len(bench.suite.seeds) >= 5 and {"gsg-random", "gsg-hard"} <= set(bench.suite.objectives)


def test_the_gpu_quick_suite_is_fashion_mnist_resnet18_at_equal_compute() -> None:
    from gsg_multimodal.benchmark import Benchmark
    from gsg_multimodal.variants import VARIANTS

    bench = Benchmark("gpu-quick", "/nonexistent/never-written")
    assert list(bench.suite.datasets) == ["fashion_mnist"] and bench.suite.seeds == [0, 1, 2]
    runs = {}
    for cell in bench.cells:
        cfg = bench.cell_config(cell)
        assert cfg.encoder.name == "resnet18" and cfg.encoder.stem == "small" and cfg.train.mixed_precision == "bf16"
        runs[cell.objective] = (cell.steps, cfg.objective.method, cfg.train.batch_size)
    assert runs == {
        "simsiam": (400, "simsiam", 256),
        "gsg": (200, "gsg", 256),
        "gsg-random": (200, "gsg-random", 256),
        "random": (0, "gsg", 256),
    }
    # Equal compute: every trained cell encodes 400 x 256 x 2 = 204,800 views (the size estimate in the file).
    for cell in bench.cells:
        if cell.objective != "random":
            assert cell.steps * 256 * VARIANTS[cell.objective].passes == 204_800
    assert len(bench.cells) == 12
