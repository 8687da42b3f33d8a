"""The hand-crafted floor for text: TF-IDF features + logistic regression, C chosen by CV on train only."""

from __future__ import annotations

from typing import Any

import numpy as np

from gsg_multimodal.domain import DataSplits
from gsg_multimodal.probes import CV_SKIPPED, DEFAULT_C

NAME = "TF-IDF + logistic regression"


def tfidf_vectorizer(n_train: int) -> Any:
    """Word 1-2-gram TF-IDF with sublinear tf; min_df 2 from 50 training rows up.

    min_df=2 drops hapaxes (typos, names) on real corpora; a handful of sentences would keep no term.
    """
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(ngram_range=(1, 2), min_df=2 if n_train >= 50 else 1, sublinear_tf=True)


def tfidf_floor(data: DataSplits, eval_cfg: Any, seed: int) -> dict[str, Any]:
    """Word 1-2-gram TF-IDF (sublinear tf, min_df 2 from 50 rows up) and a logistic regression, in one pipeline.

    The vectoriser sits inside the pipeline so each CV fold fits its vocabulary and IDF on its
    own training part only; the test split is scored once, by the model refitted on all of train.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, f1_score
    from sklearn.model_selection import GridSearchCV, StratifiedKFold
    from sklearn.pipeline import Pipeline
    from threadpoolctl import threadpool_limits

    train_x, train_y = list(data.train["text"]), np.asarray(data.train["label"])
    test_x, test_y = list(data.test["text"]), np.asarray(data.test["label"])
    pipe = Pipeline(
        [
            ("tfidf", tfidf_vectorizer(len(train_x))),
            ("clf", LogisticRegression(max_iter=2000)),
        ]
    )
    grid = {"clf__C": [float(c) for c in eval_cfg.logreg_c]}
    smallest = int(np.unique(train_y, return_counts=True)[1].min()) if len(train_y) else 0
    with threadpool_limits(limits=1):  # as the core's probes: predictable on a shared machine
        if smallest < 2:  # no stratified CV exists: the core's probes use C = 1 then, and say so
            model = pipe.set_params(clf__C=DEFAULT_C).fit(train_x, train_y)
            params, cv_acc = {"C": DEFAULT_C, "cv": CV_SKIPPED}, None
        else:
            # The same fold rule as the core's probes: min(cv_folds, smallest class) stratified folds, seeded.
            folds = StratifiedKFold(n_splits=min(eval_cfg.cv_folds, smallest), shuffle=True, random_state=seed)
            model = GridSearchCV(pipe, grid, cv=folds, scoring="accuracy", n_jobs=1, refit=True, error_score="raise")
            model.fit(train_x, train_y)
            params, cv_acc = {"C": float(model.best_params_["clf__C"])}, float(model.best_score_)
        pred = model.predict(test_x)
    linear = {
        "accuracy": float(accuracy_score(test_y, pred)),
        "macro_f1": float(f1_score(test_y, pred, average="macro", zero_division=0)),
        "params": params,
        "cv_accuracy": cv_acc,
    }
    return {"name": NAME, "linear": linear}
