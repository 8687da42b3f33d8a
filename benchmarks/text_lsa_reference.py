"""What an unsupervised d-dimensional summary of word content scores: the yardstick for a text encoder of width d.

    python benchmarks/text_lsa_reference.py runs/text_pilot/scratch_full --dims 128 384

The TF-IDF floor's vectoriser (word 1-2-grams) fit on the run's train split, then a truncated SVD to ``d``
dimensions (latent semantic analysis), standardised, then a logistic regression with C chosen by stratified
CV on the train split, scored on the test split. Neither the TF-IDF nor the SVD sees a label, so this is an
unsupervised encoder of width ``d`` that keeps as much of each snippet's word content as a linear map can.
A self-supervised encoder of the same width that stays far below it has not even learnt the words; one near
it is limited by its width, not by its training.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from gsg_multimodal.errors import UserError

C_GRID = (0.001, 0.01, 0.1, 1.0)


def lsa_scores(
    train_text: list[str],
    train_y: np.ndarray,
    test_text: list[str],
    test_y: np.ndarray,
    dims: list[int],
    folds: int = 3,
    seed: int = 0,
) -> dict[int, dict[str, Any]]:
    """``{d: {"linear": test accuracy in %, "C": the C chosen by CV}}`` for each width ``d``."""
    from sklearn.decomposition import TruncatedSVD
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV, StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from gsg_domains.text.floor import tfidf_vectorizer

    tfidf = tfidf_vectorizer(len(train_text))
    x_train = tfidf.fit_transform(train_text)
    x_test = tfidf.transform(test_text)
    out = {}
    for d in dims:
        if not 0 < d < x_train.shape[1]:
            top = x_train.shape[1] - 1
            raise UserError(f"--dims {d}: must be between 1 and {top} (the TF-IDF vocabulary); pick a smaller width")
        svd = TruncatedSVD(d, random_state=seed).fit(x_train)
        probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000))
        search = GridSearchCV(
            probe,
            {"logisticregression__C": list(C_GRID)},
            cv=StratifiedKFold(folds, shuffle=True, random_state=seed),
        ).fit(svd.transform(x_train), train_y)
        accuracy = 100 * search.score(svd.transform(x_test), test_y)
        out[d] = {"linear": round(float(accuracy), 2), "C": search.best_params_["logisticregression__C"]}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path, help="a text run directory (its config fixes the data and the split)")
    parser.add_argument("--dims", type=int, nargs="+", default=[128], help="widths of the SVD (default 128)")
    args = parser.parse_args(argv)
    from gsg_multimodal.evaluate import load_run_config
    from gsg_multimodal.runtime import CACHE_DIR, load_bound

    try:
        cfg = load_run_config(args.run)
        if cfg.domain != "text":
            raise UserError(f"{args.run} is a {cfg.domain} run; this reference is for text runs")
        _, data = load_bound(cfg, cache_dir=args.run / CACHE_DIR)
        scores = lsa_scores(
            list(data.train["text"]),
            np.asarray(data.train["label"]),
            list(data.test["text"]),
            np.asarray(data.test["label"]),
            args.dims,
            folds=cfg.eval.cv_folds,
            seed=cfg.seed,
        )
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for d, s in scores.items():
        print(f"TF-IDF -> SVD {d:4d} dims -> logistic regression: {s['linear']:.1f} % (C={s['C']})")
    print(json.dumps({str(d): s for d, s in scores.items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
