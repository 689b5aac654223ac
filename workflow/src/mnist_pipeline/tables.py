"""The pixel tables: IDX archives streamed into Parquet, and Parquet read back in row batches.

A table has columns pixel0..pixel783 (uint8) and target (uint8), one row per image in archive
order, and key-value metadata naming its source (dataset, split, archive SHA-256s).
"""

import os
from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .atomic import atomic_path
from .dims import PIXELS, SIDE
from .errors import MnistPipelineError
from .idx import iter_image_chunks, read_image_header, read_labels

N_PIXELS = PIXELS
PIXEL_COLUMNS = [f"pixel{i}" for i in range(N_PIXELS)]
TARGET = "target"
COLUMNS = [*PIXEL_COLUMNS, TARGET]
SCHEMA = pa.schema([(name, pa.uint8()) for name in COLUMNS])

# Codec, dictionary and row-group size, measured on the 60,000-row MNIST training split with
# `.venv/bin/python tests/benchmarks/bench_convert.py --codecs` (medians of 5, 2 cores):
#   codec   dict  rows/group  MB     write s  read_arrays s  iter_batches(100) s
#   zstd-1  yes   65536       12.28  0.79     0.20           0.18   <- chosen
#   zstd-1  no    65536       17.47  0.81     0.19           0.20
#   zstd-3  yes   65536       12.59  0.83     0.18           0.18
#   lz4     yes   65536       18.47  0.71     0.14           0.12
#   lz4     no    65536       28.08  0.59     0.12           0.13
#   snappy  yes   65536       18.22  0.76     0.15           0.16
#   none    yes   65536       23.20  0.73     0.12           0.11
#   none    no    65536      188.65  0.55     0.37           0.11
#   zstd-1  yes   16384       13.39  0.94     0.23           0.25
#   zstd-1  yes   32768       12.74  0.84     0.21           0.21
# zstd-1 with dictionaries is the smallest (the IDX .gz is 9.7 MB) for < 0.1 s more per read
# than the fastest; higher zstd levels gain nothing. Each row group costs a fixed decode
# overhead per column chunk (785 of them), so groups are large: 65536 rows, ~51 MB of pixels,
# which bounds the memory of conversion and of iter_batches.
COMPRESSION = "zstd"
COMPRESSION_LEVEL = 1
USE_DICTIONARY = True
CHUNK_ROWS = 65536

_ARROW_KEYS = (b"ARROW:", b"pandas")


class TableError(MnistPipelineError, ValueError):
    """A pixel table or its inputs are not what the pipeline expects."""


def convert_idx_to_parquet(
    images_path: str | os.PathLike,
    labels_path: str | os.PathLike,
    dest: str | os.PathLike,
    *,
    metadata: dict[str, str],
    chunk_rows: int = CHUNK_ROWS,
) -> int:
    """Stream an images + labels archive pair into a Parquet table at `dest`; return its rows.

    Counts and image size are checked before anything is written; `metadata` is stored in the
    schema. Memory is O(chunk_rows) plus the labels (one byte per row). Each chunk becomes one
    row group.
    """
    count, rows, cols = read_image_header(images_path)
    if rows * cols != N_PIXELS:
        raise TableError(
            f"{os.fspath(images_path)}: images are {rows}x{cols} = {rows * cols} pixels, "
            f"expected {N_PIXELS} ({SIDE}x{SIDE}). This is not an MNIST-family archive."
        )
    labels = read_labels(labels_path)
    if len(labels) != count:
        raise TableError(
            f"{os.fspath(images_path)} has {count} images but {os.fspath(labels_path)} has "
            f"{len(labels)} labels; they must be the same split of the same dataset."
        )
    schema = SCHEMA.with_metadata({str(k): str(v) for k, v in metadata.items()})
    done = 0
    with (
        atomic_path(dest) as tmp,
        pq.ParquetWriter(
            tmp,
            schema,
            compression=COMPRESSION,
            compression_level=COMPRESSION_LEVEL,
            use_dictionary=USE_DICTIONARY,
        ) as writer,
    ):
        for chunk in iter_image_chunks(images_path, chunk_rows):
            n = len(chunk)
            # Contiguous (784, n): every row of it is a column, handed to Arrow without a copy.
            pixels = np.ascontiguousarray(chunk.T)
            arrays = [pa.array(column) for column in pixels]
            arrays.append(pa.array(labels[done : done + n]))
            writer.write_table(pa.Table.from_arrays(arrays, schema=schema), row_group_size=n)
            done += n
    return done


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The key-value metadata stored with a table (without Arrow's and pandas' own keys)."""
    raw = pq.read_schema(path).metadata or {}
    return {k.decode(): v.decode() for k, v in raw.items() if not k.startswith(_ARROW_KEYS)}


def num_rows(path: str | os.PathLike) -> int:
    """The number of rows of a pixel table, from its footer."""
    with _open_table(path) as file:
        return file.metadata.num_rows


def _open_table(path: str | os.PathLike) -> pq.ParquetFile:
    """Open a pixel table, checking its columns and types."""
    try:
        file = pq.ParquetFile(path)
    except pa.ArrowInvalid as err:
        raise TableError(
            f"{os.fspath(path)}: not a readable Parquet file ({err}). Delete it and rerun the "
            "conversion."
        ) from err
    found = file.schema_arrow
    if found.names != COLUMNS or any(t != pa.uint8() for t in found.types):
        file.close()
        names = ", ".join(found.names[:5]) + (", ..." if len(found.names) > 5 else "")
        raise TableError(
            f"{os.fspath(path)}: expected a pixel table (pixel0..pixel783 and target, all uint8), "
            f"found {len(found.names)} columns ({names}). Make it with convert_idx_to_parquet."
        )
    return file


def _to_arrays(table: pa.Table) -> tuple[np.ndarray, np.ndarray]:
    """(x (n, 784), target (n,)) from a pixel table.

    x is filled column by column into a (784, n) array and returned as its transpose, a view:
    a copy into C order would cost more than reading the table (uint8 transposes run at ~0.2 GB/s).
    """
    pixels = np.empty((N_PIXELS, table.num_rows), dtype=np.uint8)
    for i in range(N_PIXELS):
        pixels[i] = table.column(i).to_numpy()
    return pixels.T, table.column(N_PIXELS).to_numpy().copy()


def read_arrays(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """The whole table as x (N, 784) uint8 (Fortran-ordered) and target (N,) uint8."""
    with _open_table(path) as file:
        return _to_arrays(file.read(columns=COLUMNS))


def iter_batches(
    path: str | os.PathLike, batch_rows: int, start: int = 0, stop: int | None = None
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield (x (n, 784) uint8, target (n,) uint8) for rows [start, stop), `batch_rows` at a time.

    Every batch has exactly `batch_rows` rows except the last. Only the row groups that overlap
    the range are read, one at a time: memory is O(batch_rows + row group).
    """
    if batch_rows < 1:
        raise ValueError(f"batch_rows must be a positive integer, got {batch_rows}")
    file = _open_table(path)
    total = file.metadata.num_rows
    stop = total if stop is None else stop
    if not 0 <= start <= stop <= total:
        file.close()
        raise ValueError(
            f"{os.fspath(path)}: rows [{start}, {stop}) are not within the table's {total} rows"
        )
    return _rebatch(_row_ranges(file, start, stop), batch_rows)


def _row_ranges(
    file: pq.ParquetFile, start: int, stop: int
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The rows [start, stop) as one (x, target) piece per overlapping row group."""
    with file:
        lo = 0
        for group in range(file.num_row_groups):
            hi = lo + file.metadata.row_group(group).num_rows
            if max(lo, start) < min(hi, stop):
                x, target = _to_arrays(file.read_row_group(group, columns=COLUMNS))
                keep = slice(max(start, lo) - lo, min(stop, hi) - lo)
                yield x[keep], target[keep]
            lo = hi


def _rebatch(
    pieces: Iterator[tuple[np.ndarray, np.ndarray]], batch_rows: int
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Regroup pieces into batches of exactly `batch_rows` rows (the last may be shorter)."""
    pending: list[tuple[np.ndarray, np.ndarray]] = []
    count = 0
    for x, target in pieces:
        pos = 0
        while pos < len(x):
            take = min(batch_rows - count, len(x) - pos)
            pending.append((x[pos : pos + take], target[pos : pos + take]))
            count += take
            pos += take
            if count == batch_rows:
                yield _join(pending)
                pending, count = [], 0
    if count:
        yield _join(pending)


def _join(pieces: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """One batch from its pieces: the piece itself if there is one, else a Fortran-ordered copy."""
    if len(pieces) == 1:
        return pieces[0]
    rows = sum(len(t) for _, t in pieces)
    x = np.empty((rows, N_PIXELS), dtype=np.uint8, order="F")
    target = np.empty(rows, dtype=np.uint8)
    at = 0
    for px, pt in pieces:
        x[at : at + len(pt)] = px
        target[at : at + len(pt)] = pt
        at += len(pt)
    return x, target
