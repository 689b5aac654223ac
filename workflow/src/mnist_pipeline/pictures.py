"""The pictures of a split: its first images, and the first it misclassified, from the prediction
shards and the table, reading of each only as far as the images shown; and its confusion matrix.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from .arrays import arrow, values
from .dims import CLASSES
from .evaluation import Scores
from .inference import prediction_schema, prob_columns, shard_batches
from .plots import plot_confusion_matrix, plot_misclassified, plot_samples
from .tables import take_rows

PICTURES = 25


@dataclass(frozen=True)
class Pictures:
    """The images the pictures show: the first of the split, and the first misclassified."""

    sample_images: np.ndarray
    sample_labels: np.ndarray
    wrong_images: np.ndarray
    wrong_target: np.ndarray
    wrong_predicted: np.ndarray
    wrong_confidence: np.ndarray


def pick_pictures(
    shards: Sequence[str | Path],
    table: str | Path,
    classes: int = CLASSES,
    pictures: int = PICTURES,
) -> Pictures:
    """The first `pictures` images of `table` and its first `pictures` misclassified ones, from
    the predictions of a network of `classes` outputs: its shard files in order (or the one
    gathered file).

    Reads the predictions (checked as they are read, as everywhere) only until those mistakes
    are found, and of the table only the row groups that hold the images shown.
    """
    first: list[np.ndarray] = []  # the targets of the first `pictures` rows
    wrong: list[pa.RecordBatch] = []  # the first `pictures` misclassified rows
    rows = found = 0
    for batch in shard_batches(shards, table, classes):
        target = values(batch.column("target"))
        predicted = values(batch.column("predicted"))
        first.append(target[: max(pictures - rows, 0)])
        mistakes = np.flatnonzero(target != predicted)[: pictures - found]
        wrong.append(batch.take(arrow(mistakes)))
        found += len(mistakes)
        rows += batch.num_rows
        if found == pictures and rows >= pictures:
            break
    wrong_rows = pa.Table.from_batches(wrong, schema=prediction_schema(classes))
    probs = np.stack([values(wrong_rows[name]) for name in prob_columns(classes)], axis=1)
    sample_labels = np.concatenate([np.empty(0, dtype=np.uint8), *first])
    samples, wrong_index = np.arange(len(sample_labels)), values(wrong_rows["index"])
    # One read of the table for both: the first mistakes are mostly in the samples' row group.
    shown = np.union1d(samples, wrong_index)
    images = take_rows(table, shown)
    return Pictures(
        sample_images=images[np.searchsorted(shown, samples)],
        sample_labels=sample_labels,
        wrong_images=images[np.searchsorted(shown, wrong_index)],
        wrong_target=values(wrong_rows["target"]),
        wrong_predicted=values(wrong_rows["predicted"]),
        wrong_confidence=probs.max(axis=1, initial=0),
    )


def write_pictures(
    pictures: Pictures, scores: Scores, outputs: Any, about: Mapping[str, Any]
) -> None:
    """Write samples, misclassified and confusion_png, as named by `outputs`."""
    p = pictures
    classes = scores.classes
    title = f"{about['dataset']} {about['split']}"
    plot_samples(
        p.sample_images, p.sample_labels, classes, outputs.samples, f"{title}: first images"
    )
    plot_misclassified(
        p.wrong_images,
        p.wrong_target,
        p.wrong_predicted,
        p.wrong_confidence,
        classes,
        outputs.misclassified,
        f"{title}: misclassified",
    )
    plot_confusion_matrix(
        scores.confusion,
        classes,
        outputs.confusion_png,
        _accuracy_title(title, scores.summary),
    )


def _accuracy_title(title: str, summary: Mapping[str, Any]) -> str:
    """The accuracy with its counts: to four places alone, 59,997 of 60,000 would read 1.0000."""
    return (
        f"{title}: accuracy {summary['accuracy']:.4f} ({summary['correct']:,}/{summary['total']:,})"
    )
