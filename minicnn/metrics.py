"""Scoring a classifier class by class: the confusion matrix and the classification report.

For each class ``k``, counting over the test set:

    true positives  TP = predicted k and truly k
    precision       = TP / (number predicted k)    "when it says k, how often is it right?"
    recall          = TP / (number truly k)        "of the real k, how many did it find?"
    F1              = 2 * precision * recall / (precision + recall)
    support         = number truly k

A ratio with nothing to count (0 / 0) is reported as 0, as scikit-learn does.

Also Keras's accuracy functions (``binary_accuracy``, ``categorical_accuracy``,
``sparse_categorical_accuracy``), one value per sample as Keras returns them.
"""
from __future__ import annotations

import numpy as np


def _labels(values, what):
    """Class indices (N,) from indices or from one-hot / probability rows (N, K)."""
    values = np.asarray(values)
    if values.ndim == 2:
        values = values.argmax(axis=-1)       # (N, K) -> (N,): the most likely class
    if values.ndim != 1:
        raise ValueError(f"{what} must be class indices (N,) or one-hot rows (N, K), got "
                         f"shape {values.shape}")
    return values.astype(np.int64)


def confusion_matrix(y_true, y_pred, num_classes=None):
    """(K, K) counts: ``matrix[i, j]`` = images of true class i predicted as class j."""
    y_true, y_pred = _labels(y_true, "y_true"), _labels(y_pred, "y_pred")
    if len(y_true) != len(y_pred):
        raise ValueError(f"y_true has {len(y_true)} labels but y_pred has {len(y_pred)}")
    if num_classes is None:
        num_classes = int(max(y_true.max(initial=-1), y_pred.max(initial=-1))) + 1
    if len(y_true) and (min(y_true.min(), y_pred.min()) < 0 or
                        max(y_true.max(), y_pred.max()) >= num_classes):
        raise ValueError(f"class indices must lie in [0, {num_classes})")
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (y_true, y_pred), 1)    # one count per (true, predicted) pair
    return matrix


def _ratio(numerator, denominator):
    return np.divide(numerator, denominator, out=np.zeros(len(numerator)),
                     where=denominator > 0)


def classification_scores(y_true, y_pred, num_classes=None):
    """``{"precision", "recall", "f1", "support"}``: arrays of one value per class,
    plus ``"accuracy"`` (a float)."""
    matrix = confusion_matrix(y_true, y_pred, num_classes)
    true_positives = np.diag(matrix).astype(np.float64)
    predicted = matrix.sum(axis=0)            # column sums: how often each class was said
    actual = matrix.sum(axis=1)               # row sums: how often each class occurs
    precision = _ratio(true_positives, predicted)
    recall = _ratio(true_positives, actual)
    f1 = _ratio(2 * precision * recall, precision + recall)
    total = matrix.sum()
    return {"precision": precision, "recall": recall, "f1": f1, "support": actual,
            "accuracy": float(true_positives.sum() / total) if total else 0.0}


def classification_report(y_true, y_pred, class_names=None, digits=2, target_names=None):
    """A text table like scikit-learn's: precision, recall, F1 and support per
    class, then accuracy and the macro and support-weighted averages.
    ``target_names`` is scikit-learn's name for ``class_names``."""
    class_names = target_names if class_names is None else class_names
    num_classes = len(class_names) if class_names is not None else None
    scores = classification_scores(y_true, y_pred, num_classes)
    support = scores["support"]
    names = list(class_names) if class_names is not None else [
        str(k) for k in range(len(support))]
    width = max(len("weighted avg"), *(len(n) for n in names))
    header = f"{'':>{width}} {'precision':>9} {'recall':>9} {'f1-score':>9} {'support':>9}"
    cell = lambda v: f"{v:>9.{digits}f}"   # noqa: E731
    lines = [header, ""]
    for k, name in enumerate(names):
        lines.append(f"{name:>{width}} {cell(scores['precision'][k])} "
                     f"{cell(scores['recall'][k])} {cell(scores['f1'][k])} {support[k]:>9d}")
    total = int(support.sum())
    weights = support / max(total, 1)
    lines += ["", f"{'accuracy':>{width}} {'':>9} {'':>9} {cell(scores['accuracy'])} "
                  f"{total:>9d}"]
    for label, average in (("macro avg", np.mean), ("weighted avg", None)):
        values = [average(scores[m]) if average else float((scores[m] * weights).sum())
                  for m in ("precision", "recall", "f1")]
        lines.append(f"{label:>{width}} " + " ".join(cell(v) for v in values)
                     + f" {total:>9d}")
    return "\n".join(lines) + "\n"


# -- Keras's accuracy functions: one value per sample (1.0 right, 0.0 wrong), as Keras's --

def binary_accuracy(y_true, y_pred, threshold=0.5):
    """(y_pred > threshold) == y_true, value by value, as Keras 3's (Keras 2's averaged
    over the last axis)."""
    y_pred = np.asarray(y_pred)
    y_true = np.asarray(y_true).reshape(y_pred.shape)
    return ((y_pred > threshold) == y_true).astype(np.float32)


def categorical_accuracy(y_true, y_pred):
    """1.0 where the arg-max class of ``y_pred`` is that of the one-hot ``y_true``."""
    return (np.argmax(y_true, axis=-1) == np.argmax(y_pred, axis=-1)).astype(np.float32)


def sparse_categorical_accuracy(y_true, y_pred):
    """1.0 where the arg-max class of ``y_pred`` is the class index ``y_true``."""
    y_true = np.asarray(y_true).reshape(np.shape(y_pred)[:-1])
    return (y_true == np.argmax(y_pred, axis=-1)).astype(np.float32)


__all__ = ["binary_accuracy", "categorical_accuracy", "classification_report",
           "classification_scores", "confusion_matrix", "sparse_categorical_accuracy"]
