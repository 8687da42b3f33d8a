"""Frozen-feature evaluation: weighted kNN, linear probe and RBF SVM on feature matrices.

Every hyper-parameter (k, C) is chosen by stratified K-fold cross-validation on the labelled
*training* split only; the test split is touched once, to score the refitted probe. The folds
are drawn once per call and shared by the three probes, so their CV scores are comparable and
the whole evaluation is deterministic given ``seed``.

scikit-learn is imported inside the functions that need it: it takes a noticeable time to
import, and the trainer's online kNN monitor (``knn_predict``) does not need it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .config import EvalConfig
from .errors import UserError

CV_SKIPPED = "skipped: a class has fewer than 2 training samples"
DEFAULT_C = 1.0  # used when CV is impossible: sklearn's default and the middle of our default grids
LOGREG_MAX_ITER = 2000  # sklearn's 100 can stop lbfgs early on large C; digits needs ~30 at C in 0.01..100

__all__ = ["CV_SKIPPED", "evaluate_features", "format_table", "knn_cv_accuracy", "knn_predict"]


# ---------------------------------------------------------------- weighted kNN


def _as_float(x: torch.Tensor) -> torch.Tensor:
    # Half precision on CPU has no fast matmul and loses ranking precision; float64 is kept
    # so that callers (and tests) can ask for an exact computation.
    return x if x.dtype in (torch.float32, torch.float64) else x.float()


def _topk_neighbours(
    bank: torch.Tensor, queries: torch.Tensor, k: int, chunk_size: int, exclude_self: bool
) -> Iterator[tuple[int, torch.Tensor, torch.Tensor]]:
    """Yield ``(start, top_sims, top_idx)`` for each chunk of (already normalised) queries.

    Only one ``[chunk, bank]`` similarity block exists at a time (4096 x 60,000 floats is ~1 GB);
    it is written into one reused buffer instead of a fresh allocation per chunk.
    """
    n_bank = bank.shape[0]
    bank_t = bank.T  # a view: BLAS handles the transpose, no copy of the bank
    buf = torch.empty(min(chunk_size, queries.shape[0]), n_bank, dtype=bank.dtype, device=bank.device)
    for start in range(0, queries.shape[0], chunk_size):
        q = queries[start : start + chunk_size]
        sims = torch.mm(q, bank_t, out=buf[: q.shape[0]])
        if exclude_self:
            # Query i of this chunk is bank row start+i: -inf keeps it out of the top k.
            rows = torch.arange(q.shape[0], device=bank.device)
            sims[rows, rows + start] = float("-inf")
        top_sims, top_idx = sims.topk(k, dim=1)
        yield start, top_sims, top_idx


def _vote(top_sims: torch.Tensor, top_labels: torch.Tensor, temperature: float, num_classes: int) -> torch.Tensor:
    """Class with the largest sum of exp(sim / T) over the neighbours (InstDisc / DINO weighting)."""
    # Subtracting each row's largest similarity multiplies all of the row's weights by the same
    # constant, so the argmax is unchanged, but exp() can no longer overflow for small T
    # (exp(1 / 0.01) is already beyond float32).
    weights = ((top_sims - top_sims[:, :1]) / temperature).exp()
    scores = torch.zeros(top_sims.shape[0], num_classes, dtype=weights.dtype, device=weights.device)
    scores.scatter_add_(1, top_labels, weights)
    return scores.argmax(dim=1)


def _check_knn_inputs(
    bank: torch.Tensor, bank_labels: torch.Tensor, queries: torch.Tensor, temperature: float, num_classes: int
) -> None:
    if bank.ndim != 2 or queries.ndim != 2 or bank.shape[1] != queries.shape[1]:
        raise ValueError(f"bank {tuple(bank.shape)} and queries {tuple(queries.shape)} must be [N, D] with the same D")
    if bank_labels.shape != (bank.shape[0],):
        raise ValueError(f"bank_labels has shape {tuple(bank_labels.shape)}, expected ({bank.shape[0]},)")
    if bank.shape[0] == 0:
        raise ValueError("the kNN bank is empty")
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if int(bank_labels.min()) < 0 or int(bank_labels.max()) >= num_classes:
        raise ValueError(
            f"bank_labels must lie in [0, {num_classes}); got [{int(bank_labels.min())}, {int(bank_labels.max())}]"
        )


@torch.no_grad()
def knn_predict(
    bank: torch.Tensor,
    bank_labels: torch.Tensor,
    queries: torch.Tensor,
    k: int,
    temperature: float,
    num_classes: int,
    chunk_size: int = 1024,
    exclude_self: bool = False,
) -> torch.Tensor:
    """Weighted kNN labels for ``queries`` with ``bank`` as the labelled memory.

    Cosine similarity (features are L2-normalised), the ``k`` most similar bank rows vote with
    weight ``exp(sim / temperature)``, the class with the largest total wins (InstDisc, DINO).
    ``k`` is clipped to the bank size. Queries are processed ``chunk_size`` at a time, so memory
    is ``chunk_size x len(bank)`` similarities; the result does not depend on ``chunk_size``.
    ``exclude_self``: bank and queries are the same rows (leave-one-out); each query ignores
    its own row. Computed on ``bank``'s device; returned on ``queries``' device.
    """
    _check_knn_inputs(bank, bank_labels, queries, temperature, num_classes)
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    if exclude_self and bank.shape[0] != queries.shape[0]:
        raise ValueError("exclude_self needs the bank and the queries to be the same rows")
    n_candidates = bank.shape[0] - 1 if exclude_self else bank.shape[0]
    if n_candidates < 1:
        raise ValueError("exclude_self with a bank of one row leaves no neighbour")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    k = min(k, n_candidates)

    bank_n = F.normalize(_as_float(bank), dim=1)
    queries_n = F.normalize(_as_float(queries).to(device=bank.device, dtype=bank_n.dtype), dim=1)
    labels = bank_labels.to(device=bank.device, dtype=torch.long)
    pred = torch.empty(queries.shape[0], dtype=torch.long, device=bank.device)
    for start, top_sims, top_idx in _topk_neighbours(bank_n, queries_n, k, chunk_size, exclude_self):
        pred[start : start + top_sims.shape[0]] = _vote(top_sims, labels[top_idx], temperature, num_classes)
    return pred.to(queries.device)


@torch.no_grad()
def knn_cv_accuracy(
    features: torch.Tensor,
    labels: torch.Tensor,
    ks: Sequence[int],
    temperature: float,
    num_classes: int,
    splits: Iterable[tuple[np.ndarray, np.ndarray]],
    chunk_size: int = 1024,
) -> dict[int, float]:
    """Mean cross-validated accuracy of weighted kNN for each ``k`` in ``ks``.

    ``splits`` yields ``(bank_rows, held_out_rows)`` index arrays (e.g. ``StratifiedKFold.split``)
    into the *training* features. The neighbours of each fold are searched once, for the largest
    k; every smaller k reuses the first k of them (``topk`` returns them sorted), so the grid costs
    one similarity pass per fold. Each k is clipped to the fold's bank size, as in ``knn_predict``.
    The mean is over folds, unweighted, like sklearn's ``GridSearchCV``.
    """
    _check_knn_inputs(features, labels, features, temperature, num_classes)
    if not ks or min(ks) < 1:
        raise ValueError(f"ks must be a non-empty list of k >= 1, got {list(ks)}")
    feats = F.normalize(_as_float(features), dim=1)
    labels = labels.to(device=features.device, dtype=torch.long)
    fold_accs: dict[int, list[float]] = {k: [] for k in ks}
    for bank_rows, held_rows in splits:
        bank_rows_t = torch.as_tensor(bank_rows, dtype=torch.long, device=features.device)
        held_rows_t = torch.as_tensor(held_rows, dtype=torch.long, device=features.device)
        bank, bank_labels = feats[bank_rows_t], labels[bank_rows_t]
        held, held_labels = feats[held_rows_t], labels[held_rows_t]
        k_max = min(max(ks), bank.shape[0])
        correct = dict.fromkeys(ks, 0)
        for start, top_sims, top_idx in _topk_neighbours(bank, held, k_max, chunk_size, exclude_self=False):
            top_labels = bank_labels[top_idx]
            truth = held_labels[start : start + top_sims.shape[0]]
            for k in ks:
                kk = min(k, k_max)
                pred = _vote(top_sims[:, :kk], top_labels[:, :kk], temperature, num_classes)
                correct[k] += int((pred == truth).sum())
        for k in ks:
            fold_accs[k].append(correct[k] / held.shape[0])
    return {k: float(np.mean(accs)) for k, accs in fold_accs.items()}


# ---------------------------------------------------------------- the three probes


def _check_features(x: np.ndarray, y: np.ndarray, split: str) -> tuple[np.ndarray, np.ndarray]:
    x, y = np.asarray(x), np.asarray(y)
    if x.ndim != 2:
        raise UserError(f"{split} features must be a 2-D [samples, dims] array, got shape {x.shape}")
    if y.ndim != 1 or len(y) != len(x):
        raise UserError(f"{split} split has {len(x)} feature rows but labels of shape {y.shape}; they must match")
    if len(x) == 0:
        raise UserError(f"the {split} split is empty; evaluation needs labelled train and test samples")
    if not np.issubdtype(x.dtype, np.number):
        raise UserError(f"{split} features must be numeric, got dtype {x.dtype}")
    finite = np.isfinite(x).all(axis=1)
    if not finite.all():
        raise UserError(
            f"features contain NaN/inf (the encoder diverged?) in {int((~finite).sum())} of {len(x)} "
            f"{split} rows; retrain with a lower optim.lr, optim.grad_clip or train.mixed_precision=no"
        )
    return x, y


def _check_config(cfg: EvalConfig) -> None:
    if cfg.cv_folds < 2:
        raise UserError(f"eval.cv_folds must be at least 2 for cross-validation, got {cfg.cv_folds}")
    for key, grid in (("eval.knn_k", cfg.knn_k), ("eval.logreg_c", cfg.logreg_c), ("eval.svm_c", cfg.svm_c)):
        if not grid or min(grid) <= 0:
            raise UserError(f"{key} must be a non-empty list of positive values, got {list(grid)}")
    if cfg.knn_temperature <= 0:
        raise UserError(f"eval.knn_temperature must be > 0, got {cfg.knn_temperature}")


def _scores(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, f1_score

    # Test labels never seen in training simply count as errors (F1 0 for that class);
    # zero_division=0 keeps sklearn from warning about them.
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, average="macro", zero_division=0)),
    }


def _knn_probe(
    train_x: np.ndarray,
    train_idx: np.ndarray,
    classes: np.ndarray,
    test_x: np.ndarray,
    test_y: np.ndarray,
    cfg: EvalConfig,
    splits: list[tuple[np.ndarray, np.ndarray]] | None,
) -> dict[str, Any]:
    bank = torch.from_numpy(np.ascontiguousarray(train_x, dtype=np.float32))
    bank_labels = torch.from_numpy(train_idx.astype(np.int64))
    grid = list(dict.fromkeys(int(k) for k in cfg.knn_k))  # deduplicated, grid order kept for ties
    params: dict[str, Any]
    if splits is None:
        # No CV possible: the smallest k that fits the bank, else the whole bank.
        feasible = [k for k in grid if k <= len(bank)]
        k = min(feasible) if feasible else len(bank)
        params, cv_acc = {"k": k, "cv": CV_SKIPPED}, None
    else:
        # A k larger than the smallest fold's bank would be scored as a clipped, different k.
        smallest_bank = min(len(tr) for tr, _ in splits)
        candidates = [k for k in grid if k <= smallest_bank] or [smallest_bank]
        cv = knn_cv_accuracy(bank, bank_labels, candidates, cfg.knn_temperature, len(classes), splits)
        k = max(candidates, key=lambda c: cv[c])  # first best in grid order: deterministic ties
        params, cv_acc = {"k": k}, cv[k]
    queries = torch.from_numpy(np.ascontiguousarray(test_x, dtype=np.float32))
    pred = knn_predict(bank, bank_labels, queries, k, cfg.knn_temperature, len(classes))
    return {**_scores(test_y, classes[pred.numpy()]), "params": params, "cv_accuracy": cv_acc}


def _grid_probe(
    estimator: Any,
    grid: Sequence[float],
    train_x: np.ndarray,
    train_y: np.ndarray,
    test_x: np.ndarray,
    test_y: np.ndarray,
    splits: list[tuple[np.ndarray, np.ndarray]] | None,
) -> dict[str, Any]:
    """Choose C by GridSearchCV on the train split, refit on all of it, score on test."""
    from sklearn.base import clone
    from sklearn.model_selection import GridSearchCV
    from threadpoolctl import threadpool_limits  # a dependency of scikit-learn

    # Both estimators expose C under this name (a Pipeline's last step is addressed by its name).
    c_param = "clf__C" if hasattr(estimator, "steps") else "C"
    # One BLAS/OpenMP thread: lbfgs does many small matrix products, and a multi-threaded BLAS
    # spinning against any other busy process made a digits-sized logistic regression 50x slower
    # (4 s instead of 0.07 s on a 2-core machine). libsvm is single-threaded anyway. Together with
    # n_jobs=1 this keeps the run time predictable.
    with threadpool_limits(limits=1):
        if splits is None:
            model = clone(estimator).set_params(**{c_param: DEFAULT_C}).fit(train_x, train_y)
            params, cv_acc = {"C": DEFAULT_C, "cv": CV_SKIPPED}, None
        else:
            grid_values = {c_param: [float(c) for c in grid]}
            search = GridSearchCV(
                estimator, grid_values, cv=splits, scoring="accuracy", n_jobs=1, refit=True, error_score="raise"
            )
            search.fit(train_x, train_y)
            model = search.best_estimator_
            params, cv_acc = {"C": float(search.best_params_[c_param])}, float(search.best_score_)
        pred = model.predict(test_x)
    return {**_scores(test_y, pred), "params": params, "cv_accuracy": cv_acc}


def _stratified_subset(x: np.ndarray, y: np.ndarray, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` rows of ``(x, y)`` in the class proportions of ``y`` and original order; a function of ``seed``."""
    from sklearn.model_selection import train_test_split

    _, counts = np.unique(y, return_counts=True)
    stratify = y if len(counts) <= n and counts.min() >= 2 else None  # sklearn needs a row per class on each side
    keep, _ = train_test_split(np.arange(len(y)), train_size=n, stratify=stratify, random_state=seed)
    keep = np.sort(keep)
    return x[keep], y[keep]


def evaluate_features(
    train_x: np.ndarray,
    train_y: np.ndarray,
    test_x: np.ndarray,
    test_y: np.ndarray,
    cfg: EvalConfig,
    seed: int = 0,
) -> dict[str, dict]:
    """Weighted kNN, linear probe and RBF SVM on frozen features; hyper-parameters by CV on train.

    Returns ``{"knn" | "linear" | "svm": {"accuracy", "macro_f1", "params", "cv_accuracy"}}``:
    test-split accuracy and macro-F1, the chosen hyper-parameter (``{"k": ...}`` / ``{"C": ...}``)
    and the mean CV accuracy of that choice on the train split. When a class has fewer than two
    training samples no stratified CV exists; the probes then use the smallest feasible k and
    C = 1.0, ``params["cv"]`` says so and ``cv_accuracy`` is None. ``cfg.probe_train_max`` fits
    every probe on the same stratified subset of the train rows. Deterministic given ``seed``.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    _check_config(cfg)
    train_x, train_y = _check_features(train_x, train_y, "train")
    test_x, test_y = _check_features(test_x, test_y, "test")
    if train_x.shape[1] != test_x.shape[1]:
        raise UserError(
            f"train features have {train_x.shape[1]} dims but test features {test_x.shape[1]}; "
            "extract both splits with the same encoder"
        )
    if cfg.probe_train_max is not None and len(train_y) > cfg.probe_train_max:
        train_x, train_y = _stratified_subset(train_x, train_y, cfg.probe_train_max, seed)
    # Labels may be any hashable values (ints, strings); kNN wants class indices 0..C-1.
    classes, train_idx = np.unique(train_y, return_inverse=True)
    if len(classes) < 2:
        raise UserError(f"the train split has a single class ({classes[0]!r}); probes need at least two")
    min_count = int(np.bincount(train_idx).min())
    splits = None
    if min_count >= 2:
        folds = StratifiedKFold(n_splits=min(cfg.cv_folds, min_count), shuffle=True, random_state=seed)
        # Materialised once: the same folds for all three probes, computed from train labels only.
        splits = list(folds.split(np.zeros(len(train_idx)), train_idx))

    linear = Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression(max_iter=LOGREG_MAX_ITER))])
    # TS2Vec's UCR protocol (Yue et al., 2022): instance features pooled over time -> RBF SVM with
    # gamma="scale", C chosen by grid search over 1e-4..1e4. TS2Vec feeds the raw features to the
    # SVM without standardising them; we follow it (no scaler) so our numbers are comparable.
    # Where we differ from TS2Vec's code: it skips the search and fits a hard-margin C=inf SVM when
    # there are < 5 training samples per class on average or < 50 in all (we search whenever
    # stratified CV is possible and otherwise use C=1.0), its grid also holds C=inf, and it
    # subsamples the train split to 10,000 rows before fitting (we fit all rows; SVC is O(n^2)).
    svm = SVC(kernel="rbf", gamma="scale")
    return {
        "knn": _knn_probe(train_x, train_idx, classes, test_x, test_y, cfg, splits),
        "linear": _grid_probe(linear, cfg.logreg_c, train_x, train_y, test_x, test_y, splits),
        "svm": _grid_probe(svm, cfg.svm_c, train_x, train_y, test_x, test_y, splits),
    }


# ---------------------------------------------------------------- reporting

_PROBES = (("knn", "kNN"), ("linear", "linear"), ("svm", "SVM"))
_METRICS = (("accuracy", "acc"), ("macro_f1", "F1"))


def format_table(results: dict[str, dict[str, dict]]) -> str:
    """Markdown table of ``{row name: evaluate_features(...) output}``, metrics in percent.

    Extra keys in a row (``evaluate_run`` adds ``encoder`` and ``feature_dim``) are ignored;
    a missing probe or metric shows as ``n/a``. Columns are padded so the table also reads
    well as plain text in a terminal.
    """
    header = ["encoder"] + [f"{label} {short}" for _, label in _PROBES for _, short in _METRICS]
    # The collapse column (effective rank of the test features) appears once any row has it.
    with_rank = any(isinstance(r, dict) and isinstance(r.get("collapse"), dict) for r in results.values())
    header += ["eff. rank"] * with_rank
    rows = []
    for name, res in results.items():
        cells = [str(name).replace("|", "\\|")]  # a '|' in a run path would split the row
        for probe, _ in _PROBES:
            entry = res.get(probe) if isinstance(res, dict) else None
            for metric, _ in _METRICS:
                value = entry.get(metric) if isinstance(entry, dict) else None
                cells.append("n/a" if value is None else f"{100 * float(value):.1f}")
        if with_rank:
            collapse = res.get("collapse") if isinstance(res, dict) else None
            cells.append(f"{collapse['effective_rank']:.1f}" if isinstance(collapse, dict) else "n/a")
        rows.append(cells)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        padded = [cells[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True)]
        return "| " + " | ".join(padded) + " |"

    rule = "| " + " | ".join(["-" * widths[0]] + ["-" * (w - 1) + ":" for w in widths[1:]]) + " |"
    return "\n".join([line(header), rule, *(line(r) for r in rows)])
