"""Batched inference: shards and batch sizes change how the work is cut, never the predictions."""

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mnist_pipeline import inference
from mnist_pipeline.inference import (
    PREDICTION_SCHEMA,
    gather_predictions,
    parse_shard,
    predict_batches,
    predict_shard,
    shard_rows,
)
from mnist_pipeline.network import SHAPES

from idxgen import random_split, write_pixel_table

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


def predictions(table, weights, batch_rows):
    return pa.Table.from_batches(list(predict_batches(table, weights, batch_rows))).to_pandas()


@pytest.mark.parametrize("batch_rows", [1, 100, 10_000])
def test_predictions_do_not_depend_on_batch_size(table, weights, batch_rows):
    reference = predictions(table, weights, 333)
    result = predictions(table, weights, batch_rows)
    pd.testing.assert_frame_equal(result.iloc[:, :3], reference.iloc[:, :3])
    np.testing.assert_allclose(result.iloc[:, 3:], reference.iloc[:, 3:], atol=1e-6)
    np.testing.assert_array_equal(result["index"], np.arange(ROWS))


def test_probabilities_are_a_distribution_and_predicted_is_their_argmax(table, weights):
    result = predictions(table, weights, 256)
    probs = result.iloc[:, 3:].to_numpy()
    assert probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(axis=1), 1, atol=1e-5)
    np.testing.assert_array_equal(result["predicted"], probs.argmax(axis=1))


@pytest.mark.parametrize("shards", [1, 3, 7])
def test_shards_gather_into_the_same_files_as_one_job(table, weights, tmp_path, shards):
    parts = []
    for shard in range(shards):
        parts.append(tmp_path / f"{shard + 1}-of-{shards}.parquet")
        predict_shard(table, weights, 100, shard, shards, parts[-1])
    rows = gather_predictions(parts, tmp_path / "all.parquet", tmp_path / "all.csv")
    assert rows == ROWS
    gathered = pd.read_parquet(tmp_path / "all.parquet")
    reference = predictions(table, weights, 100)
    pd.testing.assert_frame_equal(gathered, reference)
    from_csv = pd.read_csv(tmp_path / "all.csv")
    assert list(from_csv.columns) == PREDICTION_SCHEMA.names
    np.testing.assert_allclose(from_csv.to_numpy(), reference.to_numpy(), atol=1e-6)


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


def test_gathering_shards_out_of_order_fails_and_keeps_nothing(table, weights, tmp_path):
    parts = [tmp_path / "1.parquet", tmp_path / "2.parquet"]
    for shard, part in enumerate(parts):
        predict_shard(table, weights, 100, shard, 2, part)
    with pytest.raises(ValueError, match="expected its first index to be 0"):
        gather_predictions(parts[::-1], tmp_path / "all.parquet", tmp_path / "all.csv")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["1.parquet", "2.parquet"]


def test_gathering_a_file_that_is_not_a_prediction_shard_fails(table, tmp_path):
    with pytest.raises(ValueError, match="expected prediction columns"):
        gather_predictions([table], tmp_path / "all.parquet", tmp_path / "all.csv")
    assert list(tmp_path.iterdir()) == []


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
