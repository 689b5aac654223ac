"""Evaluate a prediction file: accuracy, per-class metrics, confusion matrix and pictures."""

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from .atomic import atomic_path
from .dims import PIXELS
from .inference import PROB_COLUMNS
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
    """Score the predictions of `table` and pick the images the pictures show."""
    columns = pq.read_table(predictions, columns=["target", "predicted", *PROB_COLUMNS])
    target = columns["target"].to_numpy()
    predicted = columns["predicted"].to_numpy()
    cm = confusion_matrix(target, predicted, len(classes))
    wrong = np.flatnonzero(target != predicted)[:pictures]
    confidence = np.stack([columns[name].to_numpy() for name in PROB_COLUMNS], axis=1).max(axis=1)
    samples = np.arange(min(pictures, len(target)))
    return Evaluation(
        classes=list(classes),
        confusion=cm,
        summary=accuracy_summary(cm),
        per_class=per_class_table(cm, classes),
        sample_images=take_rows(table, samples),
        sample_labels=target[samples],
        wrong_images=take_rows(table, wrong),
        wrong_target=target[wrong],
        wrong_predicted=predicted[wrong],
        wrong_confidence=confidence[wrong],
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


def sha256_of(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
