"""Batched inference from a Parquet table into prediction files, in shards that gather into one.

A predictions file holds, for rows [start, stop) of its table (all of them once gathered), one
row each in order: `index` (the table row), `target` (the table's), `predicted` and the class
probabilities `prob0`..`prob{K-1}`, one per class of the network. Whatever reads one back checks
that it is exactly that (`checked_predictions`).
"""

import functools
import logging
import os
import re
import shutil
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from .arrays import arrow, values
from .atomic import atomic_path
from .dims import CLASSES
from .errors import MnistPipelineError
from .network import Network, classes_of
from .prefetch import mapped
from .progress import Progress
from .tables import iter_batches, iter_targets, num_rows, parquet_writer

# Batches are regrouped into row groups of about this many rows: one row group per small batch
# would grow the footer the writer keeps in memory with the row count (+100 MB at 1M rows in
# batches of 100) and make the file's layout depend on the batch size.
ROW_GROUP_ROWS = 65_536
READ_ROWS = 65_536  # rows per batch when a predictions file is read back
# Rows the CSV writer turns into text at a time: with its default, 1024, it takes longer.
CSV_OPTIONS = pacsv.WriteOptions(batch_size=8192)
RUN_ROWS = 16_384  # rows of consecutive batches one thread predicts at a time
# Probabilities do not repeat: dictionaries would only cost time; split into byte streams,
# floats compress better. Each page has a CRC-32, checked when it is read: LZ4 has none, and
# a damaged byte would otherwise be read as another class or probability.
WRITE_OPTIONS = {
    "compression": "lz4",
    "use_dictionary": False,
    "use_byte_stream_split": True,
    "write_page_checksum": True,
}
# What every read of a predictions file checks: its first three columns, always decoded.
CHECKED_COLUMNS = ("index", "target", "predicted")
REMAKE = "Delete it and rerun, so it is made again."
_LOG = logging.getLogger(__name__)


class PredictionError(MnistPipelineError, ValueError):
    """A predictions file (or shard) that is not exactly the predictions of its table's rows."""


def prob_columns(classes: int = CLASSES) -> list[str]:
    """prob0..prob{classes-1}: the probability columns of a network with `classes` outputs."""
    return [f"prob{i}" for i in range(classes)]


def prediction_schema(classes: int = CLASSES) -> pa.Schema:
    """The columns of a predictions file of a network with `classes` outputs."""
    return pa.schema(
        [("index", pa.int64()), ("target", pa.uint8()), ("predicted", pa.uint8())]
        + [(name, pa.float32()) for name in prob_columns(classes)]
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
    *,
    threads: int = 1,
) -> Iterator[pa.RecordBatch]:
    """Predict rows [start, stop) of a pixel table, `batch_rows` at a time (one call of the
    network per batch), one record batch each, in order, with one probability column per class
    of the weights.

    `threads` threads take runs of consecutive batches (RUN_ROWS rows) in turn; the next row
    group of the table is read meanwhile.
    """
    for run in _run_predictions(table, weights, batch_rows, start, stop, threads):
        # A run is whole batches, all of batch_rows rows but the table's last.
        for first in range(0, run.num_rows, batch_rows):
            yield run.slice(first, batch_rows)


def _run_predictions(
    table: str | Path,
    weights: Mapping[str, np.ndarray],
    batch_rows: int,
    start: int,
    stop: int | None,
    threads: int,
) -> Iterator[pa.RecordBatch]:
    """The predictions of rows [start, stop) as `predict_batches` makes them, one record batch
    per run of batches."""
    schema = prediction_schema(classes_of(weights))
    runs = _runs(iter_batches(table, batch_rows, start, stop), start)
    return mapped(functools.partial(_predict_run, Network(weights), schema), runs, threads)


def _runs(
    batches: Iterator[tuple[np.ndarray, np.ndarray]], start: int
) -> Iterator[list[tuple[int, np.ndarray, np.ndarray]]]:
    """Consecutive batches with the table row of their first, in lists of about RUN_ROWS rows."""
    run: list[tuple[int, np.ndarray, np.ndarray]] = []
    rows = 0
    for x, target in batches:
        run.append((start, x, target))
        start += len(x)
        rows += len(x)
        if rows >= RUN_ROWS:
            yield run
            run, rows = [], 0
    if run:
        yield run


def _predict_run(
    network: Network,
    schema: pa.Schema,
    run: list[tuple[int, np.ndarray, np.ndarray]],
) -> pa.RecordBatch:
    """The predictions of a run of batches, the first from table row run[0][0], as one record
    batch."""
    probs = np.concatenate([network(x, row) for row, x, _ in run])
    first = run[0][0]
    columns = [
        np.arange(first, first + len(probs), dtype=np.int64),
        np.concatenate([target for _, _, target in run]),
        probs.argmax(axis=1).astype(np.uint8),
        *np.ascontiguousarray(probs.T),
    ]
    return pa.RecordBatch.from_arrays([arrow(column) for column in columns], schema=schema)


def predict_shard(
    table: str | Path,
    weights: Mapping[str, np.ndarray],
    batch_rows: int,
    shard: int,
    shards: int,
    dest: str | Path,
    *,
    threads: int = 1,
    log: Callable[[str], object] = _LOG.info,
) -> int:
    """Write the predictions for one shard of `table` to `dest` (Parquet); return its row count.

    The network runs in `threads` threads (see `predict_batches`). Progress goes to `log` every
    few seconds of a long shard.
    """
    start, stop = shard_rows(num_rows(table), shard, shards)
    progress = Progress(os.fspath(dest), stop - start, "rows", log)
    runs = _run_predictions(table, weights, batch_rows, start, stop, threads)
    return write_parquet(_counted(runs, progress), dest, prediction_schema(classes_of(weights)))


def write_parquet(batches: Iterable[pa.RecordBatch], dest: str | Path, schema: pa.Schema) -> int:
    rows = 0
    with (
        atomic_path(dest) as tmp,
        parquet_writer(tmp, schema, **WRITE_OPTIONS) as writer,
    ):
        for group in row_groups(batches, schema):
            writer.write_table(group, row_group_size=group.num_rows)
            rows += group.num_rows
    return rows


def row_groups(batches: Iterable[pa.RecordBatch], schema: pa.Schema) -> Iterator[pa.Table]:
    """The batches, concatenated into tables of at least ROW_GROUP_ROWS rows (but the last)."""
    pending: list[pa.RecordBatch] = []
    count = 0
    for batch in batches:
        pending.append(batch)
        count += batch.num_rows
        if count >= ROW_GROUP_ROWS:
            yield _table(pending, schema)
            pending, count = [], 0
    if pending:
        yield _table(pending, schema)


def _table(batches: list[pa.RecordBatch], schema: pa.Schema) -> pa.Table:
    """The batches as one table of one chunk per column, which the writer encodes faster than
    many small chunks."""
    return pa.Table.from_batches(batches, schema=schema).combine_chunks()


def _counted(batches: Iterable[pa.RecordBatch], progress: Progress) -> Iterator[pa.RecordBatch]:
    for batch in batches:
        yield batch
        progress.update(batch.num_rows)


def gather_predictions(
    shards: Sequence[str | Path],
    table: str | Path,
    parquet: str | Path,
    csv: str | Path,
    *,
    classes: int = CLASSES,
    log: Callable[[str], object] = _LOG.info,
) -> int:
    """Concatenate the shard files of `table`, in order, into one Parquet file and one CSV file
    of the same rows, from one pass over the shards.

    Streams; each shard is checked to hold exactly its part of the table's rows, predicted by
    a network of `classes` outputs (see `shard_batches`). Progress goes to `log` every few
    seconds of a long gather.

    A single shard, once checked, is copied as it is: it was written with the schema and the
    options encoding it again would use, so the copy holds what that would write (in the row
    groups predict made), without the cost of encoding.
    """
    schema = prediction_schema(classes)
    with atomic_path(csv) as tmp, pacsv.CSVWriter(tmp, schema, write_options=CSV_OPTIONS) as writer:
        batches = _written(_gathered(shards, table, parquet, classes, log), writer)
        if len(shards) != 1:
            return write_parquet(batches, parquet, schema)
        rows = sum(batch.num_rows for batch in batches)
        with atomic_path(parquet) as copy:
            shutil.copyfile(shards[0], copy)
        return rows


def _written(
    batches: Iterable[pa.RecordBatch], writer: pacsv.CSVWriter
) -> Iterator[pa.RecordBatch]:
    """The batches, each written to `writer` as it passes."""
    for batch in batches:
        writer.write_batch(batch)
        yield batch


def _gathered(
    shards: Sequence[str | Path],
    table: str | Path,
    dest: str | Path,
    classes: int,
    log: Callable[[str], object],
) -> Iterator[pa.RecordBatch]:
    """The checked batches of the shard files in order, counted for the progress of `dest`."""
    progress = Progress(os.fspath(dest), num_rows(table), "rows", log)
    return _counted(shard_batches(shards, table, classes), progress)


def shard_batches(
    shards: Sequence[str | Path],
    table: str | Path,
    classes: int = CLASSES,
    *,
    columns: Sequence[str] | None = None,
) -> Iterator[pa.RecordBatch]:
    """The batches of the shard files in order, shard I of N checked to hold exactly the rows
    `shard_rows` gives it (so a shard missing its tail is named, not the one after it).

    `columns`: as for `checked_predictions`."""
    total = num_rows(table)
    for shard, path in enumerate(shards):
        start, stop = shard_rows(total, shard, len(shards))
        what = f"shard {shard + 1}-of-{len(shards)}"
        yield from checked_predictions(
            path, table, start, stop, what=what, classes=classes, columns=columns
        )


def checked_predictions(
    path: str | Path,
    table: str | Path,
    start: int = 0,
    stop: int | None = None,
    *,
    what: str = "the predictions",
    classes: int = CLASSES,
    columns: Sequence[str] | None = None,
) -> Iterator[pa.RecordBatch]:
    """The batches of a predictions file that must hold rows [start, stop) of `table` (stop
    None: to its end), checked as they are read: the columns (those of `classes` classes) and
    the row count (from the footer, before any row), then each row's index and target (against
    the table's) and its predicted class.

    `columns` names the columns to decode (None: all); the checked ones (CHECKED_COLUMNS) are
    always decoded, and come first. Anything else raises a PredictionError naming the file and
    the first row that is wrong. Memory is O(READ_ROWS + a row group of the table's target
    column).
    """
    total = num_rows(table)
    stop = total if stop is None else stop
    schema = prediction_schema(classes)
    read = _read_columns(schema, columns)
    file = _open_predictions(path, schema)
    with file:
        found = file.metadata.num_rows
        if found != stop - start:
            span = f"rows {start}..{stop - 1}" if stop > start else "no rows"
            raise PredictionError(
                f"{os.fspath(path)}: {found:,} rows, expected {stop - start:,} ({what}: {span} "
                f"of {os.fspath(table)}, a table of {total:,} rows). {REMAKE}"
            )
        targets = _Cursor(iter_targets(table, start, stop))
        at = start
        for batch in _read_batches(file, path, read):
            n = batch.num_rows
            _check_cells(path, at, batch)
            _check_rows(path, table, at, batch, targets.take(n), classes)
            at += n
            yield batch


def _open_predictions(path: str | Path, schema: pa.Schema) -> pq.ParquetFile:
    try:
        file = pq.ParquetFile(path, page_checksum_verification=True)
    except (pa.ArrowException, OSError) as err:
        raise PredictionError(
            f"{os.fspath(path)}: not a readable Parquet file ({err}). {REMAKE}"
        ) from err
    found = file.schema_arrow
    if found.names != schema.names:
        file.close()
        raise PredictionError(
            f"{os.fspath(path)}: expected prediction columns {_shown(schema.names)}, "
            f"found {_shown(found.names)}. {REMAKE}"
        )
    for field, expected in zip(found, schema, strict=True):
        if not field.equals(expected):
            file.close()
            raise PredictionError(
                f"{os.fspath(path)}: column {field.name} is {_typed(field)}, expected "
                f"{_typed(expected)}. {REMAKE}"
            )
    return file


def _typed(field: pa.Field) -> str:
    return f"{field.type}" if field.nullable else f"{field.type} (required: not nullable)"


def _read_columns(schema: pa.Schema, columns: Sequence[str] | None) -> list[str] | None:
    """The columns to decode: the checked ones, then those of `columns` (None: all)."""
    if columns is None:
        return None
    unknown = [name for name in columns if name not in schema.names]
    if unknown:
        raise ValueError(f"no prediction column(s) {unknown}: the columns are {schema.names}")
    return [*CHECKED_COLUMNS, *(name for name in columns if name not in CHECKED_COLUMNS)]


def _read_batches(
    file: pq.ParquetFile, path: str | Path, columns: list[str] | None = None
) -> Iterator[pa.RecordBatch]:
    """The file's record batches (of `columns`, None: all); damage found while reading them
    becomes a PredictionError."""
    batches = file.iter_batches(batch_size=READ_ROWS, columns=columns)
    while True:
        try:
            batch = next(batches)
        except StopIteration:
            return
        except (pa.ArrowException, OSError) as err:
            raise PredictionError(f"{os.fspath(path)}: damaged ({err}). {REMAKE}") from err
        yield batch


def _shown(names: list[str]) -> str:
    """Column names for a message: all of a few, or the first and last of many (62 classes)."""
    if len(names) <= 14:
        return str(names)
    head, tail = ", ".join(map(repr, names[:4])), ", ".join(map(repr, names[-2:]))
    return f"[{head}, ..., {tail}] ({len(names)} columns)"


def _check_cells(path: str | Path, at: int, batch: pa.RecordBatch) -> None:
    """Rows at.. of a predictions file must have a value in every cell."""
    for name, column in zip(batch.schema.names, batch.columns, strict=True):
        if column.null_count:
            raise PredictionError(
                f"{os.fspath(path)}: column {name} has {column.null_count} empty (null) cell(s) "
                f"among rows {at}..{at + batch.num_rows - 1}: a predictions file has a value in "
                f"every cell. {REMAKE}"
            )


def _check_rows(
    path: str | Path,
    table: str | Path,
    at: int,
    batch: pa.RecordBatch,
    targets: np.ndarray,
    classes: int,
) -> None:
    """Rows at.. of a predictions file must be the table's rows at.., with the table's targets."""
    index = values(batch.column(0))
    bad = np.flatnonzero(index != np.arange(at, at + len(index)))
    if bad.size:
        row = at + int(bad[0])
        raise PredictionError(
            f"{os.fspath(path)}: the row for table row {row} has index {index[bad[0]]}: rows "
            f"are missing, repeated or out of order. {REMAKE}"
        )
    target = values(batch.column(1))
    bad = np.flatnonzero(target != targets)
    if bad.size:
        row = at + int(bad[0])
        raise PredictionError(
            f"{os.fspath(path)}: row {row} has target {target[bad[0]]}, but row {row} of "
            f"{os.fspath(table)} has target {targets[bad[0]]} ({bad.size} of rows {at}.."
            f"{at + len(target) - 1} differ): these are not predictions of this table. {REMAKE}"
        )
    predicted = values(batch.column(2))
    bad = np.flatnonzero(predicted >= classes)
    if bad.size:
        raise PredictionError(
            f"{os.fspath(path)}: row {at + int(bad[0])} predicts class {predicted[bad[0]]}, "
            f"expected a class in 0..{classes - 1}. {REMAKE}"
        )


class _Cursor:
    """Hands out the elements of a stream of arrays `n` at a time, whatever the arrays' sizes."""

    def __init__(self, arrays: Iterable[np.ndarray]):
        self._arrays = iter(arrays)
        self._head = np.empty(0, dtype=np.uint8)

    def take(self, n: int) -> np.ndarray:
        parts = []
        while n:
            if not len(self._head):
                self._head = next(self._arrays)
            parts.append(self._head[:n])
            self._head = self._head[n:]
            n -= len(parts[-1])
        return np.concatenate(parts) if parts else self._head[:0]
