"""``gsg benchmark``: the smoke suite end to end (report structure, real numbers, caching), and transfer."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from unittest import mock

import pytest

from gsg_multimodal.benchmark import Benchmark
from gsg_multimodal.cli import main
from gsg_multimodal.errors import UserError

from .conftest import ROOT, TINY

SECTIONS = [
    "## In plain words",
    "## Does each recipe beat its untrained encoder?",
    "## Confirmatory tests (pre-declared)",
    "## Exploratory comparisons",
    "## GunPoint (timeseries): equal steps",
    "## GunPoint (timeseries): equal compute",
    "## ArrowHead (timeseries): equal steps",
    "## Small batches",
    "## Without a predictor",
    "## Which GSG pairing is chosen",
    "## Transfer",
    "## Embedding map",
]
FIGURES = ["accuracy_vs_batch.png", "z_std.png", "pairings.png", "embedding_tsne.png"]


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("smoke")
    assert main(["benchmark", "smoke", "--out", str(out)]) == 0
    return out, (out / "report.md").read_text()


def rows_of(report: str, heading: str) -> list[list[str]]:
    """The table rows under a section heading, as cells."""
    section = report.split(heading, 1)[1].split("\n## ", 1)[0]
    return [
        [c.strip() for c in line.strip("|").split("|")]
        for line in section.splitlines()
        if line.startswith("| ") and not line.startswith(("| objective", "| comparison", "| data set"))
    ]


@pytest.mark.slow
def test_smoke_report_has_every_section_figure_and_provenance(smoke: tuple[Path, str]) -> None:
    out, report = smoke
    for heading in SECTIONS:
        assert heading in report, heading
    for name in FIGURES:
        png = out / "report_figures" / name
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000, name
        assert f"report_figures/{name}" in report
    assert "- command: `gsg benchmark smoke" in report and "- report written with commit: " in report
    assert "- machine: " in report and "- every cell trained and evaluated with: 0.1.0 @ " in report
    assert "- seeds: [0, 1, 2]" in report and "cells done: 96 of 96" in report
    assert "Incomplete" not in report and "Failed" not in report
    # The plain-words summary: the two confirmatory tests, then one line per exploratory comparison
    # (gsg, gsg2, byol-gsg against their bases; gsg against its two controls; 4-view pairs at both budgets).
    assert report.count("**Primary endpoint:** SimSiam+GSG (4 views) vs SimSiam, equal compute") == 1
    assert report.count("linear probe: **") + report.count("excluded from the test") >= 2
    confirmatory = rows_of(report, "## Confirmatory tests")
    assert [r[1] for r in confirmatory] == ["primary endpoint", "the guide (closest pair vs a random one)"]
    for row in confirmatory:  # two data sets at most: the smallest reachable p is 2/2^2
        assert row[11] in ("0.500", "1.000", "n/a"), row
    # The per-cell, per-seed results beside the report, with the code that produced each cell.
    import csv

    with (out / "report.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 96 and "report.csv" in report
    assert {r["commit"] for r in rows} != {""} and {r["version"] for r in rows} == {"0.1.0"}
    assert {r["n_test"] for r in rows if r["dataset"] == "GunPoint"} == {"150"}
    assert all(0 < float(r["linear"]) <= 1 and float(r["effective_rank"]) >= 1 for r in rows)


@pytest.mark.slow
def test_smoke_numbers_are_real_measurements(smoke: tuple[Path, str]) -> None:
    out, report = smoke
    rows = rows_of(report, "## GunPoint (timeseries): equal steps")
    assert [r[0] for r in rows][:2] == ["SimSiam", "SimSiam+GSG (4 views)"] and len(rows) == 9
    assert {r[1] for r in rows} == {"12", "0"}  # the step budget; 0 for the untrained encoder
    linear = {r[0]: r[3] for r in rows}
    for name, cell in linear.items():
        mean, std = (float(v) for v in re.fullmatch(r"([\d.]+) \+- ([\d.]+)", cell).groups())
        assert 0 < mean <= 100 and std >= 0, (name, cell)
    assert len(set(linear.values())) > 3  # objectives differ: not one constant pasted everywhere
    # Every cached score is the accuracy its run's own evaluation wrote.
    bench = Benchmark("smoke", out)
    results = bench.results()
    assert len(results) == len(bench.cells) == 96
    for cell, result in list(results.items())[:12]:
        eval_name = "eval_random.json" if cell.objective == "random" else "eval.json"
        evaluated = json.loads((bench.cell_dir(cell) / "run" / eval_name).read_text())
        assert result["scores"]["linear"] == evaluated["linear"]["accuracy"]
        assert result["n_test"] == {"GunPoint": 150, "ArrowHead": 175}[cell.dataset]
        assert result["effective_rank"] == evaluated["collapse"]["effective_rank"]
        assert set(result["code"]) == {"version", "commit", "dirty"}
        if cell.objective != "random":
            assert result["steps_done"] == cell.steps and result["curve"]
            assert not (bench.cell_dir(cell) / "run" / "checkpoints").exists()  # removed once evaluated
    # Equal compute: a 4-view run at half the steps encodes as many samples as SimSiam at full steps.
    full = results[next(c for c in results if c.objective == "simsiam" and c.steps == 12 and c.batch_size is None)]
    half = results[next(c for c in results if c.objective == "gsg" and c.steps == 6 and c.seed == 0)]
    assert half["encoder_forwards"] == full["encoder_forwards"] and half["steps_done"] == 6
    transfer = json.loads((out / "transfer" / "GunPoint__ArrowHead" / "gsg" / "s0.json").read_text())
    assert 0 < transfer["linear"]["accuracy"] <= 1 and transfer["encoder_input"] == "series[channels=1]"


@pytest.mark.slow
def test_rerun_skips_finished_cells_and_redoes_only_missing_ones(
    smoke: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    out, _ = smoke
    capsys.readouterr()
    assert main(["benchmark", "smoke", "--out", str(out)]) == 0
    assert "ran 0 cell(s) now, 108 were cached, 0 remain" in capsys.readouterr().out
    bench = Benchmark("smoke", out)
    victim = next(c for c in bench.cells if c.objective == "byol")
    shutil.rmtree(bench.cell_dir(victim))
    assert main(["benchmark", "smoke", "--out", str(out), "--max-cells", "0"]) == 0
    assert "ran 0 cell(s) now, 107 were cached, 1 remain" in capsys.readouterr().out
    assert "Incomplete:** 1 cell(s)" in (out / "report.md").read_text()
    assert main(["benchmark", "smoke", "--out", str(out)]) == 0
    assert "ran 1 cell(s) now, 107 were cached, 0 remain" in capsys.readouterr().out
    assert (bench.cell_dir(victim) / "result.json").is_file()


def test_a_failing_cell_is_recorded_and_the_suite_goes_on(tmp_path: Path) -> None:
    suite = tmp_path / "configs" / "suite_t.yaml"
    suite.parent.mkdir()
    suite.write_text(
        f"seeds: [0]\nsteps: 2\nobjectives: [simsiam, random]\nno_predictor: []\n"
        f"datasets: {{bm: {{config: {ROOT}/configs/acsf1_gsg.yaml, overrides: {json.dumps(TINY)}}}}}\n"
    )
    bench = Benchmark(suite, tmp_path / "out")

    def broken(cell):  # a fault the suite cannot foresee, in the trained cell only
        raise RuntimeError("simulated crash")

    real = bench.run_cell
    bench.run_cell = lambda cell: broken(cell) if cell.objective == "simsiam" else real(cell)
    counts = bench.run()
    assert counts["ran"] == 2
    failed = bench.failures()
    assert list(failed) == [c for c in bench.cells if c.objective == "simsiam"]
    assert "simulated crash" in next(iter(failed.values()))
    assert len(bench.results()) == 1  # the random-init cell finished despite its neighbour


def test_editing_a_data_set_reruns_its_cells_instead_of_reusing_them(tmp_path: Path) -> None:
    suite = tmp_path / "configs" / "suite_t.yaml"
    suite.parent.mkdir()
    body = "seeds: [0]\nsteps: 2\nobjectives: [random]\nno_predictor: []\n"
    body += f"datasets: {{bm: {{config: {ROOT}/configs/acsf1_gsg.yaml, overrides: {json.dumps(TINY)}}}}}\n"
    suite.write_text(body)
    assert Benchmark(suite, tmp_path / "out").run()["ran"] == 1
    assert Benchmark(suite, tmp_path / "out").run()["ran"] == 0
    # Same cell key (objective, seed, steps), another encoder: the cached result must not count.
    suite.write_text(body.replace("encoder.hidden=16", "encoder.hidden=24"))
    bench = Benchmark(suite, tmp_path / "out")
    assert not bench.results()
    assert bench.run()["ran"] == 1 and len(bench.results()) == 1
    (cell,) = bench.cells
    assert "hidden: 24" in (bench.cell_dir(cell) / "run" / "config.yaml").read_text()


@pytest.mark.slow
def test_transfer_across_domains_needs_the_same_encoder_input(tmp_path: Path) -> None:
    """An audio waveform encoder is evaluated on sensor series; a log-mel encoder is refused."""
    from gsg_multimodal.config import load_config
    from gsg_multimodal.evaluate import evaluate_transfer

    from .test_audio_end_to_end import TINY as AUDIO_TINY

    wave = tmp_path / "wave"
    overrides = [
        *AUDIO_TINY,
        "encoder.name=dilated_cnn",
        "encoder.hidden=8",
        "encoder.depth=2",
        "encoder.out_dim=16",
        "data.sample_rate=4000",
        "data.n_mels=32",
        "data.f_max=1900",
        "monitor.knn_every=0",
        f"output_dir={wave}",
    ]
    assert main(["pretrain", str(ROOT / "configs" / "drums_simsiam.yaml"), *overrides]) == 0
    series = load_config(ROOT / "configs" / "acsf1_gsg.yaml", [*TINY, "data.name=GunPoint", f"output_dir={tmp_path}"])
    res = evaluate_transfer(wave, series, tmp_path / "wave_to_gunpoint.json")
    assert res["encoder_input"] == "series[channels=1]" and 0 < res["linear"]["accuracy"] <= 1
    assert json.loads((tmp_path / "wave_to_gunpoint.json").read_text())["target"]["domain"] == "timeseries"

    logmel = tmp_path / "logmel"
    assert main(["pretrain", str(ROOT / "configs" / "drums_simsiam.yaml"), *AUDIO_TINY, f"output_dir={logmel}"]) == 0
    with pytest.raises(UserError, match=r"reads log-mel\[n_mels=64.*gives series\[channels=1\]"):
        evaluate_transfer(logmel, series, tmp_path / "never.json")
    multichannel = load_config(ROOT / "configs" / "acsf1_gsg.yaml", [*TINY, f"output_dir={tmp_path}"])
    with pytest.raises(UserError, match=r"series\[channels=6\]"):
        evaluate_transfer(wave, multichannel, tmp_path / "never.json")
    assert not (tmp_path / "never.json").exists()


def test_a_claimed_cell_is_skipped_and_a_dead_holder_frees_it(tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys

    from gsg_multimodal.benchmark import claimed

    lock = tmp_path / ".locks" / "ds" / "cell.lock"
    with claimed(lock) as first, claimed(lock) as second:
        assert first and not second  # one holder at a time, even within one process
    with claimed(lock) as again:
        assert again  # released on exit
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import fcntl,time; f=open({str(lock)!r},'a'); fcntl.flock(f, fcntl.LOCK_EX); "
            "print('held', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "held"
    with claimed(lock) as mine:
        assert not mine
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    with claimed(lock) as mine:
        assert mine  # the operating system dropped the dead process's lock


def test_workers_share_the_cells_and_run_each_once(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    suite = tmp_path / "configs" / "suite_t.yaml"
    suite.parent.mkdir()
    suite.write_text(
        f"seeds: [0, 1]\nsteps: 2\nobjectives: [simsiam, random]\nno_predictor: []\n"
        f"datasets: {{bm: {{config: {ROOT}/configs/acsf1_gsg.yaml, overrides: {json.dumps(TINY)}}}}}\n"
    )
    out = tmp_path / "out"
    assert main(["benchmark", str(suite), "--out", str(out), "--workers", "2"]) == 0
    printed = capfd.readouterr().out
    ran = re.findall(r"^cell (\S+): ok", printed, flags=re.M)
    bench = Benchmark(suite, out)
    assert sorted(ran) == sorted(c.key for c in bench.cells)  # every cell once, by one of the two workers
    assert "ran 4 cell(s) now, 0 were cached, 0 remain" in printed
    assert len(bench.results()) == 4 and (out / "report.md").is_file()
    assert main(["benchmark", str(suite), "--out", str(out), "--workers", "2"]) == 0
    assert "ran 0 cell(s) now, 4 were cached, 0 remain" in capfd.readouterr().out


def two_set_suite(tmp_path: Path, head: str) -> Path:
    """A suite of ``head`` (seeds, steps, objectives, ...) on two tiny sets: bm (BasicMotions) and gp (GunPoint)."""
    suite = tmp_path / "configs" / "suite_t.yaml"
    suite.parent.mkdir()
    other = [o for o in TINY if not o.startswith("data.name=")] + ["data.name=GunPoint"]
    suite.write_text(
        f"{head}datasets:\n"
        f"  bm: {{config: {ROOT}/configs/acsf1_gsg.yaml, overrides: {json.dumps(TINY)}}}\n"
        f"  gp: {{config: {ROOT}/configs/acsf1_gsg.yaml, overrides: {json.dumps(other)}}}\n"
    )
    return suite


def test_a_suite_run_in_pieces_covers_every_data_set_seed_by_seed(tmp_path: Path) -> None:
    suite = two_set_suite(tmp_path, "seeds: [0, 1]\nsteps: 2\nobjectives: [random]\nno_predictor: []\n")
    bench = Benchmark(suite, tmp_path / "out")
    assert bench.run(max_cells=2)["ran"] == 2
    assert sorted((c.dataset, c.seed) for c in bench.results()) == [("bm", 0), ("gp", 0)]


def test_the_confirmatory_cells_run_first_seed_by_seed(tmp_path: Path) -> None:
    head = "seeds: [0, 1]\nsteps: 4\nobjectives: [byol, simsiam, gsg, gsg-random, random]\nno_predictor: []\n"
    bench = Benchmark(two_set_suite(tmp_path, head), tmp_path / "out")
    order = bench.todo()
    assert sorted(order, key=lambda c: c.key) == sorted(bench.cells, key=lambda c: c.key)
    # Both arms of both confirmatory tests at equal compute (SimSiam 4 steps, 4-view GSG 2) and the floor.
    confirmatory = {(o, t) for o, t in [("simsiam", 4), ("gsg", 2), ("gsg-random", 2), ("random", 0)]}
    head = order[: 2 * 2 * len(confirmatory)]
    assert {(c.objective, c.steps) for c in head} == confirmatory
    assert [c.seed for c in head] == [0] * 8 + [1] * 8 and {c.dataset for c in head[:8]} == {"bm", "gp"}
    rest = order[len(head) :]
    assert not {(c.objective, c.steps) for c in rest} & confirmatory
    assert [c.seed for c in rest] == sorted(c.seed for c in rest)


def test_results_saved_on_one_machine_continue_the_suite_on_another(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    import tarfile

    suite = tmp_path / "configs" / "suite_t.yaml"
    suite.parent.mkdir()
    tiny = [o for o in TINY if not o.startswith("data.name=")]
    suite.write_text(  # univariate sets: an encoder pretrained on one can encode the other
        "name: t\nseeds: [0]\nsteps: 2\nobjectives: [simsiam, random]\nno_predictor: []\nembedding_map: gp\n"
        "transfer: {objectives: [simsiam], pairs: {gp: [ah]}}\ndatasets:\n"
        f"  gp: {{config: {ROOT}/configs/acsf1_gsg.yaml, overrides: {json.dumps([*tiny, 'data.name=GunPoint'])}}}\n"
        f"  ah: {{config: {ROOT}/configs/acsf1_gsg.yaml, overrides: {json.dumps([*tiny, 'data.name=ArrowHead'])}}}\n"
    )
    first, second, archive = tmp_path / "first", tmp_path / "second", tmp_path / "results.tar.gz"
    assert main(["benchmark", str(suite), "--out", str(first), "--save-results", str(archive)]) == 0
    assert "4 finished cell(s) saved" in capfd.readouterr().out
    encoders = tmp_path / "results.encoders.tar.gz"  # the encoders travel beside the results, in a file of their own
    with tarfile.open(archive) as tar, tarfile.open(encoders) as enc:
        names, encoder_names = tar.getnames(), enc.getnames()
    assert "transfer/gp__ah/simsiam/s0.json" in names
    assert not [n for n in names if "/encoder/" in n]
    assert "cells/gp/simsiam/t2-bcfg-p1/s0/run/encoder/model.safetensors" in encoder_names  # the embedding map's run
    assert "cells/ah/simsiam/t2-bcfg-p1/s0/run/encoder/model.safetensors" not in encoder_names  # needed by nothing
    packed, packed_encoders = archive.read_bytes(), encoders.read_bytes()
    assert main(["benchmark", str(suite), "--out", str(first), "--report-only", "--save-results", str(archive)]) == 0
    # Unchanged results, the same bytes: a versioned archive stays put.
    assert archive.read_bytes() == packed and encoders.read_bytes() == packed_encoders

    # Another machine: nothing but the archive. Every cell and the transfer count as done, nothing reruns.
    assert main(["benchmark", str(suite), "--out", str(second), "--load-results", str(archive)]) == 0
    printed = capfd.readouterr().out
    assert "took 4 finished cell(s)" in printed and "ran 0 cell(s) now, 5 were cached, 0 remain" in printed
    assert Benchmark(suite, second).results() == Benchmark(suite, first).results()
    assert "## Embedding map" in (second / "report.md").read_text()

    # A result made here is never replaced by an archived one.
    mine = second / "cells" / "gp" / "simsiam" / "t2-bcfg-p1" / "s0" / "result.json"
    mine.write_text(mine.read_text().replace('"key"', '"local": true, "key"', 1))
    assert main(["benchmark", str(suite), "--out", str(second), "--report-only", "--load-results", str(archive)]) == 0
    assert "took 0 finished cell(s)" in capfd.readouterr().out and '"local": true' in mine.read_text()


def test_a_damaged_or_foreign_results_archive_is_refused_in_one_line(tmp_path: Path) -> None:
    from gsg_multimodal.suite_archive import load_results, save_results

    bench = Benchmark("smoke", tmp_path / "out")
    archive = tmp_path / "results.tar.gz"
    save_results(bench, archive)
    with pytest.raises(UserError, match="holds suite 'smoke', not 'cpu'"):
        load_results(Benchmark("cpu", tmp_path / "cpu"), archive)
    archive.write_bytes(archive.read_bytes()[:20])
    with pytest.raises(UserError, match="damaged") as err:
        load_results(bench, archive)
    assert "\n" not in str(err.value)
    with pytest.raises(UserError, match="does not exist"):
        load_results(bench, tmp_path / "missing.tar.gz")


def test_results_whose_encoders_file_is_missing_are_refused_in_one_line(tmp_path: Path) -> None:
    from gsg_multimodal.suite_archive import encoders_archive, load_results, save_results

    bench = Benchmark("smoke", tmp_path / "out")
    encoder = bench.out / "cells" / "a" / "run" / "encoder"  # a stand-in for the embedding map's run
    encoder.mkdir(parents=True)
    (encoder / "model.safetensors").write_bytes(b"weights")
    with mock.patch("gsg_multimodal.suite_archive.embedding_runs", return_value=[("a", encoder.parent)]):
        save_results(bench, tmp_path / "r.tar.gz")
    companion = encoders_archive(tmp_path / "r.tar.gz")
    assert companion == tmp_path / "r.encoders.tar.gz" and companion.is_file()
    companion.unlink()
    with pytest.raises(UserError, match="r.encoders.tar.gz', which is missing; copy it beside") as err:
        load_results(Benchmark("smoke", tmp_path / "other"), tmp_path / "r.tar.gz")
    assert "\n" not in str(err.value)
    save_results(bench, tmp_path / "r.tar.gz")  # nothing needs an encoder now: no companion, and none is asked for
    assert not companion.exists()
    load_results(Benchmark("smoke", tmp_path / "other"), tmp_path / "r.tar.gz")
