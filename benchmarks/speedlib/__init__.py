"""The pieces of the speed benchmarks, one module per job.

- ``bench_domains``: the domains measured (their real configs and built-in data sets) and the variants' overrides;
- ``bare_loop``: plain PyTorch around the objective API, the trainer's step minus Accelerate;
- ``timing``: samples per second, interleaved repetitions, medians with their range, tables and verdicts;
- ``trainer_run``: the real ``Trainer``, timed between two of its optimizer steps;
- ``memory_runs``: peak memory of one measurement in a fresh child process;
- ``sections``: sections (a)-(d) of ``speed.py`` (trainer overhead, objective cost, pipeline, compile);
- ``external``: section (e) (kNN, CLI start-up) and (f) (lightly), which run other scripts;
- ``profile_step``: where one bare-loop step's time goes.

The scripts in ``benchmarks/`` put their own folder first on ``sys.path`` (Python does so for a script), so
they import these as ``speedlib.<module>``.
"""

import sys
from pathlib import Path

# The repository root, so that a script here imports this checkout's ``gsg_multimodal`` and ``domains``
# even without an install (the lightly venv of ``lightly_compare.py`` has none of its own).
_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(1, _ROOT)
