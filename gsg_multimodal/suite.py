"""Benchmark suites: a YAML grid of data sets x objectives x budgets x seeds, expanded into cells.

A suite names data sets (each a run config plus overrides), the objectives to compare, the
seeds and the base budget. ``expand`` turns it into cells; each cell is one pretraining run
(or, for ``random``, none) followed by frozen-encoder evaluation. Cells that come out the
same in several tables (SimSiam at equal epochs is also SimSiam at equal compute) are run
once and carry every table's tag.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .errors import UserError
from .variants import RANDOM, VARIANTS

OBJECTIVES = (*VARIANTS, RANDOM)  # what a suite may name: the variants and the untrained floor


@dataclass
class DatasetSpec:
    config: str  # a run config (YAML), relative to the repository root or absolute
    overrides: list[str] = field(default_factory=list)
    epochs: int | None = None  # this data set's equal-epochs budget; None: the suite's
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
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    epochs: int = 10  # the equal-epochs budget; equal compute gives 4-view objectives half of it
    objectives: list[str] = field(default_factory=lambda: list(OBJECTIVES))
    datasets: dict[str, DatasetSpec] = field(default_factory=dict)
    overrides: list[str] = field(default_factory=list)  # applied to every cell
    # Small-batch sweep: these objectives at these batch sizes (equal epochs, lr scaled linearly).
    batch_sizes: list[int] = field(default_factory=list)
    batch_objectives: list[str] = field(default_factory=lambda: ["simsiam", "gsg"])
    # No-predictor ablation: these objectives with model.predictor=false.
    no_predictor: list[str] = field(default_factory=lambda: ["simsiam", "gsg"])
    transfer: TransferSpec = field(default_factory=TransferSpec)
    embedding_map: str | None = None  # data set whose GSG embeddings get a 2-D map (t-SNE)
    # A hand-written reading of the results (markdown, relative to the repository root), placed
    # after the generated summary; it is dated by its author, the tables by the report.
    commentary: str | None = None

    def epochs_of(self, dataset: str) -> int:
        return self.datasets[dataset].epochs or self.epochs

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
    epochs: int
    batch_size: int | None = None  # None: the data set config's own
    predictor: bool = True

    @property
    def key(self) -> str:
        bs = "cfg" if self.batch_size is None else str(self.batch_size)
        return f"{self.dataset}/{self.objective}/e{self.epochs}-b{bs}-p{int(self.predictor)}/s{self.seed}"


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
    suite = build_dataclass(Suite, raw, "")
    suite.datasets = {name: build_dataclass(DatasetSpec, spec, f"datasets.{name}.") for name, spec in datasets.items()}
    suite.transfer = build_dataclass(TransferSpec, transfer or {}, "transfer.")
    _check(suite, path)
    return suite, path


def resolve_suite_path(path: str | Path) -> Path:
    candidate = Path(path)
    if candidate.is_file():
        return candidate
    root = Path(__file__).resolve().parents[1]
    for folder in (Path.cwd() / "configs", root / "configs"):
        for name in (f"suite_{path}.yaml", f"{path}.yaml"):
            if (folder / name).is_file():
                return folder / name
    raise UserError(f"no suite '{path}'; give a YAML file or a name such as smoke, cpu or gpu (configs/suite_*.yaml)")


def _check(suite: Suite, path: Path) -> None:
    def known(names: list[str], what: str) -> None:
        bad = [n for n in names if n not in OBJECTIVES]
        if bad:
            raise UserError(
                f"suite '{path}': unknown objective(s) {bad} in {what}; choose from {', '.join(OBJECTIVES)}"
            )

    known(suite.objectives, "objectives")
    known(suite.batch_objectives, "batch_objectives")
    known(suite.no_predictor, "no_predictor")
    known(suite.transfer.objectives, "transfer.objectives")
    for name, spec in suite.datasets.items():
        known(spec.objectives or [], f"datasets.{name}.objectives")
        if spec.epochs is not None:
            check_halvable(spec.epochs, f"datasets.{name}.epochs", path)
    if len(suite.seeds) != len(set(suite.seeds)) or not suite.seeds:
        raise UserError(f"suite '{path}': seeds must be distinct and at least one")
    check_halvable(suite.epochs, "epochs", path)
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


def check_halvable(epochs: int, key: str, path: Path) -> None:
    # Equal compute gives 4-view objectives half the epochs; an odd budget would round that down
    # and hand them less compute than the 2-view rows they are compared with.
    if epochs < 2 or epochs % 2:
        raise UserError(
            f"suite '{path}': {key} is {epochs}; use an even number of at least 2 (equal compute halves it)"
        )


def config_path(spec: DatasetSpec, suite_path: Path) -> Path:
    return suite_file(spec.config, suite_path)


def suite_file(name: str, suite_path: Path) -> Path:
    """A file a suite names: absolute, relative to the working directory, or to the repository root."""
    p = Path(name)
    if p.is_absolute() or p.is_file():
        return p
    return suite_path.resolve().parent.parent / p  # suites live in <root>/configs/


def equal_compute_epochs(objective: str, epochs: int) -> int:
    """Epochs that give ``objective`` the encoder forward passes of a 2-view method at ``epochs``."""
    return max(1, epochs * 2 // VARIANTS[objective].passes) if objective in VARIANTS else epochs


def expand(suite: Suite, base_batch: dict[str, int] | None = None) -> dict[Cell, set[str]]:
    """Every cell of the suite with the tables it appears in (``equal_epochs``, ``equal_compute``, ...).

    ``base_batch`` (data set -> its config's batch size) lets a sweep's batch size that equals the
    config's own reuse the plain cell.
    """
    base_batch = base_batch or {}
    cells: dict[Cell, set[str]] = {}

    def add(cell: Cell, tag: str) -> None:
        cells.setdefault(cell, set()).add(tag)

    for ds, spec in suite.datasets.items():
        epochs = suite.epochs_of(ds)
        for seed in suite.seeds:
            for obj in suite.objectives_of(ds):
                add(Cell(ds, obj, seed, epochs), "equal_epochs")
                if obj not in ("supervised", "random"):
                    add(Cell(ds, obj, seed, equal_compute_epochs(obj, epochs)), "equal_compute")
            if spec.ablations:
                for obj in suite.batch_objectives:
                    for bs in suite.batch_sizes:
                        batch = None if bs == base_batch.get(ds) else bs
                        add(Cell(ds, obj, seed, epochs, batch_size=batch), "batch")
                for obj in suite.no_predictor:
                    add(Cell(ds, obj, seed, epochs, predictor=False), "no_predictor")
                    add(Cell(ds, obj, seed, epochs), "no_predictor")  # the with-predictor row beside it
            if ds in suite.transfer.pairs:
                for obj in suite.transfer.objectives:
                    add(Cell(ds, obj, seed, epochs), "transfer")
    return cells


def cell_overrides(cell: Cell, base_batch: int, base_lr: float) -> list[str]:
    """Config overrides that make a data set's config into this cell's run."""
    out = [f"seed={cell.seed}", f"train.epochs={cell.epochs}"]
    if cell.objective != RANDOM:
        out += VARIANTS[cell.objective].overrides
    if cell.batch_size is not None and cell.batch_size != base_batch:
        # The linear scaling rule (lr proportional to batch size) of SimSiam and GSG.
        out += [f"train.batch_size={cell.batch_size}", f"optim.lr={base_lr * cell.batch_size / base_batch:.6g}"]
    if not cell.predictor:
        out.append("model.predictor=false")
    return out
