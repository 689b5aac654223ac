"""Batched inference: shards and batch sizes change how the work is cut, never the predictions."""

import functools
import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from mnist_pipeline import inference
from mnist_pipeline.evaluation import score
from mnist_pipeline.inference import (
    CHECKED_COLUMNS,
    PredictionError,
    checked_predictions,
    gather_predictions,
    parse_shard,
    predict_batches,
    predict_shard,
    prediction_schema,
    shard_batches,
    shard_rows,
    write_parquet,
)
from mnist_pipeline.network import SHAPES
from mnist_pipeline.progress import Progress

from idxgen import damage_page, random_split, write_pixel_table

ROWS = 1000


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    return write_pixel_table(
        tmp_path_factory.mktemp("table") / "test.parquet", *random_split(ROWS, seed=5)
    )


@pytest.fixture(scope="module")
def weights():
    rng = np.random.default_rng(7)
    return {k: rng.normal(0, 0.1, size=s).astype(np.float32) for k, s in SHAPES.items()}


@pytest.fixture(scope="module", params=["C", "F"])
def either_weights(request, weights):
    """The weights in either memory order: the book's pickle holds W1 in Fortran order, with
    which BLAS once gave rows 96..99 of each hundred other bits in batches of 7."""
    return {k: np.asarray(v, order=request.param) for k, v in weights.items()}


def predictions(table, weights, batch_rows):
    return pa.Table.from_batches(list(predict_batches(table, weights, batch_rows))).to_pandas()


@pytest.mark.parametrize("batch_rows", [1, 7, 99, 100, 101, 1000, 10_000])
def test_predictions_do_not_depend_on_batch_size_bit_for_bit(table, either_weights, batch_rows):
    reference = predictions(table, either_weights, 333)
    result = predictions(table, either_weights, batch_rows)
    pd.testing.assert_frame_equal(result, reference, check_exact=True)
    np.testing.assert_array_equal(result["index"], np.arange(ROWS))


@pytest.mark.parametrize("batch_rows", [7, 100])
def test_predictions_do_not_depend_on_the_threads_bit_for_bit(
    table, weights, tmp_path, monkeypatch, batch_rows
):
    monkeypatch.setattr(inference, "RUN_ROWS", 64)  # many runs, taken by the threads in turn
    files = [tmp_path / f"{threads}.parquet" for threads in (1, 2, 3)]
    for threads, path in enumerate(files, start=1):
        predict_shard(table, weights, batch_rows, 0, 1, path, threads=threads)
        streamed = predict_batches(table, weights, batch_rows, threads=threads)
        assert [batch.num_rows for batch in streamed] == [batch_rows] * (ROWS // batch_rows) + (
            [ROWS % batch_rows] if ROWS % batch_rows else []
        )
    reference = pa.Table.from_batches(list(predict_batches(table, weights, 333)))
    for path in files:
        assert pq.read_table(path).equals(reference)


def test_probabilities_are_a_distribution_and_predicted_is_their_argmax(table, weights):
    result = predictions(table, weights, 256)
    probs = result.iloc[:, 3:].to_numpy()
    assert probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(axis=1), 1, atol=1e-5)
    np.testing.assert_array_equal(result["predicted"], probs.argmax(axis=1))


def test_tied_classes_predict_the_first_and_blank_images_are_predicted(tmp_path):
    """Classes 2 and 7 share their weights and outrank the others: every row's probabilities
    tie between them, bit for bit, and `predicted` is the first, 2, as the book's np.argmax
    picks it. All-black and all-white images get what the book's forward pass gives them."""
    images, labels = random_split(150, seed=8)
    images[0], images[1] = 0, 255
    table = write_pixel_table(tmp_path / "t.parquet", images, labels)
    rng = np.random.default_rng(9)
    weights = {k: rng.normal(0, 0.1, s).astype(np.float32) for k, s in SHAPES.items()}
    weights["W3"][:, 7] = weights["W3"][:, 2]
    weights["b3"][[2, 7]] = 10
    result = predictions(table, weights, 7)
    probs = result.iloc[:, 3:].to_numpy()
    assert (probs[:, 2] == probs[:, 7]).all()
    assert (result["predicted"] == 2).all()
    # The book's predict in float64: x / 255, sigmoid, sigmoid, softmax.
    x = images.reshape(len(images), -1) / 255.0
    w = {k: v.astype(np.float64) for k, v in weights.items()}
    z1 = 1 / (1 + np.exp(-(x @ w["W1"] + w["b1"])))
    z2 = 1 / (1 + np.exp(-(z1 @ w["W2"] + w["b2"])))
    a3 = z2 @ w["W3"] + w["b3"]
    book = np.exp(a3 - a3.max(axis=1, keepdims=True))
    book /= book.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(probs, book, rtol=0, atol=1e-6)


def predict_parts(folder, table, weights, shards, batch_rows=100):
    parts = [folder / f"{shard + 1}-of-{shards}.parquet" for shard in range(shards)]
    for shard, part in enumerate(parts):
        predict_shard(table, weights, batch_rows, shard, shards, part)
    return parts


@pytest.mark.parametrize(("shards", "batch_rows"), [(1, 1000), (3, 7), (7, 100), (2, 1)])
def test_shards_gather_into_the_same_files_as_one_job(
    table, either_weights, tmp_path, shards, batch_rows
):
    weights = either_weights
    parts = predict_parts(tmp_path, table, weights, shards, batch_rows)
    rows = gather_predictions(parts, table, tmp_path / "all.parquet", tmp_path / "all.csv")
    assert rows == ROWS
    gathered = pq.read_table(tmp_path / "all.parquet")
    reference = pa.Table.from_batches(list(predict_batches(table, weights, 100)))
    assert gathered.equals(reference)  # bit for bit, whatever the shards and batch size
    # The CSV holds the same values: each probability's text reads back as its float32 bits.
    expected = reference.to_pandas()
    from_csv = pd.read_csv(tmp_path / "all.csv")
    assert list(from_csv.columns) == prediction_schema().names
    pd.testing.assert_frame_equal(from_csv.astype(expected.dtypes), expected, check_exact=True)


@pytest.mark.parametrize(("total", "shards"), [(10, 3), (3, 5), (0, 2), (10_000, 4)])
def test_shards_cover_every_row_once_in_order(total, shards):
    ranges = [shard_rows(total, i, shards) for i in range(shards)]
    assert ranges[0][0] == 0 and ranges[-1][1] == total
    assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:], strict=False))


def test_scatter_items_parse():
    assert parse_shard("1-of-1") == (0, 1) and parse_shard("3-of-4") == (2, 4)
    for bad in ("0-of-2", "3-of-2", "1of2", "a-of-b"):
        with pytest.raises(ValueError, match="expected 'I-of-N'"):
            parse_shard(bad)


def rewrite(path, edit):
    """Replace a predictions file by `edit` of its own table (as pyarrow would write it)."""
    pq.write_table(edit(pq.read_table(path)), path)


def gather_fails(parts, table, folder, pattern):
    """Gathering raises PredictionError matching `pattern`; nothing is written beside the shards."""
    before = sorted(p.name for p in folder.iterdir())
    with pytest.raises(PredictionError, match=pattern):
        gather_predictions(parts, table, folder / "all.parquet", folder / "all.csv")
    assert sorted(p.name for p in folder.iterdir()) == before


REMAKE = re.escape("Delete it and rerun, so it is made again.")


def test_a_shard_missing_its_tail_is_named(table, weights, tmp_path):
    parts = predict_parts(tmp_path, table, weights, 3)  # 333, 333, 334 rows
    rewrite(parts[1], lambda t: t.slice(0, 300))
    pattern = re.escape(
        f"{parts[1]}: 300 rows, expected 333 (shard 2-of-3: rows 333..665 of {table}, "
        "a table of 1,000 rows). "
    )
    gather_fails(parts, table, tmp_path, pattern + REMAKE)


def test_a_shard_with_extra_rows_is_named(table, weights, tmp_path):
    parts = predict_parts(tmp_path, table, weights, 2)
    rewrite(parts[0], lambda t: pa.concat_tables([t, t.slice(0, 1)]))
    gather_fails(parts, table, tmp_path, re.escape(f"{parts[0]}: 501 rows, expected 500 (shard 1-"))


def test_shards_gathered_out_of_order_are_refused(table, weights, tmp_path):
    parts = predict_parts(tmp_path, table, weights, 2)  # 500 rows each: the counts match
    pattern = re.escape(f"{parts[1]}: the row for table row 0 has index 500: rows are missing")
    gather_fails(parts[::-1], table, tmp_path, pattern)


def test_a_shard_whose_rows_are_out_of_order_is_refused(table, weights, tmp_path):
    parts = predict_parts(tmp_path, table, weights, 2)
    order = np.r_[0:10, 11, 10, 12:500]
    rewrite(parts[1], lambda t: t.take(order))
    pattern = re.escape(f"{parts[1]}: the row for table row 510 has index 511: rows are missing")
    gather_fails(parts, table, tmp_path, pattern + ".*" + REMAKE)


def test_a_shard_of_another_tables_predictions_is_refused(table, weights, tmp_path):
    parts = predict_parts(tmp_path, table, weights, 2)
    targets = pq.read_table(parts[0])["target"].to_numpy()
    changed = targets.copy()
    changed[[40, 41, 300]] = (targets[[40, 41, 300]] + 1) % 10
    rewrite(parts[0], lambda t: t.set_column(1, "target", pa.array(changed)))
    pattern = re.escape(
        f"{parts[0]}: row 40 has target {changed[40]}, but row 40 of {table} has target "
        f"{targets[40]} (3 of rows 0..499 differ): these are not predictions of this table."
    )
    gather_fails(parts, table, tmp_path, pattern)


def test_a_shard_predicting_no_class_is_refused(table, weights, tmp_path):
    parts = predict_parts(tmp_path, table, weights, 2)
    predicted = pq.read_table(parts[1])["predicted"].to_numpy().copy()
    predicted[7] = 10
    rewrite(parts[1], lambda t: t.set_column(2, "predicted", pa.array(predicted)))
    pattern = re.escape(f"{parts[1]}: row 507 predicts class 10, expected a class in 0..9.")
    gather_fails(parts, table, tmp_path, pattern)


@pytest.mark.parametrize("column", ["index", "predicted", "prob3"])
def test_a_shard_with_an_empty_cell_is_refused_naming_the_column(table, weights, tmp_path, column):
    parts = predict_parts(tmp_path, table, weights, 2)

    def emptied(t):
        cells = t[column].to_pylist()
        cells[7] = None
        i = t.schema.get_field_index(column)
        return t.set_column(i, t.schema.field(i), pa.array(cells, t.schema.field(i).type))

    rewrite(parts[1], emptied)
    pattern = re.escape(f"{parts[1]}: column {column} has 1 empty (null) cell(s) among rows 500..")
    gather_fails(parts, table, tmp_path, pattern + ".*" + REMAKE)


@pytest.mark.parametrize(
    ("column", "found", "shown"),
    [
        ("target", pa.field("target", pa.int64()), "int64, expected uint8"),
        ("prob0", pa.field("prob0", pa.float64()), "double, expected float"),
        ("index", pa.field("index", pa.int64(), False), "int64 (required: not nullable), expe"),
    ],
)
def test_a_shard_with_a_column_of_another_type_is_refused_naming_it(
    table, weights, tmp_path, column, found, shown
):
    # The column names are all right: only the column that differs tells what is wrong.
    parts = predict_parts(tmp_path, table, weights, 2)
    i = prediction_schema().get_field_index(column)
    rewrite(parts[0], lambda t: t.cast(t.schema.set(i, found)))
    pattern = re.escape(f"{parts[0]}: column {column} is {shown}")
    gather_fails(parts, table, tmp_path, pattern + ".*" + REMAKE)


@pytest.mark.parametrize("keep", [0, 100, -100])
def test_a_truncated_shard_file_is_refused(table, weights, tmp_path, keep):
    parts = predict_parts(tmp_path, table, weights, 2)
    data = parts[1].read_bytes()
    parts[1].write_bytes(data[:keep] if keep >= 0 else data[:keep])
    pattern = re.escape(f"{parts[1]}: not a readable Parquet file (") + ".*" + REMAKE
    gather_fails(parts, table, tmp_path, pattern)


def test_a_shard_with_a_damaged_page_is_refused(table, weights, tmp_path):
    parts = predict_parts(tmp_path, table, weights, 2)
    data = bytearray(parts[0].read_bytes())
    data[200:400] = bytes(200)  # inside the first column chunk, the footer intact
    parts[0].write_bytes(bytes(data))
    pattern = re.escape(f"{parts[0]}: damaged (") + r".*\)\. " + REMAKE
    gather_fails(parts, table, tmp_path, pattern)


@pytest.mark.parametrize("column", ["predicted", "prob3"])
def test_a_byte_damaged_inside_a_page_of_a_shard_is_refused(table, weights, tmp_path, column):
    """LZ4 would decode the page to another class or probability: the checksum catches it."""
    parts = predict_parts(tmp_path, table, weights, 2)
    damage_page(parts[1], column)
    pattern = re.escape(f"{parts[1]}: damaged (") + ".*CRC checksum verification failed.*"
    gather_fails(parts, table, tmp_path, pattern + REMAKE)
    if column in CHECKED_COLUMNS:  # the scores decode these, not the probabilities
        with pytest.raises(PredictionError, match=pattern + REMAKE):
            score(parts, table, [str(k) for k in range(10)])


def test_gathering_a_file_that_is_not_a_prediction_shard_fails(table, tmp_path):
    with pytest.raises(PredictionError, match=r"expected prediction columns .*" + REMAKE):
        gather_predictions([table], table, tmp_path / "all.parquet", tmp_path / "all.csv")
    assert list(tmp_path.iterdir()) == []


def test_checked_predictions_of_a_range(table, weights, tmp_path):
    part = tmp_path / "p.parquet"
    predict_shard(table, weights, 64, 1, 3, part)  # rows 333..665
    got = pa.Table.from_batches(list(checked_predictions(part, table, 333, 666)))
    assert got.equals(pq.read_table(part))
    with pytest.raises(PredictionError, match=r"333 rows, expected 334 \(the predictions: rows 0"):
        list(checked_predictions(part, table, 0, 334))


def test_checked_predictions_decode_the_columns_asked_and_the_checked_ones(
    table, weights, tmp_path
):
    part = tmp_path / "p.parquet"
    predict_shard(table, weights, 64, 1, 3, part)  # rows 333..665
    whole = pq.read_table(part)
    for columns, names in [
        (CHECKED_COLUMNS, ["index", "target", "predicted"]),
        (["prob3"], ["index", "target", "predicted", "prob3"]),
        (["prob9", "target"], ["index", "target", "predicted", "prob9"]),
    ]:
        got = pa.Table.from_batches(
            list(checked_predictions(part, table, 333, 666, columns=columns))
        )
        assert got.equals(whole.select(names)), columns
    # fewer columns, the same checks
    with pytest.raises(PredictionError, match=r"333 rows, expected 334 \(the predictions: rows 0"):
        list(checked_predictions(part, table, 0, 334, columns=CHECKED_COLUMNS))
    with pytest.raises(ValueError, match=r"no prediction column\(s\) \['prob10'\]"):
        list(checked_predictions(part, table, 333, 666, columns=["prob10"]))


def test_one_shard_is_gathered_as_the_file_reencoding_it_would_give(
    table, weights, tmp_path, monkeypatch
):
    """A lone shard is copied once checked: the rows, schema and column options of encoding it
    again; only its row groups stay those predict made (300 rows here, not 256)."""
    monkeypatch.setattr(inference, "ROW_GROUP_ROWS", 256)
    monkeypatch.setattr(inference, "READ_ROWS", 256)
    monkeypatch.setattr(inference, "RUN_ROWS", 300)  # predict writes runs of 300 rows
    (part,) = predict_parts(tmp_path, table, weights, 1)
    copied, reencoded = tmp_path / "copied.parquet", tmp_path / "reencoded.parquet"
    assert gather_predictions([part], table, copied, tmp_path / "copied.csv") == ROWS
    assert copied.read_bytes() == part.read_bytes()
    write_parquet(shard_batches([part], table), reencoded, prediction_schema())
    assert pq.read_table(copied).equals(pq.read_table(reencoded))
    ours, theirs = pq.ParquetFile(copied), pq.ParquetFile(reencoded)
    assert ours.schema_arrow.equals(theirs.schema_arrow, check_metadata=True)
    assert ours.metadata.created_by == theirs.metadata.created_by

    def columns(file):
        chunk = file.metadata.row_group(0).column
        return [
            (chunk(i).compression, chunk(i).encodings) for i in range(file.metadata.num_columns)
        ]

    assert columns(ours) == columns(theirs)
    groups = [ours.metadata.row_group(i).num_rows for i in range(ours.metadata.num_row_groups)]
    assert groups == [300, 300, 300, 100]


@pytest.mark.parametrize(
    ("column", "shards"), [("index", 1), ("prob9", 1), ("prob9", 2)], ids=["first", "last", "2"]
)
def test_a_shard_damaged_in_any_column_is_never_gathered(table, weights, tmp_path, column, shards):
    """Each column is decoded before anything is written, a lone shard (copied) too."""
    parts = predict_parts(tmp_path, table, weights, shards)
    chunk = (
        pq.ParquetFile(parts[0])
        .metadata.row_group(0)
        .column(prediction_schema().names.index(column))
    )
    data = bytearray(parts[0].read_bytes())
    data[chunk.data_page_offset : chunk.data_page_offset + 40] = bytes(40)  # its page header
    parts[0].write_bytes(bytes(data))
    gather_fails(
        parts, table, tmp_path, "(?s)" + re.escape(f"{parts[0]}: damaged (") + ".*" + REMAKE
    )


class SteppingClock:
    """A fake clock that moves `step` seconds each time it is read."""

    def __init__(self, step):
        self.now, self.step = 0.0, step

    def __call__(self):
        self.now += self.step
        return self.now


@pytest.mark.parametrize("step", [1.0, 0.01])
def test_prediction_and_gathering_report_progress_only_when_long(
    table, weights, tmp_path, monkeypatch, step
):
    """10 runs of 100 rows, the clock moving `step` s per run: 10 s of work gives a line every
    5 s (2, not one per run); 0.1 s gives none."""
    clock = SteppingClock(step)
    monkeypatch.setattr(inference, "Progress", functools.partial(Progress, clock=clock))
    monkeypatch.setattr(inference, "RUN_ROWS", 100)  # progress is counted run by run
    logged: list[str] = []
    part = tmp_path / "1-of-1.parquet"
    predict_shard(table, weights, 100, 0, 1, part, log=logged.append)
    expected = [
        f"{part}: 500 of 1,000 rows (50%), 100 rows/s",
        f"{part}: 1,000 of 1,000 rows (100%), 100 rows/s",
    ]
    assert logged == (expected if step == 1.0 else [])
    monkeypatch.setattr(inference, "READ_ROWS", 100)  # gathering reads back 10 batches, too
    logged.clear()
    gathered = tmp_path / "a.parquet"
    gather_predictions([part], table, gathered, tmp_path / "a.csv", log=logged.append)
    assert logged == [line.replace(str(part), str(gathered)) for line in expected[: len(logged)]]
    assert len(logged) == (2 if step == 1.0 else 0)


@pytest.mark.parametrize("shards", [1, 2])
def test_neither_file_is_written_from_predictions_of_another_table(
    table, weights, tmp_path, shards
):
    """The CSV is written as the shards are read: a bad last shard leaves no part of it."""
    parts = predict_parts(tmp_path, table, weights, shards)
    zeros = pa.array(np.zeros(ROWS // shards, np.uint8))
    rewrite(parts[-1], lambda t: t.set_column(1, "target", zeros))
    pattern = re.escape(f"{parts[-1]}: row ") + r"\d+ has target 0, but row .* " + REMAKE
    gather_fails(parts, table, tmp_path, pattern)


@pytest.mark.parametrize("batch_rows", [1, 7, 300])
def test_small_batches_are_written_as_few_large_row_groups(
    table, weights, tmp_path, monkeypatch, batch_rows
):
    monkeypatch.setattr(inference, "ROW_GROUP_ROWS", 256)
    predict_shard(table, weights, batch_rows, 0, 1, tmp_path / "p.parquet")
    meta = pq.ParquetFile(tmp_path / "p.parquet").metadata
    sizes = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
    assert sum(sizes) == ROWS
    assert all(size >= 256 for size in sizes[:-1]) and len(sizes) <= ROWS // 256 + 1


def test_predicting_and_gathering_load_no_pandas(table, weights, tmp_path):
    """pyarrow loads pandas (a third of a second) for numpy conversions; these jobs avoid them."""
    np.savez(tmp_path / "w.npz", **weights)
    code = (
        "import sys\n"
        "import numpy as np\n"
        "from mnist_pipeline.inference import gather_predictions, predict_shard\n"
        "weights = dict(np.load('w.npz'))\n"
        f"parts = [predict_shard({str(table)!r}, weights, 100, i, 2, f'{{i}}.parquet', threads=2)"
        " for i in range(2)]\n"
        f"rows = gather_predictions(['0.parquet', '1.parquet'], {str(table)!r}, 'p.parquet', "
        "'p.csv')\n"
        "assert rows == sum(parts)\n"
        "assert 'pandas' not in sys.modules, 'pandas was loaded'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=tmp_path)
    assert len(pq.read_table(tmp_path / "p.parquet")) == ROWS


@pytest.mark.parametrize("shards", [1, 3])
def test_the_csv_is_the_bytes_pyarrow_writes_of_the_gathered_table(
    table, weights, tmp_path, monkeypatch, shards
):
    monkeypatch.setattr(inference, "READ_ROWS", 128)  # written batch by batch
    parts = predict_parts(tmp_path, table, weights, shards)
    csv = tmp_path / "all.csv"
    assert gather_predictions(parts, table, tmp_path / "all.parquet", csv) == ROWS
    expected = tmp_path / "expected.csv"
    pacsv.write_csv(pq.read_table(tmp_path / "all.parquet"), expected)
    assert csv.read_bytes() == expected.read_bytes()
