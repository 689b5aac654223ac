"""Scores for predictions: confusion matrix, accuracy, per-class precision, recall and F1.

Plain numpy and the csv module: the job that scores a split does not pay pandas' import."""

import csv
import io
from collections.abc import Iterable, Sequence

import numpy as np

from .dims import CLASSES
from .errors import MnistPipelineError


class MetricsError(MnistPipelineError, ValueError):
    """Labels or a confusion matrix that cannot be scored as given."""


def _labels(values, what: str) -> np.ndarray:
    """`values` as a 1-D int64 array; `what` names it in errors."""
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise MetricsError(f"{what} must be a 1-D array of class indices, got shape {arr.shape}")
    if arr.size and not (np.issubdtype(arr.dtype, np.integer) or arr.dtype == bool):
        raise MetricsError(
            f"{what} must hold integer class indices, got dtype {arr.dtype}: "
            f"take np.argmax of the probabilities, or cast whole-number labels to int"
        )
    return arr.astype(np.int64)


def _out_of_range(arr: np.ndarray, n_classes: int, what: str) -> None:
    bad = (arr < 0) | (arr >= n_classes)
    if bad.any():
        values, counts = np.unique(arr[bad], return_counts=True)
        shown = ", ".join(f"{v} ({c}x)" for v, c in zip(values[:10], counts[:10], strict=True))
        more = f" and {len(values) - 10} more" if len(values) > 10 else ""
        raise MetricsError(
            f"{what} has {int(bad.sum())} value(s) outside 0..{n_classes - 1}: {shown}{more}; "
            f"check that n_classes ({n_classes}) matches the dataset's labels"
        )


def confusion_matrix(target, predicted, n_classes: int = CLASSES) -> np.ndarray:
    """Counts (int64, n_classes x n_classes): row = true class, column = predicted class."""
    if n_classes < 1:
        raise MetricsError(f"n_classes must be at least 1, got {n_classes}")
    t = _labels(target, "target")
    p = _labels(predicted, "predicted")
    if t.shape != p.shape:
        raise MetricsError(
            f"target has {t.size} labels but predicted has {p.size}: they must pair up row by row"
        )
    _out_of_range(t, n_classes, "target")
    _out_of_range(p, n_classes, "predicted")
    flat = np.bincount(t * n_classes + p, minlength=n_classes * n_classes)
    return flat.reshape(n_classes, n_classes).astype(np.int64)


def _checked(cm, class_names: Sequence[str] | None = None) -> np.ndarray:
    """`cm` as a square int64 array of non-negative counts, matching class_names if given."""
    cm = np.asarray(cm)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1] or cm.shape[0] == 0:
        raise MetricsError(f"confusion matrix must be square and non-empty, got shape {cm.shape}")
    if not np.issubdtype(cm.dtype, np.integer):
        raise MetricsError(f"confusion matrix must hold integer counts, got dtype {cm.dtype}")
    if (cm < 0).any():
        raise MetricsError("confusion matrix holds negative counts: it must hold counts >= 0")
    if class_names is not None:
        names = list(class_names)
        if len(names) != cm.shape[0]:
            raise MetricsError(
                f"{len(names)} class names given for a {cm.shape[0]}x{cm.shape[0]} confusion "
                f"matrix: give one name per class"
            )
        if len(set(names)) != len(names):
            raise MetricsError(f"class names must be distinct, got {names}")
    return cm.astype(np.int64)


def _total(cm: np.ndarray) -> int:
    total = int(cm.sum())
    if total == 0:
        raise MetricsError(
            "confusion matrix counts no predictions (total 0): scores are undefined; "
            "check that the predictions file has rows"
        )
    return total


def confusion_csv(cm, class_names: Sequence[str]) -> str:
    """The matrix as CSV text, with class names on rows (true) and columns (predicted), and
    "true \\ predicted" in the top-left cell."""
    cm = _checked(cm, class_names)
    names = [str(name) for name in class_names]
    rows = ([name, *counts] for name, counts in zip(names, cm.tolist(), strict=True))
    return csv_text(["true \\ predicted", *names], rows)


def csv_text(header: Iterable[object], rows: Iterable[Iterable[object]]) -> str:
    """Rows as CSV text: minimal quoting, "\\n" line ends (the CSV files of the reports and the
    perceptron tables)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def accuracy_summary(cm) -> dict:
    """{"correct", "total", "accuracy"}: the diagonal's sum, all counts, and their ratio."""
    cm = _checked(cm)
    total = _total(cm)
    correct = int(np.trace(cm))
    return {"correct": correct, "total": total, "accuracy": correct / total}


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den elementwise, 0.0 where den == 0."""
    out = np.zeros(num.shape, dtype=np.float64)
    np.divide(num, den, out=out, where=den != 0)
    return out


PER_CLASS_COLUMNS = ("class", "name", "support", "precision", "recall", "f1")
SCORE_FORMAT = "%.6f"  # precision, recall and F1 in per_class.csv


def per_class_table(cm, class_names: Sequence[str]) -> dict[str, list]:
    """Support, precision, recall and F1 per class, then "macro avg" and "weighted avg" rows.

    Columns (PER_CLASS_COLUMNS, in order): class (None on the average rows), name, support
    (true count), precision, recall, f1. A class never predicted has precision 0.0; a class
    absent from the targets has recall 0.0; f1 is 0.0 where precision + recall is 0
    (scikit-learn's zero_division=0). "macro avg" is the plain mean over all classes,
    "weighted avg" weighs each class by its support; both rows give the total support.
    """
    cm = _checked(cm, class_names)
    total = _total(cm)
    hits = np.diag(cm).astype(np.float64)
    support = cm.sum(axis=1)
    precision = _ratio(hits, cm.sum(axis=0))
    recall = _ratio(hits, support)
    f1 = _ratio(2 * precision * recall, precision + recall)
    scores = np.column_stack([precision, recall, f1])
    macro = scores.mean(axis=0)
    weighted = support @ scores / total
    n = cm.shape[0]
    return {
        "class": [*range(n), None, None],
        "name": [str(name) for name in class_names] + ["macro avg", "weighted avg"],
        "support": np.append(support, [total, total]).tolist(),
        "precision": np.append(precision, [macro[0], weighted[0]]).tolist(),
        "recall": np.append(recall, [macro[1], weighted[1]]).tolist(),
        "f1": np.append(f1, [macro[2], weighted[2]]).tolist(),
    }


def per_class_csv(table: dict[str, list]) -> str:
    """A `per_class_table` as CSV text: scores to six decimals, no class on the average rows."""
    rows = (
        ["" if cls is None else cls, name, support, *(SCORE_FORMAT % v for v in scores)]
        for cls, name, support, *scores in zip(
            *(table[column] for column in PER_CLASS_COLUMNS), strict=True
        )
    )
    return csv_text(PER_CLASS_COLUMNS, rows)
