"""benchmarks/ts_table.py, the runner behind the measured tables: row kinds, resume, report and CSV."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from gsg_domains.audio.data import DRUMKITS_DIR

from .conftest import ROOT
from .test_audio_end_to_end import TINY

SCRIPT = ROOT / "benchmarks" / "ts_table.py"


def _run(*args: str) -> str:
    done = subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.mark.slow
@pytest.mark.skipif(not Path(DRUMKITS_DIR).is_dir(), reason="Debian package hydrogen-drumkits is not installed")
def test_untrained_floor_and_trained_rows_then_resume_and_report(tmp_path: Path) -> None:
    table = tmp_path / "table.yaml"
    table.write_text(
        yaml.safe_dump(
            {
                "config": str(ROOT / "configs" / "drums_gsg.yaml"),
                "seeds": [0, 1],
                "overrides": [o for o in TINY if not o.startswith("monitor.")] + ["monitor.knn_every=0"],
                "rows": {"untrained": "random", "MFCC": "floor", "SimSiam": ["objective.method=simsiam"]},
                "datasets": {"drums": {}},
            }
        )
    )
    out = tmp_path / "cells"
    first = _run(
        str(table), "--out", str(out), "--report", str(tmp_path / "report.md"), "--threads", "1", "--seeds", "0"
    )
    assert "0 cells done, 3 to run, 1 at a time, 1 thread(s) each" in first and "FAILED" not in first
    assert not (out / "drums" / "untrained" / "s1").exists()  # --seeds 0: seed 1 waits for a later sitting

    results = {
        row: json.loads((out / "drums" / row / "s0" / "result.json").read_text())
        for row in ("untrained", "MFCC", "SimSiam")
    }
    assert [results[r]["kind"] for r in ("untrained", "MFCC", "SimSiam")] == ["random", "floor", "trained"]
    assert results["SimSiam"]["steps"] > 0 and results["untrained"]["steps"] == results["MFCC"]["steps"] == 0
    assert results["MFCC"]["effective_rank"] is None  # hand-crafted features: no encoder to measure
    for r in results.values():
        assert set(r["scores"]) == {"svm", "linear", "knn"} and all(0.0 <= v <= 1.0 for v in r["scores"].values())
        assert "commit" in r["code"] and "CPU cores" in r["machine"]
    # The floor is the MFCC features' score, not the untrained encoder's.
    floor = json.loads((out / "drums" / "MFCC" / "s0" / "run" / "eval_floor.json").read_text())
    assert results["MFCC"]["scores"]["linear"] == floor["linear"]["accuracy"]

    # resumes: nothing runs again
    assert "3 cells done, 0 to run" in _run(str(table), "--out", str(out), "--seeds", "0")
    report = (tmp_path / "report.md").read_text()
    assert "| drums |" in report and "TS2Vec (published)" not in report  # no published numbers in this table
    rows = list(csv.DictReader((tmp_path / "report.csv").open()))
    assert {r["row"] for r in rows} == {"untrained", "MFCC", "SimSiam"}
    code = results["SimSiam"]["code"]
    commit = code["commit"] + ("+dirty" if code["dirty"] else "") if code["commit"] else "not recorded"
    assert all(r["commit"] == commit and "CPU cores" in r["machine"] for r in rows)
    # The header counts the cells per training commit and machine, whatever commit renders the report.
    assert f"3 of 6 cells finished. Cells per training commit: {commit} (3)." in report


def test_a_data_set_with_its_own_config_names_its_data_there_and_a_changed_config_reruns(tmp_path: Path) -> None:
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        import ts_table
    finally:
        sys.path.pop(0)
    table = {
        "config": "configs/drums_gsg.yaml",
        "seeds": [0],
        "rows": {"untrained": "random", "GSG": ["objective.method=gsg"]},
        "datasets": {"drums": {}, "spoken_words": {"config": "configs/spoken_gsg.yaml"}},
    }
    assert ts_table.dataset_config(table, "drums") == "configs/drums_gsg.yaml"
    assert ts_table.dataset_config(table, "spoken_words") == "configs/spoken_gsg.yaml"
    assert "data.name=drums" in ts_table.cell_overrides(table, "drums", "GSG", 0, tmp_path)
    spoken = ts_table.cell_overrides(table, "spoken_words", "GSG", 0, tmp_path)
    assert not any(o.startswith("data.name=") for o in spoken) and "objective.method=gsg" in spoken

    folder = ts_table.cell_dir(tmp_path, "spoken_words", "GSG", 0)
    folder.mkdir(parents=True)
    overrides = ts_table.cell_overrides(table, "spoken_words", "GSG", 0, folder / "run")
    (folder / "result.json").write_text(json.dumps({"overrides": overrides, "config": "configs/spoken_gsg.yaml"}))
    assert ts_table.is_done(tmp_path, table, ("spoken_words", "GSG", 0))
    table["datasets"]["spoken_words"]["config"] = "configs/spoken_simsiam.yaml"
    assert not ts_table.is_done(tmp_path, table, ("spoken_words", "GSG", 0))

    # Editing the config file itself (same path, same overrides) makes its finished cells stale.
    edited = tmp_path / "drums_copy.yaml"
    edited.write_text((ROOT / "configs" / "drums_gsg.yaml").read_text())
    table["datasets"]["drums"] = {"config": str(edited)}
    folder = ts_table.cell_dir(tmp_path, "drums", "GSG", 0)
    folder.mkdir(parents=True)
    overrides = ts_table.cell_overrides(table, "drums", "GSG", 0, folder / "run")
    digest = ts_table.config_digest(edited, overrides)
    (folder / "result.json").write_text(
        json.dumps({"overrides": overrides, "config": str(edited), "config_digest": digest})
    )
    assert ts_table.is_done(tmp_path, table, ("drums", "GSG", 0))
    edited.write_text(edited.read_text().replace("dropout: 0.3", "dropout: 0.2"))
    assert not ts_table.is_done(tmp_path, table, ("drums", "GSG", 0))
    # Pinning the old value with an override gives the same resolved config: the cell counts as done again.
    table["datasets"]["drums"]["overrides"] = ["encoder.dropout=0.3"]
    assert ts_table.is_done(tmp_path, table, ("drums", "GSG", 0))
    # A pinned value that differs from what the cell ran with does not.
    table["datasets"]["drums"]["overrides"] = ["encoder.dropout=0.1"]
    assert not ts_table.is_done(tmp_path, table, ("drums", "GSG", 0))


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--rows", "SimSiam lr 9", "--rows names SimSiam lr 9, not rows of"),
        ("--datasets", "drums,FashionMNIST", "--datasets names FashionMNIST, not datasets of"),
        ("--threads", "0", "--threads 0: must be at least 1"),
        ("--seeds", "0,7", "--seeds names 7, not seeds of"),
        ("--seeds", "two", "--seeds two: give whole numbers"),
    ],
)
def test_an_unknown_name_or_a_bad_thread_count_is_refused_in_one_line(
    tmp_path: Path, flag: str, value: str, message: str
) -> None:
    table = ROOT / "benchmarks" / ("fmnist_sweep.yaml" if flag == "--rows" else "audio_recipe.yaml")
    done = subprocess.run(
        [sys.executable, str(SCRIPT), str(table), "--out", str(tmp_path), flag, value],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0 and not any(tmp_path.iterdir())
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0]
