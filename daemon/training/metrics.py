"""Evaluation figures over class indices, in numpy (no scikit-learn needed for four sums)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """counts[i, j]: tracks of class i predicted as class j."""
    import numpy as np

    counts = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(counts, (np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)), 1)
    return counts


def accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    import numpy as np

    y_true = np.asarray(y_true)
    return float(np.mean(y_true == np.asarray(y_pred))) if y_true.size else 0.0


def f1_per_class(confusion: np.ndarray) -> np.ndarray:
    """F1 of each class from a confusion matrix (0 where a class has no true or predicted
    track: precision and recall are both undefined there)."""
    import numpy as np

    hits = np.diag(confusion).astype(np.float64)
    truths = confusion.sum(axis=1)
    guesses = confusion.sum(axis=0)
    denominator = truths + guesses
    return np.divide(2 * hits, denominator, out=np.zeros_like(hits), where=denominator > 0)


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> float:
    """Mean F1 over the classes that occur among the true or the predicted labels (as
    scikit-learn's f1_score(average="macro") does by default)."""
    import numpy as np

    confusion = confusion_matrix(y_true, y_pred, n_classes)
    present = (confusion.sum(axis=0) + confusion.sum(axis=1)) > 0
    if not present.any():
        return 0.0
    return float(np.mean(f1_per_class(confusion)[present]))


def expected_calibration_error(
    probabilities: np.ndarray, y_true: np.ndarray, bins: int = 15
) -> float:
    """ECE (Guo et al. 2017): over equal-width bins of the top probability, the gap between
    mean confidence and accuracy, weighted by the share of tracks in the bin."""
    import numpy as np

    probabilities = np.asarray(probabilities, dtype=np.float64)
    if probabilities.shape[0] == 0:
        return 0.0
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == np.asarray(y_true)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, bins - 1)
    total = 0.0
    for b in range(bins):
        inside = which == b
        if inside.any():
            gap = abs(float(confidence[inside].mean()) - float(correct[inside].mean()))
            total += gap * float(inside.mean())
    return total
