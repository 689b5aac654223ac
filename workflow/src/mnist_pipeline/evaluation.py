"""Score the predictions of a split: accuracy, per-class metrics and the confusion matrix.

No pandas and no matplotlib here: the job that scores a split reads three columns and writes
text. The pictures, the confusion matrix's among them, are drawn by another job
(mnist_pipeline.pictures)."""

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .arrays import values
from .atomic import atomic_path
from .digest import sha256_of
from .inference import CHECKED_COLUMNS, shard_batches
from .metrics import (
    MetricsError,
    accuracy_summary,
    confusion_csv,
    confusion_matrix,
    per_class_csv,
    per_class_table,
)


@dataclass(frozen=True)
class Scores:
    """What the predictions of a whole split count up to."""

    classes: list[str]
    confusion: np.ndarray
    summary: dict[str, Any]
    per_class: dict[str, list]  # metrics.per_class_table


def score(shards: Sequence[str | Path], table: str | Path, classes: Sequence[str]) -> Scores:
    """Count the predictions of `table`, from its shard files in order (or the one gathered
    file): confusion matrix, accuracy and per-class metrics.

    The predictions must be exactly the table's rows in order, with the table's targets and one
    probability column per class (see `shard_batches`); they are checked as they are read, in
    batches, so memory does not grow with the table. Of their columns only the checked ones are
    decoded: the probabilities do not count.
    """
    n_classes = len(classes)
    confusion = np.zeros((n_classes, n_classes), dtype=np.int64)
    for batch in shard_batches(shards, table, n_classes, columns=CHECKED_COLUMNS):
        target = values(batch.column("target"))
        predicted = values(batch.column("predicted"))
        confusion += confusion_matrix(target, predicted, n_classes)
    if not confusion.any():  # the predictions were checked to be the table's rows: it has none
        raise MetricsError(
            f"{os.fspath(table)}: no rows to score, so accuracy and the per-class scores are "
            "undefined: the split's archives hold no images. Check the archives the config names "
            "for this split, or leave the split out of the config key 'splits'."
        )
    return Scores(
        classes=list(classes),
        confusion=confusion,
        summary=accuracy_summary(confusion),
        per_class=per_class_table(confusion, classes),
    )


def write_scores(
    scores: Scores, outputs: Any, about: Mapping[str, Any], weights: str | Path
) -> None:
    """Write accuracy, per_class and confusion_csv, as named by `outputs`."""
    accuracy = {**about, **scores.summary, "weights_sha256": sha256_of(weights)}
    texts = {
        outputs.accuracy: json.dumps(accuracy, indent=2) + "\n",
        outputs.per_class: per_class_csv(scores.per_class),
        outputs.confusion_csv: confusion_csv(scores.confusion, scores.classes),
    }
    for path, text in texts.items():
        with atomic_path(path) as tmp:
            tmp.write_text(text, encoding="utf-8")
