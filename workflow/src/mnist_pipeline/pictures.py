"""The pictures of a split: its first images, and the first it misclassified, from the prediction
file and the table, reading of each only as far as the images shown."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from .dims import CLASSES
from .inference import checked_predictions, prediction_schema, prob_columns
from .plots import plot_misclassified, plot_samples
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
    predictions: str | Path, table: str | Path, classes: int = CLASSES, pictures: int = PICTURES
) -> Pictures:
    """The first `pictures` images of `table` and its first `pictures` misclassified ones, from
    the predictions of a network of `classes` outputs.

    Reads the predictions (checked as they are read, as everywhere) only until those mistakes
    are found, and of the table only the row groups that hold the images shown.
    """
    first: list[np.ndarray] = []  # the targets of the first `pictures` rows
    wrong: list[pa.RecordBatch] = []  # the first `pictures` misclassified rows
    rows = found = 0
    for batch in checked_predictions(predictions, table, classes=classes):
        target = batch.column("target").to_numpy()
        predicted = batch.column("predicted").to_numpy()
        first.append(target[: max(pictures - rows, 0)])
        mistakes = np.flatnonzero(target != predicted)[: pictures - found]
        wrong.append(batch.take(pa.array(mistakes)))
        found += len(mistakes)
        rows += batch.num_rows
        if found == pictures and rows >= pictures:
            break
    wrong_rows = pa.Table.from_batches(wrong, schema=prediction_schema(classes))
    probs = np.stack([wrong_rows[name].to_numpy() for name in prob_columns(classes)], axis=1)
    sample_labels = np.concatenate([np.empty(0, dtype=np.uint8), *first])
    return Pictures(
        sample_images=take_rows(table, np.arange(len(sample_labels))),
        sample_labels=sample_labels,
        wrong_images=take_rows(table, wrong_rows["index"].to_numpy()),
        wrong_target=wrong_rows["target"].to_numpy(),
        wrong_predicted=wrong_rows["predicted"].to_numpy(),
        wrong_confidence=probs.max(axis=1, initial=0),
    )


def write_pictures(
    pictures: Pictures, classes: Sequence[str], outputs: Any, about: Mapping[str, Any]
) -> None:
    """Write samples and misclassified, as named by `outputs`."""
    p = pictures
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
