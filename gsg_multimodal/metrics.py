"""Metric rows to ``metrics.jsonl`` and ``metrics.csv`` in the run directory (main process only)."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Any

COLUMNS = [
    "step",
    "epoch",
    "loss",
    "z_std",
    "z_std_ref",
    "lr",
    "momentum",
    "pair_11_21",
    "pair_11_22",
    "pair_12_21",
    "pair_12_22",
    "knn_acc",
    "samples_per_s",
    "time_s",
]


class MetricsLog:
    """Append-only metric files that survive a resume.

    On resume the files are cut back to the checkpoint's step, so the history matches the
    restored state exactly (rows logged after the last checkpoint are dropped, then redone).
    The cut files are written beside the old ones and renamed over them: a kill at any moment
    leaves either the old history or the new one, never half of it.
    """

    def __init__(self, run_dir: str | Path, resume_step: int | None = None) -> None:
        self.jsonl = Path(run_dir) / "metrics.jsonl"
        self.csv = Path(run_dir) / "metrics.csv"
        rows = self.read(run_dir) if resume_step is not None else []
        rows = [r for r in rows if r.get("step", 0) <= (resume_step or 0)]
        table = io.StringIO(newline="")
        writer = csv.DictWriter(table, COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
        _replace(self.csv, table.getvalue())  # the CSV first: the JSONL is the history read back on resume
        _replace(self.jsonl, "".join(json.dumps(r) + "\n" for r in rows))

    @staticmethod
    def read(run_dir: str | Path) -> list[dict[str, Any]]:
        path = Path(run_dir) / "metrics.jsonl"
        if not path.is_file():
            return []
        rows = []
        for line in path.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:  # a line cut short by a crash
                break
        return rows

    def write(self, row: dict[str, Any]) -> None:
        with self.jsonl.open("a") as fh:
            fh.write(json.dumps(row) + "\n")
        with self.csv.open("a", newline="") as fh:
            csv.DictWriter(fh, COLUMNS, extrasaction="ignore").writerow(row)


def _replace(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", newline="") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
