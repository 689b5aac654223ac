"""evaluate picks the right rows for the pictures and scores what the prediction file says."""

import hashlib
import json
from types import SimpleNamespace

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mnist_pipeline.evaluation import evaluate, take_rows, write_report
from mnist_pipeline.inference import PREDICTION_SCHEMA

from idxgen import random_split, write_pixel_table

ROWS = 500


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("eval")
    images, labels = random_split(ROWS, seed=11)
    write_pixel_table(folder / "t.parquet", images, labels)
    predicted = labels.copy()
    predicted[[3, 70, 71, 499]] = (labels[[3, 70, 71, 499]] + 1) % 10
    probs = np.full((ROWS, 10), 0.01, dtype=np.float32)
    probs[np.arange(ROWS), predicted] = 0.91
    columns = [np.arange(ROWS), labels, predicted, *probs.T]
    pq.write_table(pa.table(columns, schema=PREDICTION_SCHEMA), folder / "p.parquet")
    return folder, images.reshape(ROWS, 784), labels, predicted


@pytest.mark.parametrize("rows", [[], [0], [5, 63, 64, 65, 499], list(range(0, ROWS, 7))])
def test_take_rows_reads_exactly_the_asked_rows_across_batches(data, rows):
    folder, images, _, _ = data
    rows = np.array(rows, dtype=np.int64)
    np.testing.assert_array_equal(
        take_rows(folder / "t.parquet", rows, batch_rows=64), images[rows]
    )


def test_evaluation_scores_the_predictions_and_picks_the_mistakes(data):
    folder, images, labels, predicted = data
    e = evaluate(folder / "p.parquet", folder / "t.parquet", [str(i) for i in range(10)])
    assert e.summary == {"correct": ROWS - 4, "total": ROWS, "accuracy": (ROWS - 4) / ROWS}
    assert e.confusion.sum() == ROWS and np.trace(e.confusion) == ROWS - 4
    np.testing.assert_array_equal(e.wrong_images, images[[3, 70, 71, 499]])
    np.testing.assert_array_equal(e.wrong_target, labels[[3, 70, 71, 499]])
    np.testing.assert_array_equal(e.wrong_predicted, predicted[[3, 70, 71, 499]])
    np.testing.assert_allclose(e.wrong_confidence, 0.91)
    np.testing.assert_array_equal(e.sample_images, images[:25])


def test_the_report_records_where_the_numbers_came_from(data, tmp_path):
    folder, *_ = data
    e = evaluate(folder / "p.parquet", folder / "t.parquet", [str(i) for i in range(10)])
    weights = tmp_path / "w.npz"
    weights.write_bytes(b"weights")
    names = ["accuracy", "per_class", "confusion_csv", "confusion_png", "samples", "misclassified"]
    outputs = SimpleNamespace(**{n: tmp_path / "report" / n for n in names})
    about = {"dataset": "mnist", "split": "test", "weights": str(weights), "batch_size": 7}
    write_report(e, outputs, about, weights)
    accuracy = json.loads(outputs.accuracy.read_text())
    assert accuracy == {
        **about,
        "correct": ROWS - 4,
        "total": ROWS,
        "accuracy": (ROWS - 4) / ROWS,
        "weights_sha256": hashlib.sha256(b"weights").hexdigest(),
    }
    assert sorted(p.name for p in (tmp_path / "report").iterdir()) == sorted(names)
