"""Benchmark suites: a YAML grid of data sets x objectives x budgets x seeds, expanded into cells.

A suite names data sets (each a run config plus overrides), the objectives to compare, the
seeds and the base budget in **optimiser steps** (``steps``; schedules in the configs are
fractions of it). ``expand`` turns it into cells; each cell is one pretraining run (or, for
``random``, none) followed by frozen-encoder evaluation. Cells that come out the same in
several tables (SimSiam at equal steps is also SimSiam at equal compute) are run once and
carry every table's tag. Equal compute gives an objective that encodes ``k`` views per sample
``2/k`` of the steps (``variants.VARIANTS[name].passes``): 4-view objectives get half.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .errors import UserError
from .variants import RANDOM, VARIANTS

OBJECTIVES = (*VARIANTS, RANDOM)  # what a suite may name: the variants and the untrained floor
BUDGET_NAMES = ("equal_steps", "equal_compute")


@dataclass
class DatasetSpec:
    config: str  # a run config (YAML), relative to the repository root or absolute
    overrides: list[str] = field(default_factory=list)
    steps: int | None = None  # this data set's budget in optimiser steps; None: the suite's
    objectives: list[str] | None = None  # None: the suite's
    ablations: bool = True  # also run the small-batch sweep and the no-predictor rows here


@dataclass
class TransferSpec:
    objectives: list[str] = field(default_factory=lambda: ["gsg", "simsiam"])
    # source data set -> data sets its frozen encoder is evaluated on; empty: no transfer rows
    pairs: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class Suite:
    name: str = ""
    description: str = ""
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2, 3, 4])
    steps: int = 200  # the budget in optimiser steps; equal compute gives 4-view objectives half of it
    # Which budget tables to run: equal_steps (every objective gets ``steps``) and/or equal_compute
    # (as many encoder forwards as a 2-view objective at ``steps``). The confirmatory tests use equal_compute.
    budgets: list[str] = field(default_factory=lambda: list(BUDGET_NAMES))
    objectives: list[str] = field(default_factory=lambda: list(OBJECTIVES))
    datasets: dict[str, DatasetSpec] = field(default_factory=dict)
    overrides: list[str] = field(default_factory=list)  # applied to every cell
    # Small-batch sweep: these objectives at these batch sizes (same samples seen: steps scaled by
    # config batch / batch; lr scaled linearly).
    batch_sizes: list[int] = field(default_factory=list)
    batch_objectives: list[str] = field(default_factory=lambda: ["simsiam", "gsg"])
    # No-predictor ablation: these objectives with model.predictor=false.
    no_predictor: list[str] = field(default_factory=lambda: ["simsiam", "gsg"])
    transfer: TransferSpec = field(default_factory=TransferSpec)
    embedding_map: str | None = None  # data set whose GSG embeddings get a 2-D map (t-SNE)
    # A hand-written reading of the results (markdown, relative to the repository root), placed
    # after the generated summary; it is dated by its author, the tables by the report.
    commentary: str | None = None

    def steps_of(self, dataset: str) -> int:
        return self.datasets[dataset].steps or self.steps

    def objectives_of(self, dataset: str) -> list[str]:
        own = self.datasets[dataset].objectives
        return list(self.objectives if own is None else own)

    def ablation_datasets(self) -> list[str]:
        return [name for name, spec in self.datasets.items() if spec.ablations]


@dataclass(frozen=True)
class Cell:
    dataset: str
    objective: str
    seed: int
    steps: int  # the budget in optimiser steps (0 for ``random``, which trains nothing)
    batch_size: int | None = None  # None: the data set config's own
    predictor: bool = True

    @property
    def key(self) -> str:
        bs = "cfg" if self.batch_size is None else str(self.batch_size)
        return f"{self.dataset}/{self.objective}/t{self.steps}-b{bs}-p{int(self.predictor)}/s{self.seed}"


def load_suite(path: str | Path) -> tuple[Suite, Path]:
    """Read and check a suite file; ``path`` may also be a bare name such as ``smoke``."""
    from .config import build_dataclass, read_yaml

    path = resolve_suite_path(path)
    raw = read_yaml(path)
    raw.setdefault("name", path.stem.removeprefix("suite_"))
    datasets = raw.pop("datasets", None) or {}
    if not isinstance(datasets, dict) or not datasets:
        raise UserError(f"suite '{path}' names no data sets; add 'datasets: {{name: {{config: ..., overrides: []}}}}'")
    transfer = raw.pop("transfer", None)
    _refuse_epochs(raw, "", path)
    for name, spec in datasets.items():
        if isinstance(spec, dict):
            _refuse_epochs(spec, f"datasets.{name}.", path)
    suite = build_dataclass(Suite, raw, "")
    suite.datasets = {name: build_dataclass(DatasetSpec, spec, f"datasets.{name}.") for name, spec in datasets.items()}
    suite.transfer = build_dataclass(TransferSpec, transfer or {}, "transfer.")
    _check(suite, path)
    return suite, path


def _refuse_epochs(raw: dict, prefix: str, path: Path) -> None:
    if "epochs" in raw:
        raise UserError(
            f"suite '{path}': '{prefix}epochs' was replaced by '{prefix}steps', the budget in optimiser steps "
            "(epochs x steps per epoch; schedules are fractions of it), e.g. steps: 120"
        )


def _suite_folders() -> tuple[Path, Path]:
    """Where a suite name is looked up: the user's own configs/ first, then the one shipped beside the package."""
    return (Path.cwd() / "configs", Path(__file__).resolve().parents[1] / "configs")


def suite_names() -> list[str]:
    """The names ``gsg benchmark`` accepts: every configs/suite_<name>.yaml (``_`` read as ``-``)."""
    found = [f for folder in _suite_folders() for f in folder.glob("suite_*.yaml")]
    return sorted({f.stem.removeprefix("suite_").replace("_", "-") for f in found})


def resolve_suite_path(path: str | Path) -> Path:
    candidate = Path(path)
    if candidate.is_file():
        return candidate
    stems = dict.fromkeys((str(path), str(path).replace("-", "_")))  # gpu-quick names suite_gpu_quick.yaml
    for folder in _suite_folders():
        for name in [n for stem in stems for n in (f"suite_{stem}.yaml", f"{stem}.yaml")]:
            if (folder / name).is_file():
                return folder / name
    raise UserError(
        f"no suite '{path}'; give a YAML file or one of: {', '.join(suite_names())} (configs/suite_<name>.yaml)"
    )


def _check(suite: Suite, path: Path) -> None:
    def known(names: list[str], what: str) -> None:
        bad = [n for n in names if n not in OBJECTIVES]
        if bad:
            raise UserError(
                f"suite '{path}': unknown objective(s) {bad} in {what}; choose from {', '.join(OBJECTIVES)}"
            )

    bad_budgets = [b for b in suite.budgets if b not in BUDGET_NAMES] or ([] if suite.budgets else ["(none)"])
    if bad_budgets:
        raise UserError(
            f"suite '{path}': budgets {bad_budgets} unknown; choose one or both of {', '.join(BUDGET_NAMES)}"
        )
    known(suite.objectives, "objectives")
    known(suite.batch_objectives, "batch_objectives")
    known(suite.no_predictor, "no_predictor")
    known(suite.transfer.objectives, "transfer.objectives")
    for name, spec in suite.datasets.items():
        known(spec.objectives or [], f"datasets.{name}.objectives")
        if spec.steps is not None:
            check_halvable(spec.steps, f"datasets.{name}.steps", path)
    if len(suite.seeds) != len(set(suite.seeds)) or not suite.seeds:
        raise UserError(f"suite '{path}': seeds must be distinct and at least one")
    check_halvable(suite.steps, "steps", path)
    for source, targets in suite.transfer.pairs.items():
        for name in [source, *targets]:
            if name not in suite.datasets:
                raise UserError(f"suite '{path}': transfer names data set '{name}', which is not under datasets")
    if suite.embedding_map is not None and suite.embedding_map not in suite.datasets:
        raise UserError(f"suite '{path}': embedding_map '{suite.embedding_map}' is not under datasets")
    if suite.commentary is not None and not suite_file(suite.commentary, path).is_file():
        raise UserError(f"suite '{path}': commentary file '{suite.commentary}' does not exist")
    for name, spec in suite.datasets.items():
        if not config_path(spec, path).is_file():
            raise UserError(f"suite '{path}': data set '{name}' points to a missing config '{spec.config}'")


def check_halvable(steps: int, key: str, path: Path) -> None:
    # Equal compute gives 4-view objectives half the steps; an odd budget would round that down
    # and hand them less compute than the 2-view rows they are compared with.
    if steps < 2 or steps % 2:
        raise UserError(f"suite '{path}': {key} is {steps}; use an even number of at least 2 (equal compute halves it)")


def config_path(spec: DatasetSpec, suite_path: Path) -> Path:
    return suite_file(spec.config, suite_path)


def suite_file(name: str, suite_path: Path) -> Path:
    """A file a suite names: absolute, relative to the working directory, or to the repository root."""
    p = Path(name)
    if p.is_absolute() or p.is_file():
        return p
    return suite_path.resolve().parent.parent / p  # suites live in <root>/configs/


def equal_compute_steps(objective: str, steps: int) -> int:
    """Steps that give ``objective`` the encoder forward passes of a 2-view method at ``steps`` steps."""
    if objective == RANDOM:
        return 0
    return max(1, steps * 2 // VARIANTS[objective].passes) if objective in VARIANTS else steps


def budget_steps(objective: str, steps: int, budget: str) -> int:
    """The cell budget of ``objective`` in a table: ``equal_steps`` or ``equal_compute`` (0 for ``random``)."""
    if objective == RANDOM:
        return 0
    return steps if budget == "equal_steps" else equal_compute_steps(objective, steps)


def sweep_steps(steps: int, base_batch: int | None, batch_size: int) -> int:
    """Steps at another batch size that see as many samples as ``steps`` at the config's batch."""
    if not base_batch or batch_size == base_batch:
        return steps
    return max(1, round(steps * base_batch / batch_size))


def expand(suite: Suite, base_batch: dict[str, int] | None = None) -> dict[Cell, set[str]]:
    """Every cell of the suite with the tables it appears in (``equal_steps``, ``equal_compute``, ...).

    ``base_batch`` (data set -> its config's batch size) lets a sweep's batch size that equals the
    config's own reuse the plain cell, and scales the sweep's steps so every batch size sees as
    many samples.
    """
    base_batch = base_batch or {}
    cells: dict[Cell, set[str]] = {}

    def add(cell: Cell, tag: str) -> None:
        cells.setdefault(cell, set()).add(tag)

    for ds, spec in suite.datasets.items():
        steps = suite.steps_of(ds)
        for seed in suite.seeds:
            for obj in suite.objectives_of(ds):
                if obj == RANDOM:  # the floor every comparison is checked against, whatever the budgets
                    add(Cell(ds, obj, seed, 0), "floor")
                    continue
                for budget in suite.budgets:
                    if budget == "equal_compute" and obj == "supervised":
                        continue  # the ceiling is no contestant
                    add(Cell(ds, obj, seed, budget_steps(obj, steps, budget)), budget)
            if spec.ablations:
                for obj in suite.batch_objectives:
                    for bs in suite.batch_sizes:
                        batch = None if bs == base_batch.get(ds) else bs
                        add(Cell(ds, obj, seed, sweep_steps(steps, base_batch.get(ds), bs), batch_size=batch), "batch")
                for obj in suite.no_predictor:
                    add(Cell(ds, obj, seed, steps, predictor=False), "no_predictor")
                    add(Cell(ds, obj, seed, steps), "no_predictor")  # the with-predictor row beside it
            if ds in suite.transfer.pairs:
                for obj in suite.transfer.objectives:
                    add(Cell(ds, obj, seed, budget_steps(obj, steps, "equal_steps")), "transfer")
    return cells


def cell_overrides(cell: Cell, base_batch: int, base_lr: float) -> list[str]:
    """Config overrides that make a data set's config into this cell's run (``train.steps`` is the budget)."""
    out = [f"seed={cell.seed}"]
    if cell.objective != RANDOM:
        out += [f"train.steps={cell.steps}", *VARIANTS[cell.objective].overrides]
    if cell.batch_size is not None and cell.batch_size != base_batch:
        # The linear scaling rule (lr proportional to batch size) of SimSiam and GSG.
        out += [f"train.batch_size={cell.batch_size}", f"optim.lr={base_lr * cell.batch_size / base_batch:.6g}"]
    if not cell.predictor:
        out.append("model.predictor=false")
    return out
