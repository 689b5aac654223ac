"""The tables and prediction files read as they are in pandas, pyarrow, DuckDB and Polars."""

import duckdb
import numpy as np
import pandas as pd
import polars as pl
import pyarrow.parquet as pq
import pytest

from mnist_pipeline.inference import predict_shard, prob_columns
from mnist_pipeline.network import SHAPES
from mnist_pipeline.tables import COLUMNS, convert_idx_to_parquet

from idxgen import gz, idx_images, idx_labels, random_split

ROWS = 150
GROUP = 64  # several row groups, the last one short


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("readers")
    images, labels = random_split(ROWS, seed=3)
    images[0] = 255  # the full range of a pixel, both ends
    images[1] = 0
    (folder / "i.gz").write_bytes(gz(idx_images(images)))
    (folder / "l.gz").write_bytes(gz(idx_labels(labels)))
    table = folder / "test.parquet"
    convert_idx_to_parquet(
        folder / "i.gz", folder / "l.gz", table, metadata={"dataset": "mnist"}, chunk_rows=GROUP
    )
    rng = np.random.default_rng(4)
    weights = {k: rng.normal(0, 0.1, s).astype(np.float32) for k, s in SHAPES.items()}
    predictions = folder / "predictions.parquet"
    predict_shard(table, weights, 32, 0, 1, predictions)
    return table, predictions, images.reshape(ROWS, 784), labels


def pixels_and_target(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    assert list(frame.columns) == COLUMNS
    assert set(frame.dtypes) == {np.dtype(np.uint8)}
    return frame[COLUMNS[:-1]].to_numpy(), frame["target"].to_numpy()


@pytest.mark.parametrize(
    "read",
    [
        pd.read_parquet,
        lambda path: pq.read_table(path).to_pandas(),
        lambda path: duckdb.sql(f"SELECT * FROM '{path}'").df(),
        lambda path: pl.read_parquet(path).to_pandas(),
    ],
    ids=["pandas", "pyarrow", "duckdb", "polars"],
)
def test_a_table_reads_as_uint8_pixels_and_target(files, read):
    table, _, images, labels = files
    x, target = pixels_and_target(read(table))
    np.testing.assert_array_equal(x, images)
    np.testing.assert_array_equal(target, labels)


def test_duckdb_and_polars_see_uint8_columns_and_query_them(files):
    table, _, images, labels = files
    types = duckdb.sql(f"DESCRIBE SELECT pixel0, pixel783, target FROM '{table}'").fetchall()
    assert [row[1] for row in types] == ["UTINYINT"] * 3
    counts = duckdb.sql(f"SELECT target, count(*) FROM '{table}' GROUP BY 1 ORDER BY 1").fetchall()
    classes, sizes = np.unique(labels, return_counts=True)
    assert counts == [(int(k), int(n)) for k, n in zip(classes, sizes, strict=True)]
    schema = pl.read_parquet_schema(table)
    assert set(schema.values()) == {pl.UInt8}
    total = pl.scan_parquet(table).select(pl.col("pixel400").cast(pl.Int64).sum()).collect()
    assert total.item() == int(images[:, 400].astype(np.int64).sum())


def test_the_metadata_is_where_readers_look_for_it(files):
    table, *_ = files
    assert pq.read_schema(table).metadata[b"dataset"] == b"mnist"
    rows = duckdb.sql(f"SELECT key, value FROM parquet_kv_metadata('{table}')").fetchall()
    assert (b"dataset", b"mnist") in rows


@pytest.mark.parametrize(
    "read",
    [
        pd.read_parquet,
        lambda path: duckdb.sql(f"SELECT * FROM '{path}'").df(),
        lambda path: pl.read_parquet(path).to_pandas(),
    ],
    ids=["pandas", "duckdb", "polars"],
)
def test_predictions_read_with_their_types(files, read):
    table, predictions, _, labels = files
    frame = read(predictions)
    expected = pq.read_table(predictions).to_pandas()
    assert list(frame.columns) == ["index", "target", "predicted", *prob_columns()]
    assert [str(t) for t in frame.dtypes] == ["int64", "uint8", "uint8"] + ["float32"] * 10
    pd.testing.assert_frame_equal(frame, expected, check_exact=True)
    np.testing.assert_array_equal(frame["target"], labels)
