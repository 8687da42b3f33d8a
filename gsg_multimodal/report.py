"""The run's short human-readable report, ``report.md``: what ran, how it ended, how it evaluates."""

from __future__ import annotations

import json
from pathlib import Path

from .metrics import MetricsLog


def write_run_report(run_dir: Path) -> None:
    """A short human-readable summary of the run; ``gsg evaluate`` appends its table."""
    import yaml

    cfg = yaml.safe_load((run_dir / "config.yaml").read_text())
    rows = MetricsLog.read(run_dir)
    steps = [r for r in rows if "loss" in r]
    knn = [r for r in rows if "knn_acc" in r]
    obj = cfg["objective"]
    options = ", ".join(f"{k} {v}" for k, v in obj.items() if k != "method")
    lines = [
        f"# Run report: {run_dir.name}",
        "",
        f"- domain: {cfg['domain']}, data: {cfg['data']}",
        f"- encoder: {cfg['encoder']}",
        f"- objective: {obj['method']} (predictor: {cfg['model']['predictor']}; {options})",
        f"- seed: {cfg['seed']}, epochs: {cfg['train']['epochs']}, batch size: {cfg['train']['batch_size']}",
    ]
    if steps:
        last = steps[-1]
        lines.append(
            f"- final step {last['step']}: loss {last['loss']:.4f}, z-std {last['z_std']:.4f} "
            f"(no-collapse reference {last['z_std_ref']:.4f}), wall {last['time_s']:.0f} s"
        )
    if knn:
        lines.append(f"- online kNN accuracy (monitor): {knn[-1]['knn_acc']:.3f} at epoch {knn[-1]['epoch']}")
    for name, title in (
        ("eval.json", "pretrained encoder"),
        ("eval_random.json", "encoder before pretraining"),
        ("eval_floor.json", "hand-crafted floor"),
    ):
        if (run_dir / name).is_file():
            from .probes import format_table

            results = json.loads((run_dir / name).read_text())
            title = results.get("name", title) if name == "eval_floor.json" else title
            if name == "eval_random.json":
                title = f"{title} ({results.get('encoder', 'random init')})"
            lines += ["", f"## Evaluation: {title}", "", format_table({title: results})]
    (run_dir / "report.md").write_text("\n".join(lines) + "\n")
