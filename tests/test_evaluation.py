"""score counts what the prediction file says; pick_pictures picks the right rows to show."""

import dataclasses
import hashlib
import json
import re
import shutil
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mnist_pipeline.evaluation import score, write_scores
from mnist_pipeline.inference import PredictionError, prediction_schema
from mnist_pipeline.metrics import MetricsError
from mnist_pipeline.pictures import pick_pictures, write_pictures

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
    pq.write_table(pa.table(columns, schema=prediction_schema()), folder / "p.parquet")
    return folder, images.reshape(ROWS, 784), labels, predicted


CLASSES = [str(i) for i in range(10)]
MISTAKES = [3, 70, 71, 499]


def test_scores_count_what_the_predictions_say(data):
    folder, *_ = data
    s = score([folder / "p.parquet"], folder / "t.parquet", CLASSES)
    assert s.summary == {"correct": ROWS - 4, "total": ROWS, "accuracy": (ROWS - 4) / ROWS}
    assert s.confusion.sum() == ROWS and np.trace(s.confusion) == ROWS - 4


def test_scores_decode_only_the_checked_columns(data, monkeypatch):
    """The probabilities do not count: the scores never decompress them."""
    folder, *_ = data
    asked = []
    original = pq.ParquetFile.iter_batches

    def spy(self, *args, **kwargs):
        asked.append(kwargs.get("columns"))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(pq.ParquetFile, "iter_batches", spy)
    s = score([folder / "p.parquet"], folder / "t.parquet", CLASSES)
    assert asked == [["index", "target", "predicted"]]
    assert s.summary["correct"] == ROWS - 4


def test_scoring_loads_neither_pandas_nor_matplotlib(data, tmp_path):
    """The job that scores a split pays for neither import; it writes the same files."""
    folder, *_ = data
    weights = tmp_path / "w.npz"
    weights.write_bytes(b"weights")
    code = (
        "import sys\n"
        "from types import SimpleNamespace\n"
        "from mnist_pipeline.evaluation import score, write_scores\n"
        f"s = score([{str(folder / 'p.parquet')!r}], {str(folder / 't.parquet')!r}, "
        f"{CLASSES!r})\n"
        f"out = SimpleNamespace(accuracy={str(tmp_path / 'a.json')!r}, "
        f"per_class={str(tmp_path / 'p.csv')!r}, confusion_csv={str(tmp_path / 'c.csv')!r})\n"
        f"write_scores(s, out, {{'dataset': 'mnist', 'split': 'test'}}, {str(weights)!r})\n"
        "assert not {'pandas', 'matplotlib'} & set(sys.modules), sorted(sys.modules)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    assert (tmp_path / "p.csv").read_text().startswith("class,name,support,precision")


def test_scores_and_pictures_read_the_shards_in_order(data, tmp_path):
    """Three shards of the predictions count and show what the one file does."""
    folder, images, labels, _ = data
    whole = pq.read_table(folder / "p.parquet")
    shards = [tmp_path / f"{i + 1}-of-3.parquet" for i in range(3)]
    for shard, (start, stop) in zip(shards, [(0, 166), (166, 333), (333, ROWS)], strict=True):
        pq.write_table(whole.slice(start, stop - start), shard)
    one = score([folder / "p.parquet"], folder / "t.parquet", CLASSES)
    three = score(shards, folder / "t.parquet", CLASSES)
    np.testing.assert_array_equal(three.confusion, one.confusion)
    p = pick_pictures(shards, folder / "t.parquet")
    np.testing.assert_array_equal(p.wrong_images, images[MISTAKES])
    np.testing.assert_array_equal(p.sample_labels, labels[:25])
    swapped = f"{shards[2]}: the row for table row 166 has index 333"
    with pytest.raises(PredictionError, match=re.escape(swapped)):
        score([shards[0], shards[2], shards[1]], folder / "t.parquet", CLASSES)


def test_pictures_show_the_first_images_and_the_first_mistakes(data):
    folder, images, labels, predicted = data
    p = pick_pictures([folder / "p.parquet"], folder / "t.parquet")
    np.testing.assert_array_equal(p.wrong_images, images[MISTAKES])
    np.testing.assert_array_equal(p.wrong_target, labels[MISTAKES])
    np.testing.assert_array_equal(p.wrong_predicted, predicted[MISTAKES])
    np.testing.assert_allclose(p.wrong_confidence, 0.91)
    np.testing.assert_array_equal(p.sample_images, images[:25])
    np.testing.assert_array_equal(p.sample_labels, labels[:25])


def test_pictures_read_the_predictions_only_until_their_mistakes(data, monkeypatch):
    """With two mistakes to show, found by row 70, reading stops in the second batch of 64."""
    folder, images, _, _ = data
    monkeypatch.setattr("mnist_pipeline.inference.READ_ROWS", 64)
    read = []
    original = pq.ParquetFile.iter_batches

    def spy(self, *args, **kwargs):
        for batch in original(self, *args, **kwargs):
            read.append(batch.num_rows)
            yield batch

    monkeypatch.setattr(pq.ParquetFile, "iter_batches", spy)
    p = pick_pictures([folder / "p.parquet"], folder / "t.parquet", pictures=2)
    np.testing.assert_array_equal(p.wrong_images, images[[3, 70]])
    assert read == [64, 64]


def test_the_reports_record_where_the_numbers_came_from(data, tmp_path):
    folder, *_ = data
    s = score([folder / "p.parquet"], folder / "t.parquet", CLASSES)
    weights = tmp_path / "w.npz"
    weights.write_bytes(b"weights")
    names = ["accuracy", "per_class", "confusion_csv"]
    outputs = SimpleNamespace(**{n: tmp_path / "report" / n for n in names})
    about = {"dataset": "mnist", "split": "test", "weights": str(weights), "batch_size": 7}
    write_scores(s, outputs, about, weights)
    assert sorted(p.name for p in (tmp_path / "report").iterdir()) == sorted(names)
    accuracy = json.loads(outputs.accuracy.read_text())
    assert accuracy == {
        **about,
        "correct": ROWS - 4,
        "total": ROWS,
        "accuracy": (ROWS - 4) / ROWS,
        "weights_sha256": hashlib.sha256(b"weights").hexdigest(),
    }
    p = pick_pictures([folder / "p.parquet"], folder / "t.parquet")
    pictures = SimpleNamespace(
        samples=tmp_path / "report/s.png",
        misclassified=tmp_path / "m.png",
        confusion_png=tmp_path / "report/c.png",
    )
    write_pictures(p, s, pictures, about)
    assert sorted(p.name for p in (tmp_path / "report").iterdir()) == sorted(
        [*names, "s.png", "c.png"]
    )
    for picture in (pictures.misclassified, pictures.confusion_png):
        assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_confusion_pictures_title_gives_the_counts_beside_the_rounded_accuracy(
    data, tmp_path, monkeypatch
):
    """To four places alone, 59,997 right of 60,000 would read as a perfect 1.0000."""
    folder, *_ = data
    titles = []
    monkeypatch.setattr(
        "mnist_pipeline.pictures.plot_confusion_matrix",
        lambda cm, names, path, title: titles.append(title),
    )
    s = score([folder / "p.parquet"], folder / "t.parquet", CLASSES)
    near = dataclasses.replace(
        s, summary={**s.summary, "correct": 59_997, "total": 60_000, "accuracy": 59_997 / 60_000}
    )
    p = pick_pictures([folder / "p.parquet"], folder / "t.parquet")
    pictures = SimpleNamespace(**{n: tmp_path / f"{n}.png" for n in ("samples", "misclassified")})
    pictures.confusion_png = tmp_path / "c.png"
    for scores in (s, near):
        write_pictures(p, scores, pictures, {"dataset": "mnist", "split": "test"})
    assert titles == [
        f"mnist test: accuracy {(ROWS - 4) / ROWS:.4f} ({ROWS - 4:,}/{ROWS:,})",
        "mnist test: accuracy 1.0000 (59,997/60,000)",
    ]


def test_evaluation_reads_the_predictions_in_batches(data, monkeypatch):
    """Scores and pictures come out the same when the predictions are read 64 rows at a time."""
    folder, images, labels, _ = data
    whole = score([folder / "p.parquet"], folder / "t.parquet", CLASSES)
    monkeypatch.setattr("mnist_pipeline.inference.READ_ROWS", 64)
    batched = score([folder / "p.parquet"], folder / "t.parquet", CLASSES)
    np.testing.assert_array_equal(batched.confusion, whole.confusion)
    p = pick_pictures([folder / "p.parquet"], folder / "t.parquet")
    np.testing.assert_array_equal(p.wrong_images, images[MISTAKES])
    np.testing.assert_array_equal(p.sample_labels, labels[:25])


def broken(folder, tmp_path, edit):
    """A copy of the predictions with `edit` applied to its table (or its bytes)."""
    path = tmp_path / "p.parquet"
    shutil.copy(folder / "p.parquet", path)
    if isinstance(edit, slice):
        path.write_bytes(path.read_bytes()[edit])
    else:
        pq.write_table(edit(pq.read_table(path)), path)
    return path


def with_target(t, rows, values):
    target = t["target"].to_numpy().copy()
    target[rows] = values
    return t.set_column(1, "target", pa.array(target))


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: t.slice(0, ROWS - 1), "499 rows, expected 500 (shard 1-of-1: rows 0..499"),
        (lambda t: t.slice(0, 0), "0 rows, expected 500"),
        (lambda t: pa.concat_tables([t, t.slice(0, 3)]), "503 rows, expected 500"),
        (
            lambda t: t.take(np.r_[0:100, 101, 100, 102:ROWS]),
            "the row for table row 100 has index 101: rows are missing, repeated or out of order",
        ),
        (
            lambda t: pa.concat_tables([t.slice(0, 10), t.slice(11), t.slice(0, 1)]),
            "the row for table row 10 has index 11",
        ),
        (
            lambda t: with_target(t, [250], 10),
            "row 250 has target 10, but row 250 of",
        ),
        (lambda t: t.drop_columns(["prob9"]), "expected prediction columns"),
        (slice(0, -20), "not a readable Parquet file"),
        (slice(0, 0), "not a readable Parquet file"),
    ],
)
def test_predictions_that_are_not_exactly_the_tables_rows_are_refused(
    data, tmp_path, edit, message
):
    folder, *_ = data
    path = broken(folder, tmp_path, edit)
    pattern = re.escape(f"{path}: {message}") + r".*Delete it and rerun, so it is made again\."
    with pytest.raises(PredictionError, match=pattern):
        score([path], folder / "t.parquet", CLASSES)


def test_a_split_without_rows_is_refused_naming_its_table(tmp_path):
    table = write_pixel_table(tmp_path / "t.parquet", *random_split(0))
    path = tmp_path / "p.parquet"
    pq.write_table(prediction_schema().empty_table(), path)
    pattern = re.escape(f"{table}: no rows to score") + r".*hold no images"
    with pytest.raises(MetricsError, match=pattern):
        score([path], table, CLASSES)


def test_predictions_of_another_table_are_refused(data, tmp_path):
    """Same row count, but other targets: the predictions of another split or dataset."""
    folder, _, labels, _ = data
    other_images, other_labels = random_split(ROWS, seed=12)
    other = write_pixel_table(tmp_path / "other.parquet", other_images, other_labels)
    first = int(np.flatnonzero(other_labels != labels)[0])
    pattern = (
        re.escape(
            f"{folder / 'p.parquet'}: row {first} has target {labels[first]}, but row {first} of "
            f"{other} has target {other_labels[first]} ("
        )
        + r"\d+ of rows 0\.\.499 differ\): these are not predictions of this table\."
    )
    with pytest.raises(PredictionError, match=pattern):
        score([folder / "p.parquet"], other, CLASSES)
    with pytest.raises(PredictionError, match=pattern):
        pick_pictures([folder / "p.parquet"], other)
