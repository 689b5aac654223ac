"""Batched inference from a Parquet table into prediction files, in shards that gather into one."""

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import ExitStack
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from .atomic import atomic_path
from .dims import CLASSES
from .network import forward
from .tables import iter_batches, num_rows

PROB_COLUMNS = [f"prob{i}" for i in range(CLASSES)]
# Batches are regrouped into row groups of about this many rows: one row group per small batch
# would grow the footer the writer keeps in memory with the row count (+100 MB at 1M rows in
# batches of 100) and make the file's layout depend on the batch size.
ROW_GROUP_ROWS = 65_536
PREDICTION_SCHEMA = pa.schema(
    [("index", pa.int64()), ("target", pa.uint8()), ("predicted", pa.uint8())]
    + [(name, pa.float32()) for name in PROB_COLUMNS]
)


def parse_shard(item: str) -> tuple[int, int]:
    """'2-of-4' (Snakemake's scatter item) -> (1, 4): the zero-based shard and the shard count."""
    match = re.fullmatch(r"(\d+)-of-(\d+)", item)
    if not match or not 1 <= int(match[1]) <= int(match[2]):
        raise ValueError(f"shard {item!r}: expected 'I-of-N' with 1 <= I <= N")
    return int(match[1]) - 1, int(match[2])


def shard_rows(total: int, shard: int, shards: int) -> tuple[int, int]:
    """Rows [start, stop) of one of `shards` near-equal contiguous parts of `total` rows."""
    return total * shard // shards, total * (shard + 1) // shards


def predict_batches(
    table: str | Path,
    weights: Mapping[str, np.ndarray],
    batch_rows: int,
    start: int = 0,
    stop: int | None = None,
) -> Iterator[pa.RecordBatch]:
    """Predict rows [start, stop) of a pixel table, `batch_rows` at a time."""
    index = start
    for x, target in iter_batches(table, batch_rows, start, stop):
        probs = forward(weights, x)
        columns = [
            np.arange(index, index + len(x), dtype=np.int64),
            target,
            probs.argmax(axis=1).astype(np.uint8),
            *np.ascontiguousarray(probs.T),
        ]
        index += len(x)
        yield pa.RecordBatch.from_arrays(columns, schema=PREDICTION_SCHEMA)


def predict_shard(
    table: str | Path,
    weights: Mapping[str, np.ndarray],
    batch_rows: int,
    shard: int,
    shards: int,
    dest: str | Path,
) -> int:
    """Write the predictions for one shard of `table` to `dest` (Parquet); return its row count."""
    start, stop = shard_rows(num_rows(table), shard, shards)
    return write_parquet(predict_batches(table, weights, batch_rows, start, stop), dest)


def write_parquet(batches: Iterable[pa.RecordBatch], dest: str | Path) -> int:
    rows = 0
    with atomic_path(dest) as tmp, pq.ParquetWriter(tmp, PREDICTION_SCHEMA) as writer:
        for group in row_groups(batches):
            writer.write_table(group, row_group_size=group.num_rows)
            rows += group.num_rows
    return rows


def row_groups(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.Table]:
    """The batches, concatenated into tables of at least ROW_GROUP_ROWS rows (but the last)."""
    pending: list[pa.RecordBatch] = []
    count = 0
    for batch in batches:
        pending.append(batch)
        count += batch.num_rows
        if count >= ROW_GROUP_ROWS:
            yield pa.Table.from_batches(pending, schema=PREDICTION_SCHEMA)
            pending, count = [], 0
    if pending:
        yield pa.Table.from_batches(pending, schema=PREDICTION_SCHEMA)


def gather_predictions(shards: Sequence[str | Path], parquet: str | Path, csv: str | Path) -> int:
    """Concatenate shard files, in order, into one Parquet and one CSV file, streaming."""
    rows = 0
    with ExitStack() as stack:
        tmp_parquet = stack.enter_context(atomic_path(parquet))
        tmp_csv = stack.enter_context(atomic_path(csv))
        to_parquet = stack.enter_context(pq.ParquetWriter(tmp_parquet, PREDICTION_SCHEMA))
        to_csv = stack.enter_context(pacsv.CSVWriter(tmp_csv, PREDICTION_SCHEMA))
        for group in row_groups(shard_batches(shards)):
            to_parquet.write_table(group, row_group_size=group.num_rows)
            to_csv.write_table(group)
            rows += group.num_rows
    return rows


def shard_batches(shards: Sequence[str | Path]) -> Iterator[pa.RecordBatch]:
    """The batches of the shard files in order, checked to be predictions whose rows follow on."""
    expected = 0
    for shard in shards:
        with pq.ParquetFile(shard) as file:
            if not file.schema_arrow.equals(PREDICTION_SCHEMA, check_metadata=False):
                raise ValueError(
                    f"{shard}: expected prediction columns {PREDICTION_SCHEMA.names}, "
                    f"found {file.schema_arrow.names}; delete it and rerun"
                )
            for batch in file.iter_batches():
                if batch.num_rows and batch.column(0)[0].as_py() != expected:
                    raise ValueError(f"{shard}: expected its first index to be {expected}")
                expected += batch.num_rows
                yield batch
