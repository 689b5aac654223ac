"""Evaluate a prediction file: accuracy, per-class metrics, confusion matrix and pictures."""

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from .atomic import atomic_path
from .digest import sha256_of
from .dims import PIXELS
from .inference import checked_predictions, prediction_schema, prob_columns
from .metrics import accuracy_summary, confusion_frame, confusion_matrix, per_class_table
from .plots import plot_confusion_matrix, plot_misclassified, plot_samples
from .tables import iter_batches

PICTURES = 25


@dataclass(frozen=True)
class Evaluation:
    classes: list[str]
    confusion: np.ndarray
    summary: dict[str, Any]
    per_class: pd.DataFrame
    sample_images: np.ndarray
    sample_labels: np.ndarray
    wrong_images: np.ndarray
    wrong_target: np.ndarray
    wrong_predicted: np.ndarray
    wrong_confidence: np.ndarray


def evaluate(
    predictions: str | Path, table: str | Path, classes: Sequence[str], pictures: int = PICTURES
) -> Evaluation:
    """Score the predictions of `table` and pick the images the pictures show.

    The predictions must be exactly the table's rows in order, with the table's targets and one
    probability column per class; they are checked as they are read, in batches, so memory does
    not grow with the table.
    """
    n_classes = len(classes)
    confusion = np.zeros((n_classes, n_classes), dtype=np.int64)
    first: list[np.ndarray] = []  # the targets of the first `pictures` rows
    wrong: list[pa.RecordBatch] = []  # the first `pictures` misclassified rows
    rows = found = 0
    for batch in checked_predictions(predictions, table, classes=n_classes):
        target = batch.column("target").to_numpy()
        predicted = batch.column("predicted").to_numpy()
        confusion += confusion_matrix(target, predicted, n_classes)
        first.append(target[: max(pictures - rows, 0)])
        mistakes = np.flatnonzero(target != predicted)[: pictures - found]
        wrong.append(batch.take(pa.array(mistakes)))
        found += len(mistakes)
        rows += batch.num_rows
    wrong_rows = pa.Table.from_batches(wrong, schema=prediction_schema(n_classes))
    probs = np.stack([wrong_rows[name].to_numpy() for name in prob_columns(n_classes)], axis=1)
    sample_labels = np.concatenate([np.empty(0, dtype=np.uint8), *first])
    return Evaluation(
        classes=list(classes),
        confusion=confusion,
        summary=accuracy_summary(confusion),
        per_class=per_class_table(confusion, classes),
        sample_images=take_rows(table, np.arange(len(sample_labels))),
        sample_labels=sample_labels,
        wrong_images=take_rows(table, wrong_rows["index"].to_numpy()),
        wrong_target=wrong_rows["target"].to_numpy(),
        wrong_predicted=wrong_rows["predicted"].to_numpy(),
        wrong_confidence=probs.max(axis=1, initial=0),
    )


def take_rows(table: str | Path, rows: np.ndarray, batch_rows: int = 10_000) -> np.ndarray:
    """Pixels (len(rows), 784) of the given ascending rows, reading no further than needed."""
    out = np.empty((len(rows), PIXELS), dtype=np.uint8)
    if len(rows) == 0:
        return out
    offset = 0
    for x, _ in iter_batches(table, batch_rows, 0, int(rows[-1]) + 1):
        lo, hi = np.searchsorted(rows, [offset, offset + len(x)])
        out[lo:hi] = x[rows[lo:hi] - offset]
        offset += len(x)
    return out


def write_report(
    evaluation: Evaluation,
    outputs: Any,
    about: Mapping[str, Any],
    weights: str | Path,
) -> None:
    """Write the report files named by `outputs` (accuracy, per_class, confusion_csv, ...)."""
    e = evaluation
    accuracy = {**about, **e.summary, "weights_sha256": sha256_of(weights)}
    with atomic_path(outputs.accuracy) as tmp:
        tmp.write_text(json.dumps(accuracy, indent=2) + "\n")
    with atomic_path(outputs.per_class) as tmp:
        e.per_class.to_csv(tmp, index=False, float_format="%.6f")
    with atomic_path(outputs.confusion_csv) as tmp:
        confusion_frame(e.confusion, e.classes).to_csv(tmp)
    title = f"{about['dataset']} {about['split']}"
    plot_confusion_matrix(
        e.confusion,
        e.classes,
        outputs.confusion_png,
        f"{title}: accuracy {e.summary['accuracy']:.4f}",
    )
    plot_samples(
        e.sample_images, e.sample_labels, e.classes, outputs.samples, f"{title}: first images"
    )
    plot_misclassified(
        e.wrong_images,
        e.wrong_target,
        e.wrong_predicted,
        e.wrong_confidence,
        e.classes,
        outputs.misclassified,
        f"{title}: misclassified",
    )
