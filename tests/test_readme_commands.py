"""Every `gsg ...` command shown in README.md and docs/*.md code blocks works as written.

Each one is parsed by the real CLI and its config (with the shown overrides) is validated; run
directories it reads must be ones an earlier documented command makes. The README's own workflow
is then run for real, in a scratch folder, with tiny budgets appended as overrides (they go last, so
they win). Commands that are whole trainings of many runs are checked at parse level only, each
with its reason in ``PARSE_ONLY``. The README's test command is what `.ci/run` runs, word for word.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from gsg_multimodal.cli import main, parse_args
from gsg_multimodal.runtime import reset_accelerate

from .conftest import ROOT, TINY

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SUBCOMMANDS = ("pretrain", "evaluate", "compare", "domains", "views", "benchmark", "export", "embed")
# ItalyPowerDemand: univariate like ACSF1 (so the documented transfer to GunPoint fits), 67 short train series.
TINY_TS = [*TINY, "data.name=ItalyPowerDemand", "train.steps=2", "monitor.knn_every=0"]
TINY_EVAL = ["eval.cv_folds=2", "eval.svm_c=[1.0]", "eval.logreg_c=[1.0]", "eval.knn_k=[5]"]
TINY_IMAGES = ["data.max_train=64", "data.max_test=64"]
TINY_DRUMS = ["data.limit=32", "data.max_seconds=0.5", "eval.cv_folds=2"]


def documented_commands() -> list[tuple[str, list[str]]]:
    """``(where, argv after 'gsg')`` for each gsg invocation in a fenced code block, in document order."""
    found = []
    for doc in DOCS:
        text = doc.read_text()
        for block in re.findall(r"```[^\n]*\n(.*?)```", text, re.S):
            block = block.replace("\\\n", " ")  # continued lines
            for line in block.splitlines():
                line = line.split(" #")[0].strip()  # comments
                for part in re.split(r"\s*(?:&&|;)\s*", line):
                    if not re.search(r"\bgsg(_multimodal)?\b", part):
                        continue
                    part = re.sub(r"\bseed=\$?S\b", "seed=0", part)  # docs/images.md: seed=S for S in 0 1 2
                    try:
                        words = shlex.split(part)
                    except ValueError:  # Python in a code block, not a shell line
                        continue
                    while words and re.fullmatch(r"[A-Z_]+=\S*", words[0]):  # OMP_NUM_THREADS=1 gsg ...
                        words = words[1:]
                    if "-m" in words and "gsg_multimodal" in words:  # accelerate launch / torchrun -m gsg_multimodal
                        words = ["gsg", *words[words.index("gsg_multimodal") + 1 :]]
                    if len(words) >= 2 and words[0] == "gsg" and words[1] in SUBCOMMANDS:
                        found.append((f"{doc.name}: {part}", words[1:]))
    return found


COMMANDS = documented_commands()

# Parse-level only, and why (everything else is also run for real in the workflow test below).
PARSE_ONLY = {
    "benchmark": "a suite of dozens of trainings; `gsg benchmark smoke` runs end to end in tests/test_benchmark.py",
    "compare --variants": "one training per variant; the default `gsg compare` is run for real below",
    "launcher": "several processes; multi-process runs are tested in tests/test_reliability.py",
    "other data": "documented measurements on other domains' full data sets; their configs are validated here",
}


def test_the_docs_show_commands_and_the_extractor_finds_them() -> None:
    assert len(COMMANDS) >= 20
    shown = {" ".join(argv) for _, argv in COMMANDS}
    assert "pretrain configs/acsf1_gsg.yaml --resume" in shown
    assert "pretrain configs/acsf1_gsg.yaml train.cpu=true" in shown  # from the torchrun line


@pytest.mark.parametrize(("where", "argv"), COMMANDS, ids=[" ".join(a)[:60] for _, a in COMMANDS])
def test_every_documented_command_parses_and_its_config_is_valid(where: str, argv: list[str]) -> None:
    from gsg_multimodal.config import load_config
    from gsg_multimodal.suite import load_suite, resolve_suite_path
    from gsg_multimodal.variants import VARIANTS

    args = parse_args(argv)
    if getattr(args, "config", None):
        cfg = load_config(ROOT / args.config, args.overrides)
        assert cfg.domain, where
    if args.command == "compare":
        assert set(args.variants.split(",")) <= set(VARIANTS), where
    if args.command == "benchmark":
        load_suite(resolve_suite_path(args.suite))  # a bare name, as the CLI resolves it
    if args.command in ("evaluate", "export", "embed"):
        made = {_output_dir(a) for _, a in COMMANDS if a[0] == "pretrain"} | {"runs/drums/gsg"}
        source = args.run_dir if args.command != "embed" else re.sub(r"/encoder/?$", "", args.source)
        assert source in made, f"{where}: no documented command makes '{source}'"
    if args.command == "embed":
        from gsg_multimodal.embed import data_overrides
        from gsg_multimodal.registry import get_domain

        domain = "audio" if source == "runs/drums/gsg" else _run_config(source).domain
        options = data_overrides(args.overrides)  # data.* options only, as the command checks before reading
        assert set(options) <= set(get_domain(domain).embed_options), f"{where}: not an option of {domain}"
        assert args.out.endswith(".parquet") and args.batch_size >= 1, where


def _run_config(output_dir: str) -> Any:
    """The config of the documented pretrain command that makes ``output_dir``."""
    from gsg_multimodal.config import load_config

    for _, argv in COMMANDS:
        if argv[0] == "pretrain" and _output_dir(argv) == output_dir:
            args = parse_args(argv)
            return load_config(ROOT / args.config, args.overrides)
    raise AssertionError(f"no documented command makes '{output_dir}'")


def _output_dir(argv: list[str]) -> str:
    from gsg_multimodal.config import load_config

    args = parse_args(argv)
    return load_config(ROOT / args.config, args.overrides).output_dir


def _run(argv: list[str], *extra: str) -> None:
    assert main([*argv, *extra]) == 0, " ".join(argv)
    reset_accelerate()


@pytest.mark.slow
def test_the_readme_workflow_runs_with_tiny_budgets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from gsg_domains.audio.data import DRUMKITS_DIR
    from gsg_domains.images.data import FASHION_MNIST_DIR

    (tmp_path / "configs").symlink_to(ROOT / "configs")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PYTHONPATH", str(ROOT))  # `gsg compare` starts `python -m gsg_multimodal` per variant
    readme = [(where, argv) for where, argv in COMMANDS if where.startswith("README.md")]
    ran, skipped = [], []
    for where, argv in readme:
        args = parse_args(argv)
        config = getattr(args, "config", "") or ""
        if "-m gsg_multimodal" in where:
            skipped.append((argv, PARSE_ONLY["launcher"]))
        elif args.command == "benchmark":
            skipped.append((argv, PARSE_ONLY["benchmark"]))
        elif args.command == "compare" and "--variants" in argv:
            skipped.append((argv, PARSE_ONLY["compare --variants"]))
        elif args.command == "compare":
            _run(argv, *TINY_TS, *TINY_EVAL, "--no-floor")
        elif args.command == "pretrain" and "acsf1" in config:
            _run(argv, *TINY_TS)  # --resume of the finished tiny run continues nothing and exports again
        elif args.command == "evaluate" and "acsf1" in args.run_dir:
            _run(argv, *TINY_EVAL, *(["data.limit=60"] if args.overrides else []))  # a transfer: a slice of it
        elif args.command == "export" or args.command == "domains":
            _run(argv)
        elif args.command == "embed" and "acsf1" in args.source:
            import numpy as np

            if not Path(args.data).exists():  # the user's own raw series: a few of any length
                np.save(args.data, np.random.default_rng(0).standard_normal((3, 50)).astype(np.float32))
            _run(argv)
            assert Path(args.out).stat().st_size > 0
        elif args.command == "views" and "fmnist" in config:
            if not FASHION_MNIST_DIR.is_dir():
                skipped.append((argv, "apt-get install dataset-fashion-mnist (the README's test command does)"))
                continue
            _run(argv, *TINY_IMAGES)
            assert Path(args.out).stat().st_size > 0
        elif args.command == "evaluate" and args.floor and "drums" in args.run_dir:
            if not Path(DRUMKITS_DIR).is_dir():
                skipped.append((argv, "apt-get install hydrogen-drumkits (the README's test command does)"))
                continue
            _write_run_config("configs/drums_gsg.yaml", [*TINY_DRUMS, f"output_dir={args.run_dir}"])
            _run(argv)
        else:
            pytest.fail(f"no plan for the README command 'gsg {' '.join(argv)}': run it or say why not")
        ran.append(argv)
    assert (tmp_path / "runs" / "acsf1" / "gsg" / "encoder" / "README.md").is_file()
    assert (tmp_path / "runs" / "x" / "encoder").is_dir()
    assert (tmp_path / "runs" / "compare" / "acsf1_gsg" / "compare.md").is_file()
    assert any(argv[0] == "embed" for argv in ran), "the README shows 'gsg embed'"
    assert len(ran) >= 8, skipped


def _write_run_config(config: str, overrides: list[str]) -> None:
    """The run directory `gsg evaluate --floor` reads: only its resolved config.yaml (no training needed)."""
    import yaml

    from gsg_multimodal.config import load_config, to_dict

    cfg = load_config(config, overrides)
    Path(cfg.output_dir).mkdir(parents=True, exist_ok=True)
    (Path(cfg.output_dir) / "config.yaml").write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))


def readme_test_command() -> str:
    text = (ROOT / "README.md").read_text()
    after = text.split("**Install and run the tests**", 1)[1]
    return re.search(r"```bash\n(.*?)\n```", after, re.S).group(1).strip()


def test_ci_runs_exactly_the_readme_test_command() -> None:
    lines = [ln.strip() for ln in (ROOT / ".ci" / "run").read_text().splitlines()]
    commands = [ln for ln in lines if ln and not ln.startswith("#") and not ln.startswith(("set ", "cd "))]
    assert commands == [readme_test_command()]


def test_the_readme_test_command_sets_up_a_fresh_machine() -> None:
    command = readme_test_command()
    for package in ("dataset-fashion-mnist", "hydrogen-drumkits", "espeak-ng"):  # data the tests read
        assert package in command
    assert "-c constraints.txt" in command  # the exact tested set
    assert command.count("pip install") == command.count("-c constraints.txt")


def test_constraints_pin_every_dependency_exactly() -> None:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"constraints.txt: '{line}' is not an exact pin"
            pins[re.sub(r"[-_.]+", "-", name.lower())] = version
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    deps = project["dependencies"] + [d for extra in project["optional-dependencies"].values() for d in extra]
    for dep in deps:
        name = re.sub(r"[-_.]+", "-", re.split(r"[<>=!~;\[ ]", dep, maxsplit=1)[0].lower())
        assert name in pins, f"{name} has no pin in constraints.txt"
        assert "==" not in dep, f"pyproject.toml pins {dep} exactly; use a range (pins go in constraints.txt)"
    assert "scipy" in pins


def test_gsg_help_lists_the_new_commands() -> None:
    out = subprocess.run([sys.executable, "-m", "gsg_multimodal", "--help"], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0 and "export" in out.stdout and "embed" in out.stdout
