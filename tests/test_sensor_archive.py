"""``benchmarks/make_sensor_archive.py``: the documented schema, determinism, labels, resumable atomic shards."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import numpy as np
import pyarrow.parquet as pq
import pytest

from .conftest import ROOT

# 3 channels x 400 steps = 4.8 kB of values per recording; shards of ~5 recordings, row groups of 2.
TINY = ["--channels", "3", "--steps", "400", "--shard-mb", "0.024", "--row-group-mb", "0.01"]


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_sensor_archive", ROOT / "benchmarks" / "make_sensor_archive.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def script() -> ModuleType:
    return load_script()


def make(script: ModuleType, out: Path, *extra: str) -> None:
    assert script.main(["--out", str(out), *TINY, *extra]) == 0


def test_shards_are_parquet_with_the_documented_schema_and_labels_on_the_fraction(
    script: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "archive"
    make(script, out, "--recordings", "23", "--labelled-fraction", "0.2")
    shards = sorted(out.glob("part-*.parquet"))
    assert [p.name for p in shards] == [f"part-{k:05d}.parquet" for k in range(5)]  # 5 + 5 + 5 + 5 + 3
    assert not list(out.glob(".*"))  # no temporary files left
    for shard in shards:
        meta = pq.read_metadata(shard)
        assert meta.schema.to_arrow_schema().remove_metadata().equals(script.SCHEMA)
        assert meta.num_row_groups == -(-meta.num_rows // 2)
    info = json.loads(pq.read_schema(shards[0]).metadata[b"gsg.archive"])
    assert (info["channels"], info["steps"], info["rate_hz"], info["seed"]) == (3, 400, 1000.0, 0)
    assert len(info["channel_names"]) == 3 and info["states"] == list(script.STATES)

    table = pq.read_table(out)  # the folder reads as one data set
    assert table.column("recording").to_pylist() == [f"rec-{i:09d}" for i in range(23)]
    values = np.asarray(table.column("values").to_pylist(), dtype=np.float64)
    assert values.shape == (23, 3, 400) and np.isfinite(values).all()
    assert table.schema.field("values").type.value_type.value_type == "float"  # float32
    labels = table.column("label").to_pylist()
    assert sum(x is not None for x in labels) == 4  # floor(23 x 0.2)
    assert {x for x in labels if x is not None} <= set(script.STATES)
    summary = capsys.readouterr().out
    assert "5 files (5 written, 0 kept)" in summary and "23 recordings of 3 x 400 float32, 4 labelled" in summary


def test_the_same_seed_gives_the_same_archive_another_seed_another(script: ModuleType, tmp_path: Path) -> None:
    for name, seed in (("a", "7"), ("b", "7"), ("c", "8")):
        make(script, tmp_path / name, "--recordings", "12", "--seed", seed)
    a, b, c = (pq.read_table(tmp_path / n) for n in "abc")
    assert a.equals(b)
    assert not a.column("values").equals(c.column("values"))
    # Bit for bit, so a rerun after an interruption writes exactly the shards it missed.
    for shard in (tmp_path / "a").glob("part-*.parquet"):
        assert shard.read_bytes() == (tmp_path / "b" / shard.name).read_bytes()


def test_an_interrupted_generation_is_completed_by_a_rerun(script: ModuleType, tmp_path: Path) -> None:
    out, reference = tmp_path / "archive", tmp_path / "reference"
    make(script, reference, "--recordings", "15")
    make(script, out, "--recordings", "15")
    # What a kill leaves: a temp file of an unfinished shard (never named part-*.parquet), a lost shard;
    # and a shard damaged later (truncated).
    (out / "part-00001.parquet").unlink()
    (out / ".part-00001.parquet.tmp-12345").write_bytes(b"PAR1 half a shard")
    damaged = out / "part-00002.parquet"
    damaged.write_bytes(damaged.read_bytes()[:100])
    untouched = (out / "part-00000.parquet").stat().st_mtime_ns
    make(script, out, "--recordings", "15")
    assert (out / "part-00000.parquet").stat().st_mtime_ns == untouched  # a complete shard is kept
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in reference.iterdir())
    for shard in reference.glob("part-*.parquet"):
        assert (out / shard.name).read_bytes() == shard.read_bytes()
    # Other shape options over the same folder would mix two archives: refused.
    with pytest.raises(SystemExit, match="other options"):
        script.main(["--out", str(out), *TINY, "--recordings", "15", "--seed", "1"])


def test_gb_is_met_in_whole_shards(script: ModuleType, tmp_path: Path) -> None:
    out = tmp_path / "archive"
    make(script, out, "--gb", "0.0001")  # 100 kB
    sizes = [p.stat().st_size for p in out.glob("part-*.parquet")]
    assert len(sizes) > 1 and abs(sum(sizes) - 100_000) < max(sizes)  # shards are alike: within one of the target


def test_machine_states_differ_enough_for_a_probe(script: ModuleType) -> None:
    """Nearest class mean on log band powers of the vibration channels tells the five states apart."""
    machine = script.Machine(8, 4000, 1000.0, 0)
    chosen: dict[int, list[int]] = {s: [] for s in range(len(script.STATES))}
    i = 0
    while min(map(len, chosen.values())) < 20:
        state = machine.state_of(i)
        if len(chosen[state]) < 20:
            chosen[state].append(i)
        i += 1

    def features(x: np.ndarray) -> np.ndarray:
        power = np.abs(np.fft.rfft(x[:6], axis=1)) ** 2
        bands = np.stack([b.mean(1) for b in np.array_split(power, 25, axis=1)], 1)
        return np.append(np.log(bands).mean(0), x[7].mean())  # and the temperature

    feats = {s: np.stack([features(machine.recording(j)[0]) for j in idx]) for s, idx in chosen.items()}
    means = np.stack([f[:10].mean(0) for f in feats.values()])
    scale = np.concatenate([f[:10] for f in feats.values()]).std(0) + 1e-9
    hits = [(((f[10:, None] - means[None]) / scale) ** 2).sum(-1).argmin(1) == s for s, f in feats.items()]
    assert np.concatenate(hits).mean() > 0.8  # chance: 0.2


def test_the_time_series_domain_reads_a_shard(script: ModuleType, tmp_path: Path) -> None:
    """The layout is the one ``data.series_column`` already reads: [channels][steps] per row."""
    from gsg_multimodal.config import load_config
    from gsg_multimodal.runtime import load_bound

    out = tmp_path / "archive"
    make(script, out, "--recordings", "5")
    overrides = ["data.name=null", f"data.path={out / 'part-00000.parquet'}", "data.series_column=values",
                 "data.label_column=null"]  # fmt: skip
    domain, data = load_bound(load_config(str(ROOT / "configs" / "acsf1_gsg.yaml"), overrides))
    assert len(data.pretrain) == 5
    assert np.asarray(data.pretrain[0]["series"]).shape == (3, 400)
