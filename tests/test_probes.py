"""Frozen-feature probes: kNN against a brute-force reference, CV hygiene, fallbacks, the table."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from gsg_multimodal.config import EvalConfig
from gsg_multimodal.errors import UserError
from gsg_multimodal.probes import CV_SKIPPED, evaluate_features, format_table, knn_cv_accuracy, knn_predict


def brute_force_knn(
    bank: np.ndarray,
    labels: np.ndarray,
    queries: np.ndarray,
    k: int,
    temperature: float,
    num_classes: int,
    exclude_self: bool = False,
) -> np.ndarray:
    """One query at a time, straight from the definition (InstDisc / DINO weighted vote)."""
    bank = bank / np.linalg.norm(bank, axis=1, keepdims=True)
    out = []
    for i, q in enumerate(queries):
        sims = bank @ (q / np.linalg.norm(q))
        order = [j for j in np.argsort(-sims, kind="stable") if not (exclude_self and j == i)]
        top = order[: min(k, len(order))]
        scores = np.zeros(num_classes)
        for j in top:
            scores[labels[j]] += np.exp(sims[j] / temperature)
        out.append(int(np.argmax(scores)))
    return np.array(out)


@pytest.fixture
def random_data() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    bank = torch.randn(300, 16, generator=g, dtype=torch.float64)
    labels = torch.randint(0, 5, (300,), generator=g)
    queries = torch.randn(80, 16, generator=g, dtype=torch.float64)
    return bank, labels, queries


@pytest.mark.parametrize("k", [1, 7, 20])
@pytest.mark.parametrize("temperature", [0.07, 0.5])
def test_knn_matches_brute_force(random_data, k: int, temperature: float) -> None:
    bank, labels, queries = random_data
    expected = brute_force_knn(bank.numpy(), labels.numpy(), queries.numpy(), k, temperature, 5)
    got = knn_predict(bank, labels, queries, k, temperature, num_classes=5)
    assert got.dtype == torch.long
    np.testing.assert_array_equal(got.numpy(), expected)
    # float32 (what the encoders produce) gives the same answers on this data
    got32 = knn_predict(bank.float(), labels, queries.float(), k, temperature, num_classes=5)
    np.testing.assert_array_equal(got32.numpy(), expected)


def test_knn_weighting_beats_majority_vote() -> None:
    # One class-0 neighbour almost identical to the query, two class-1 neighbours at 60 degrees.
    bank = torch.tensor([[1.0, 0.01], [0.5, 0.866], [0.5, -0.866]])
    labels = torch.tensor([0, 1, 1])
    query = torch.tensor([[1.0, 0.0]])
    # T = 0.07: exp(1/0.07) >> 2 exp(0.5/0.07), the close neighbour wins.
    assert knn_predict(bank, labels, query, k=3, temperature=0.07, num_classes=2).item() == 0
    # A huge temperature flattens the weights to a plain majority vote: class 1.
    assert knn_predict(bank, labels, query, k=3, temperature=1e4, num_classes=2).item() == 1
    assert brute_force_knn(bank.numpy(), labels.numpy(), query.numpy(), 3, 0.07, 2).item() == 0


def test_knn_small_temperature_does_not_overflow() -> None:
    # exp(1 / 0.001) is inf in any float type; the vote must still find the nearest class.
    bank = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.1, 1.0]])
    labels = torch.tensor([2, 0, 1])
    query = torch.tensor([[1.0, 0.05]])
    assert knn_predict(bank, labels, query, k=3, temperature=1e-3, num_classes=3).item() == 2


def test_chunking_does_not_change_results(random_data) -> None:
    bank, labels, queries = (t.float() if t.is_floating_point() else t for t in random_data)
    reference = knn_predict(bank, labels, queries, 10, 0.07, 5, chunk_size=4096)
    for chunk in (1, 7, 33, 80, 81):
        assert torch.equal(knn_predict(bank, labels, queries, 10, 0.07, 5, chunk_size=chunk), reference)


def test_k_is_clipped_to_the_bank() -> None:
    bank = torch.randn(4, 3)
    labels = torch.tensor([0, 1, 1, 1])
    got = knn_predict(bank, labels, torch.randn(6, 3), k=50, temperature=1e4, num_classes=2)
    assert torch.equal(got, torch.ones(6, dtype=torch.long))  # all 4 vote, class 1 has 3 of them


@pytest.mark.parametrize("chunk", [5, 4096])
def test_exclude_self_is_leave_one_out(random_data, chunk: int) -> None:
    bank, labels, _ = random_data
    # Without exclusion each row finds itself (similarity 1) at k=1.
    assert torch.equal(knn_predict(bank, labels, bank, 1, 0.07, 5, chunk_size=chunk), labels)
    for k in (1, 10):
        got = knn_predict(bank, labels, bank, k, 0.07, 5, chunk_size=chunk, exclude_self=True)
        expected = brute_force_knn(bank.numpy(), labels.numpy(), bank.numpy(), k, 0.07, 5, exclude_self=True)
        np.testing.assert_array_equal(got.numpy(), expected)
    # k is clipped to the bank minus the query itself
    small, small_labels = bank[:3], torch.tensor([0, 1, 1])
    got = knn_predict(small, small_labels, small, 10, 1e4, 2, exclude_self=True)
    assert got[0].item() == 1  # row 0 sees only the two class-1 rows
    expected = brute_force_knn(small.numpy(), small_labels.numpy(), small.numpy(), 10, 1e4, 2, exclude_self=True)
    np.testing.assert_array_equal(got.numpy(), expected)
    with pytest.raises(ValueError, match="same rows"):
        knn_predict(bank, labels, bank[:10], 1, 0.07, 5, exclude_self=True)


def test_knn_rejects_bad_labels() -> None:
    with pytest.raises(ValueError, match="bank_labels"):
        knn_predict(torch.randn(4, 2), torch.tensor([0, 1, 2, 3]), torch.randn(1, 2), 1, 0.1, num_classes=3)


def test_knn_cv_accuracy_matches_knn_predict(random_data) -> None:
    bank, labels, _ = random_data
    rng = np.random.default_rng(0)
    perm = rng.permutation(len(bank))
    splits = [(perm[100:], perm[:100]), (perm[:200], perm[200:])]
    accs = knn_cv_accuracy(bank, labels, [1, 5, 20], 0.07, 5, splits)
    for k, acc in accs.items():
        fold = [
            float((knn_predict(bank[tr], labels[tr], bank[va], k, 0.07, 5) == labels[va]).double().mean())
            for tr, va in splits
        ]
        assert acc == pytest.approx(np.mean(fold), abs=1e-12)


# ---------------------------------------------------------------- evaluate_features on real data


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    train_x, test_x, train_y, test_y = train_test_split(x, y, test_size=0.3, random_state=0, stratify=y)
    return train_x, train_y, test_x, test_y


@pytest.fixture(scope="module")
def digits_result(digits) -> dict[str, dict]:
    return evaluate_features(*digits, EvalConfig(), seed=0)


def test_evaluate_features_on_digits(digits_result) -> None:
    cfg = EvalConfig()
    grids = {"knn": ("k", cfg.knn_k), "linear": ("C", cfg.logreg_c), "svm": ("C", cfg.svm_c)}
    assert set(digits_result) == set(grids)
    for probe, (name, grid) in grids.items():
        res = digits_result[probe]
        assert res["accuracy"] > 0.9, (probe, res)
        assert 0.9 < res["macro_f1"] <= 1.0, (probe, res)
        assert res["cv_accuracy"] > 0.9, (probe, res)
        assert set(res["params"]) == {name} and res["params"][name] in grid, (probe, res)
        assert all(type(v) in (int, float) for v in (res["accuracy"], res["macro_f1"], res["cv_accuracy"]))


def test_cv_never_sees_the_test_split(digits, digits_result) -> None:
    train_x, train_y, test_x, test_y = digits
    rng = np.random.default_rng(1)
    # Garbage test split: noise features of another size and shuffled labels.
    noise_x = rng.normal(size=(50, test_x.shape[1]))
    garbage = evaluate_features(train_x, train_y, noise_x, rng.permutation(test_y)[:50], EvalConfig(), seed=0)
    for probe in ("knn", "linear", "svm"):
        assert garbage[probe]["params"] == digits_result[probe]["params"]
        assert garbage[probe]["cv_accuracy"] == digits_result[probe]["cv_accuracy"]
        assert garbage[probe]["accuracy"] < 0.5


def test_deterministic_given_seed(digits) -> None:
    train_x, train_y, test_x, test_y = digits
    small = (train_x[:300], train_y[:300], test_x[:100], test_y[:100])
    cfg = EvalConfig(svm_c=[0.1, 1.0, 10.0], logreg_c=[0.1, 1.0])
    assert evaluate_features(*small, cfg, seed=3) == evaluate_features(*small, cfg, seed=3)


def test_tiny_class_falls_back_without_cv() -> None:
    rng = np.random.default_rng(0)
    train_x = np.concatenate([rng.normal(0, 1, (6, 4)) + 5, rng.normal(0, 1, (6, 4)) - 5, [[5.0, -5, 5, -5]]])
    train_y = np.array([0] * 6 + [1] * 6 + [2])  # class 2 has a single sample: no stratified CV
    test_x = np.concatenate([rng.normal(0, 1, (4, 4)) + 5, rng.normal(0, 1, (4, 4)) - 5])
    test_y = np.array([0] * 4 + [1] * 4)
    res = evaluate_features(train_x, train_y, test_x, test_y, EvalConfig(knn_k=[20, 5, 50]), seed=0)
    assert res["knn"]["params"] == {"k": 5, "cv": CV_SKIPPED}
    assert res["linear"]["params"] == {"C": 1.0, "cv": CV_SKIPPED}
    assert res["svm"]["params"] == {"C": 1.0, "cv": CV_SKIPPED}
    assert all(res[p]["cv_accuracy"] is None for p in res)
    # k larger than the whole bank: clipped to it
    res = evaluate_features(train_x, train_y, test_x, test_y, EvalConfig(knn_k=[50, 20]), seed=0)
    assert res["knn"]["params"]["k"] == len(train_x)


def test_unseen_test_labels_count_as_errors() -> None:
    rng = np.random.default_rng(0)
    train_x = np.concatenate([rng.normal(0, 0.1, (10, 2)) + [5, 0], rng.normal(0, 0.1, (10, 2)) + [0, 5]])
    train_y = np.array(["a"] * 10 + ["b"] * 10)
    test_x = np.array([[5.0, 0.0], [0.0, 5.0], [5.0, 0.1], [0.1, 5.0]])
    test_y = np.array(["a", "b", "a", "zebra"])  # labels may be strings; "zebra" was never trained on
    res = evaluate_features(train_x, train_y, test_x, test_y, EvalConfig(cv_folds=2), seed=0)
    for probe in ("knn", "linear", "svm"):
        assert res[probe]["accuracy"] == pytest.approx(0.75), probe


def test_bad_inputs_are_user_errors(digits) -> None:
    train_x, train_y, test_x, test_y = digits
    cfg = EvalConfig()
    bad = train_x.copy()
    bad[3, 0] = np.nan
    with pytest.raises(UserError, match=r"NaN/inf \(the encoder diverged\?\)") as info:
        evaluate_features(bad, train_y, test_x, test_y, cfg)
    assert "\n" not in str(info.value)
    bad_test = test_x.copy()
    bad_test[0, 1] = np.inf
    with pytest.raises(UserError, match="NaN/inf"):
        evaluate_features(train_x, train_y, bad_test, test_y, cfg)
    with pytest.raises(UserError, match="labels of shape"):
        evaluate_features(train_x, train_y[:-1], test_x, test_y, cfg)
    with pytest.raises(UserError, match="dims"):
        evaluate_features(train_x, train_y, test_x[:, :10], test_y, cfg)
    with pytest.raises(UserError, match="single class"):
        evaluate_features(train_x[:5], np.zeros(5), test_x, test_y, cfg)


def test_format_table(digits_result) -> None:
    rows = {
        "gsg | seed 0": {**digits_result, "encoder": "runs/x/encoder", "feature_dim": 64},
        "random init": {"knn": {"accuracy": 0.1234, "macro_f1": 0.05}},
    }
    table = format_table(rows)
    lines = table.splitlines()
    assert len(lines) == 4
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    assert header == ["encoder", "kNN acc", "kNN F1", "linear acc", "linear F1", "SVM acc", "SVM F1"]
    assert set(lines[1]) <= set("|-: ")
    first = [c.strip() for c in lines[2].strip("|").split(" | ")]
    assert first[0] == "gsg \\| seed 0"
    assert first[1] == f"{100 * digits_result['knn']['accuracy']:.1f}"
    assert first[6] == f"{100 * digits_result['svm']['macro_f1']:.1f}"
    second = [c.strip() for c in lines[3].strip("|").split("|")]
    assert second == ["random init", "12.3", "5.0", "n/a", "n/a", "n/a", "n/a"]
    assert len({len(line) for line in lines}) == 1  # padded columns


def test_probe_train_max_fits_every_probe_on_one_stratified_subset(digits) -> None:
    from gsg_multimodal.probes import _stratified_subset

    train_x, train_y, test_x, test_y = digits
    sub_x, sub_y = _stratified_subset(train_x, train_y, 300, seed=3)
    assert len(sub_y) == 300
    # Class proportions kept to within one row; rows stay in their original order.
    expected = np.bincount(train_y) * 300 / len(train_y)
    assert np.all(np.abs(np.bincount(sub_y, minlength=len(expected)) - expected) <= 1)
    rows = [int(np.flatnonzero((train_x == row).all(axis=1))[0]) for row in sub_x]
    assert rows == sorted(rows)
    again_x, _ = _stratified_subset(train_x, train_y, 300, seed=3)
    assert np.array_equal(again_x, sub_x)
    assert not np.array_equal(_stratified_subset(train_x, train_y, 300, seed=4)[0], sub_x)

    cfg = EvalConfig(cv_folds=3, logreg_c=[0.1, 1.0], svm_c=[1.0, 10.0], knn_k=[5, 10])
    capped = evaluate_features(train_x, train_y, test_x, test_y, replace(cfg, probe_train_max=300), seed=3)
    manual = evaluate_features(sub_x, sub_y, test_x, test_y, cfg, seed=3)
    full = evaluate_features(train_x, train_y, test_x, test_y, cfg, seed=3)
    for probe in ("knn", "linear", "svm"):
        assert capped[probe]["accuracy"] == manual[probe]["accuracy"], probe
    assert any(capped[p]["cv_accuracy"] != full[p]["cv_accuracy"] for p in ("knn", "linear", "svm"))
    with pytest.raises(UserError, match="eval.probe_train_max"):
        EvalConfig(probe_train_max=1)
