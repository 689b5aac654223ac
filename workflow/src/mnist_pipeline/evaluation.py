"""Score a prediction file: accuracy, per-class metrics and the confusion matrix.

The pictures of its images are drawn by another job (mnist_pipeline.pictures)."""

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .atomic import atomic_path
from .digest import sha256_of
from .inference import checked_predictions
from .metrics import accuracy_summary, confusion_frame, confusion_matrix, per_class_table
from .plots import plot_confusion_matrix


@dataclass(frozen=True)
class Scores:
    """What the predictions of a whole split count up to."""

    classes: list[str]
    confusion: np.ndarray
    summary: dict[str, Any]
    per_class: pd.DataFrame


def score(predictions: str | Path, table: str | Path, classes: Sequence[str]) -> Scores:
    """Count the predictions of `table`: confusion matrix, accuracy and per-class metrics.

    The predictions must be exactly the table's rows in order, with the table's targets and one
    probability column per class; they are checked as they are read, in batches, so memory does
    not grow with the table.
    """
    n_classes = len(classes)
    confusion = np.zeros((n_classes, n_classes), dtype=np.int64)
    for batch in checked_predictions(predictions, table, classes=n_classes):
        target = batch.column("target").to_numpy()
        predicted = batch.column("predicted").to_numpy()
        confusion += confusion_matrix(target, predicted, n_classes)
    return Scores(
        classes=list(classes),
        confusion=confusion,
        summary=accuracy_summary(confusion),
        per_class=per_class_table(confusion, classes),
    )


def write_scores(
    scores: Scores, outputs: Any, about: Mapping[str, Any], weights: str | Path
) -> None:
    """Write accuracy, per_class, confusion_csv and confusion_png, as named by `outputs`."""
    accuracy = {**about, **scores.summary, "weights_sha256": sha256_of(weights)}
    with atomic_path(outputs.accuracy) as tmp:
        tmp.write_text(json.dumps(accuracy, indent=2) + "\n")
    with atomic_path(outputs.per_class) as tmp:
        scores.per_class.to_csv(tmp, index=False, float_format="%.6f")
    with atomic_path(outputs.confusion_csv) as tmp:
        confusion_frame(scores.confusion, scores.classes).to_csv(tmp)
    plot_confusion_matrix(
        scores.confusion,
        scores.classes,
        outputs.confusion_png,
        f"{about['dataset']} {about['split']}: accuracy {scores.summary['accuracy']:.4f}",
    )
