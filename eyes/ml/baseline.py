"""The yardstick every accuracy figure stands next to: a plain logistic regression on the frozen
embeddings of the same labels (scikit-learn defaults, standardised features), judged on photos
neither it nor the model trained on. If Eyes' learning does not beat this, it is not learning."""

from __future__ import annotations

import warnings

import numpy as np

from eyes.ml.metrics import right_at


def logistic_regression_predict(x_train: np.ndarray, labels: np.ndarray, x_test: np.ndarray) -> np.ndarray:
    """Class indices predicted for `x_test` by a multinomial logistic regression fitted on
    (`x_train`, `labels`) (one class index per photo)."""
    from sklearn.linear_model import LogisticRegression  # only training and benchmarks need it
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(x_train)
    with warnings.catch_warnings():
        # With 2 photos per class scikit-learn wonders whether this is a regression: it is not.
        warnings.filterwarnings("ignore", "The number of unique classes", UserWarning)
        model = LogisticRegression(max_iter=2000).fit(scaler.transform(x_train), labels)
    return np.asarray(model.predict(scaler.transform(x_test)), dtype=np.int64)


def logistic_regression_top1(
    x_train: np.ndarray, labels: np.ndarray, x_test: np.ndarray, truth: np.ndarray
) -> float | None:
    """Top-1 accuracy on the test photos: right when the predicted class is one of the photo's
    (`truth`: (n, classes) 0/1). None when there is nothing to fit or to judge."""
    if len(np.unique(labels)) < 2 or not len(x_test):
        return None
    predicted = logistic_regression_predict(x_train, labels, x_test)
    return float(right_at(predicted, truth).mean())
