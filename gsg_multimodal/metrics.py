"""Metric rows to ``metrics.jsonl`` and ``metrics.csv`` in the run directory (main process only)."""

from __future__ import annotations

import csv
import json
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
    """

    def __init__(self, run_dir: str | Path, resume_step: int | None = None) -> None:
        self.jsonl = Path(run_dir) / "metrics.jsonl"
        self.csv = Path(run_dir) / "metrics.csv"
        rows = self.read(run_dir) if resume_step is not None else []
        rows = [r for r in rows if r.get("step", 0) <= (resume_step or 0)]
        self.jsonl.write_text("".join(json.dumps(r) + "\n" for r in rows))
        with self.csv.open("w", newline="") as fh:
            writer = csv.DictWriter(fh, COLUMNS, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)

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
