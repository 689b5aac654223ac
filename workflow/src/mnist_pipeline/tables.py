"""The pixel tables: IDX archives streamed into Parquet, and Parquet read back in row batches.

A table has columns pixel0..pixel783 (uint8) and target (uint8), one row per image in archive
order, and key-value metadata naming its source (dataset, split, and the SHA-256 of the archive
bytes it was made from). Images are stored upright, row by row (pixel SIDE*r + c is row r,
column c), whatever way the archive stores them; targets are class indices 0..K-1.
"""

import hashlib
import logging
import os
from collections.abc import Callable, Iterator, Mapping

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .atomic import atomic_path
from .bundle import Source, ZipMember, source_name, source_sha256
from .dims import CLASSES, PIXELS, SIDE
from .errors import MnistPipelineError
from .idx import (
    IdxFormatError,
    iter_image_chunks,
    iter_label_chunks,
    read_image_header,
    read_label_count,
)
from .progress import Progress

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
ARCHIVE_KINDS = ("images", "labels")
_LOG = logging.getLogger(__name__)


class TableError(MnistPipelineError, ValueError):
    """A pixel table or its inputs are not what the pipeline expects."""


class ChecksumError(TableError):
    """An archive's bytes are not the ones its pin (a SHA-256) names."""


def convert_idx_to_parquet(
    images_path: Source,
    labels_path: Source,
    dest: str | os.PathLike,
    *,
    metadata: Mapping[str, str],
    sha256: Mapping[str, str] | None = None,
    chunk_rows: int = CHUNK_ROWS,
    log: Callable[[str], object] = _LOG.info,
    transposed: bool = False,
    classes: int = CLASSES,
    first_label: int = 0,
) -> int:
    """Stream an images + labels archive pair into a Parquet table at `dest`; return its rows.

    The archives are files or members of a zip bundle. `transposed`: the archive stores each
    image transposed (column by column, as EMNIST does); the table gets it upright. The labels
    must lie in first_label..first_label+classes-1; the table holds them less `first_label`.

    `sha256` pins the archives ({"images": hex, "labels": hex}): each is hashed as it is read,
    and one whose bytes hash otherwise is refused before the table takes its name. The table's
    metadata is `metadata` plus images_sha256 and labels_sha256, the SHA-256 of the bytes read.
    Counts and image size are checked before anything is written. Memory is O(chunk_rows); each
    chunk becomes one row group. Progress goes to `log` every few seconds of a long conversion.
    """
    paths = {"images": images_path, "labels": labels_path}
    pins = {kind: pin.lower() for kind, pin in (sha256 or {}).items()}
    numbering = {"classes": classes, "first_label": first_label}
    try:
        return _convert(paths, pins, dest, dict(metadata), chunk_rows, log, transposed, numbering)
    except ChecksumError:
        raise
    except (IdxFormatError, TableError) as err:
        # An archive that is not the pinned one is the cause to report, whatever broke reading it.
        for kind, path in paths.items():
            if kind in pins:
                _check_pin(path, source_sha256(path), pins[kind], err)
        raise


def _convert(
    paths: Mapping[str, Source],
    pins: Mapping[str, str],
    dest: str | os.PathLike,
    metadata: dict[str, str],
    chunk_rows: int,
    log: Callable[[str], object],
    transposed: bool,
    numbering: Mapping[str, int],
) -> int:
    count, _, _ = read_image_header(paths["images"])
    labels_count = read_label_count(paths["labels"])
    if labels_count != count:
        raise TableError(
            f"{source_name(paths['images'])} has {count} images but {source_name(paths['labels'])} "
            f"has {labels_count} labels; they must be the same split of the same dataset."
        )
    digests = {kind: hashlib.sha256() for kind in ARCHIVE_KINDS}
    chunks = zip(
        iter_image_chunks(paths["images"], chunk_rows, digest=digests["images"]),
        iter_label_chunks(
            paths["labels"], chunk_rows, count=count, digest=digests["labels"], **numbering
        ),
        strict=True,
    )
    progress = Progress(os.fspath(dest), count, "rows", log)
    with (
        atomic_path(dest) as tmp,
        pq.ParquetWriter(
            tmp,
            SCHEMA,
            compression=COMPRESSION,
            compression_level=COMPRESSION_LEVEL,
            use_dictionary=USE_DICTIONARY,
            # The metadata holds the hashes of the archives, known once they are read: it is
            # written with the footer, not with an Arrow schema stored up front.
            store_schema=False,
        ) as writer,
    ):
        for images, labels in chunks:
            pixels = _pixel_columns(images, transposed)
            arrays = [pa.array(column) for column in pixels]
            arrays.append(pa.array(labels))
            writer.write_table(
                pa.Table.from_arrays(arrays, schema=SCHEMA), row_group_size=len(labels)
            )
            progress.update(len(labels))
        for kind, path in paths.items():
            metadata[f"{kind}_sha256"] = digests[kind].hexdigest()
            if kind in pins:
                _check_pin(path, metadata[f"{kind}_sha256"], pins[kind])
        writer.add_key_value_metadata({str(k): str(v) for k, v in metadata.items()})
    return progress.done


def _pixel_columns(images: np.ndarray, transposed: bool) -> np.ndarray:
    """Contiguous (784, n) pixels of upright images, from images (n, 784) as an archive holds
    them: every row is a column of the table, handed to Arrow without a copy. Either way this
    is one copy; for `transposed` images it also swaps each image's rows and columns."""
    if not transposed:
        return np.ascontiguousarray(images.T)
    # (image, column, row) as stored -> (row, column, image); the reshape makes the one copy.
    return images.reshape(-1, SIDE, SIDE).transpose(2, 1, 0).reshape(PIXELS, len(images))


def _check_pin(path: Source, found: str, pin: str, cause: Exception | None = None):
    """Refuse an archive whose SHA-256 is not its pin; `cause`: what went wrong reading it."""
    if found != pin:
        name = source_name(path)
        detail = f" Reading it failed: {cause}" if cause else ""
        if isinstance(path, ZipMember):
            raise ChecksumError(
                f"{name}: SHA-256 {found}, but the config pins {pin} for this member, and the zip "
                f"itself is the one its pin names.{detail} Fix the member's sha256 in the config, "
                "or leave it out: the zip's pin and the member's CRC-32 already vouch for it."
            )
        raise ChecksumError(
            f"{name}: SHA-256 {found}, but the config pins {pin}: these are not the bytes that "
            f"were downloaded and verified (was the file replaced or changed since?).{detail} "
            f"Delete {name} and rerun, so it is downloaded and verified again."
        )


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The key-value metadata stored with a table (without Arrow's and pandas' own keys)."""
    with pq.ParquetFile(path) as file:
        raw = file.metadata.metadata or {}
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
    file, stop = _open_range(path, start, stop)
    return _rebatch(_row_ranges(file, start, stop), batch_rows)


def iter_targets(
    path: str | os.PathLike, start: int = 0, stop: int | None = None
) -> Iterator[np.ndarray]:
    """Yield the targets (uint8) of rows [start, stop), one array per overlapping row group,
    reading the target column only."""
    file, stop = _open_range(path, start, stop)
    return _targets(file, start, stop)


def _open_range(
    path: str | os.PathLike, start: int, stop: int | None
) -> tuple[pq.ParquetFile, int]:
    """Open a pixel table and check that rows [start, stop) (stop None: to the end) are in it."""
    file = _open_table(path)
    total = file.metadata.num_rows
    stop = total if stop is None else stop
    if not 0 <= start <= stop <= total:
        file.close()
        raise ValueError(
            f"{os.fspath(path)}: rows [{start}, {stop}) are not within the table's {total} rows"
        )
    return file, stop


def _groups(file: pq.ParquetFile, start: int, stop: int) -> Iterator[tuple[int, slice]]:
    """(row group, the slice of it within rows [start, stop)) for each overlapping row group."""
    lo = 0
    for group in range(file.num_row_groups):
        hi = lo + file.metadata.row_group(group).num_rows
        if max(lo, start) < min(hi, stop):
            yield group, slice(max(start, lo) - lo, min(stop, hi) - lo)
        lo = hi


def _row_ranges(
    file: pq.ParquetFile, start: int, stop: int
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The rows [start, stop) as one (x, target) piece per overlapping row group."""
    with file:
        for group, keep in _groups(file, start, stop):
            x, target = _to_arrays(file.read_row_group(group, columns=COLUMNS))
            yield x[keep], target[keep]


def _targets(file: pq.ParquetFile, start: int, stop: int) -> Iterator[np.ndarray]:
    with file:
        for group, keep in _groups(file, start, stop):
            yield file.read_row_group(group, columns=[TARGET]).column(0).to_numpy()[keep]


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
