"""The shape of the code: no import circles, a core free of domains, objectives that plug in as one class."""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from tests.conftest import ROOT

# folder -> import name (pyproject's package-dir maps the `domains/` folder to `gsg_domains`)
PACKAGES = {"gsg_multimodal": "gsg_multimodal", "domains": "gsg_domains"}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    parts[0] = PACKAGES[parts[0]]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(path: Path, module: str) -> set[str]:
    """Modules of our packages that ``path`` imports when run: top level and inside functions.

    Imports under ``if TYPE_CHECKING:`` never run, so they cannot close a circle and are skipped.
    ``from pkg import name`` counts as importing ``pkg.name`` when that is a module (see ``import_graph``),
    else ``pkg``.
    """
    is_package = path.name == "__init__.py"
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                for sub in child.orelse:
                    visit(sub)
                continue
            if isinstance(child, ast.Import):
                found.update(a.name for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = module.split(".") if is_package else module.split(".")[:-1]
                    base = base[: len(base) - (child.level - 1)]
                    target = ".".join(base + ([child.module] if child.module else []))
                else:
                    target = child.module or ""
                found.update(f"{target}.{a.name}" for a in child.names)
                found.add(f"{target}.*")  # the package itself, unless every name is a submodule
            visit(child)

    visit(ast.parse(path.read_text()))
    return found


def import_graph() -> dict[str, set[str]]:
    files = [p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")]
    modules = {_module_name(p): p for p in files}
    graph = {}
    for m, p in modules.items():
        found = _imports(p, m)
        deps = {i for i in found if i in modules and i != m}
        for star in (i for i in found if i.endswith(".*")):
            package = star[:-2]
            names = {i for i in found if i.startswith(package + ".") and i != star and "." not in i[len(package) + 1 :]}
            if package in modules and package != m and not (names and names <= deps):
                deps.add(package)
        graph[m] = deps
    return graph


def test_no_import_circle_in_the_packages() -> None:
    graph = import_graph()
    assert "gsg_multimodal.trainer" in graph and graph["gsg_multimodal.trainer"]  # the walk sees imports
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def dfs(node: str) -> None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle = path[path.index(nxt) :] + [nxt]
                pytest.fail("import circle: " + " -> ".join(cycle))
            if nxt not in state:
                dfs(nxt)
        path.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            dfs(node)


def test_the_walk_finds_a_circle_when_there_is_one(tmp_path: Path) -> None:
    """Positive control for the circle test: two modules importing each other inside functions."""
    (tmp_path / "a.py").write_text("def f():\n    from . import b\n")
    (tmp_path / "b.py").write_text("from .a import f\n")
    assert "pkg.b" in _imports(tmp_path / "a.py", "pkg.a")
    assert "pkg.a.*" in _imports(tmp_path / "b.py", "pkg.b") and "pkg.a.f" in _imports(tmp_path / "b.py", "pkg.b")
    guarded = tmp_path / "c.py"
    guarded.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from . import a\n")
    assert "pkg.a" not in _imports(guarded, "pkg.c")


def test_the_core_never_imports_a_domain() -> None:
    graph = import_graph()
    leaks = {m: sorted(i for i in deps if i.startswith("gsg_domains")) for m, deps in graph.items()}
    assert not {m: d for m, d in leaks.items() if m.startswith("gsg_multimodal") and d}


def test_the_trainer_never_compares_a_method_name() -> None:
    source = (ROOT / "gsg_multimodal" / "trainer.py").read_text()
    assert "method" not in source.replace("objective.method", "")


def test_the_variant_table_agrees_with_the_objectives_and_the_cli() -> None:
    from gsg_multimodal.cli import VARIANT_NAMES
    from gsg_multimodal.config import load_config
    from gsg_multimodal.objectives import build_objective
    from gsg_multimodal.runtime import load_bound
    from gsg_multimodal.variants import VARIANTS

    assert VARIANT_NAMES.split(", ") == list(VARIANTS)
    config = str(ROOT / "configs" / "acsf1_gsg.yaml")
    for name, variant in VARIANTS.items():
        cfg = load_config(config, [*variant.overrides, "data.name=BasicMotions"])
        _, data = load_bound(cfg)
        assert build_objective(cfg, data).n_views == variant.passes, name


@pytest.mark.slow
def test_a_new_objective_is_one_class_and_one_registry_entry(tmp_path: Path) -> None:
    from gsg_multimodal.cli import main
    from gsg_multimodal.objectives import Objective, StepOutput, objective_names, register_objective

    @register_objective("toy-centroid")
    class ToyCentroid(Objective):
        """Each of three views' projections regresses onto their mean (stop-gradient); its own head and metric."""

        n_views = 3

        @property
        def watched_dim(self) -> int:
            return 16

        def build(self, encoder: nn.Module) -> nn.Module:
            network = nn.Module()
            network.encoder = encoder
            network.head = nn.Linear(encoder.out_dim, 16)
            return network

        def compute(self, network: nn.Module, views: Any, batch: Any, generator: Any, autocast: Any) -> StepOutput:
            z = [network.head(network.encoder(v)) for v in views]
            centre = torch.stack(z).mean(0).detach()
            loss = sum(((zi - centre) ** 2).sum(1).mean() for zi in z) / len(z)
            return StepOutput(loss, z[0].detach())

        def step_metrics(self, step: int, total_steps: int) -> dict[str, float]:
            return {"toy_metric": float(step)}

    try:
        assert "toy-centroid" in objective_names()
        config = tmp_path / "toy.yaml"
        config.write_text(
            json.dumps(
                {
                    "domain": "tests.toy_domain:DigitsDomain",
                    "output_dir": str(tmp_path / "run"),
                    "objective": {"method": "toy-centroid"},
                    "train": {"epochs": 2, "batch_size": 32, "log_every": 1, "trackers": ["none"], "cpu": True},
                }
            )
        )
        assert main(["pretrain", str(config), "train.progress_bar=false", "monitor.knn_every=0"]) == 0
        rows = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
        assert rows[-1]["toy_metric"] == rows[-1]["step"] and rows[-1]["loss"] >= 0
        assert (tmp_path / "run" / "encoder" / "model.safetensors").is_file()
    finally:
        from gsg_multimodal.objectives import base

        base._REGISTRY.pop("toy-centroid", None)


def test_every_package_folder_is_installed_under_a_project_import_name(tmp_path: Path) -> None:
    """pyproject lists packages by hand (the folder `domains/` is mapped to `gsg_domains`): none may be missing,
    and no generic top-level name `domains` may be importable from outside the checkout."""
    import subprocess
    import sys
    import tomllib

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    folders = {_module_name(p) for pkg in PACKAGES for p in (ROOT / pkg).rglob("__init__.py")}
    assert folders == listed
    code = (
        "import importlib.util, sys\n"
        "import gsg_domains.timeseries\n"
        "sys.exit(importlib.util.find_spec('domains') is not None)\n"
    )
    assert subprocess.run([sys.executable, "-c", code], cwd=tmp_path).returncode == 0
