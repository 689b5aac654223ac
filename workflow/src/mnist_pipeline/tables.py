"""The pixel tables: IDX archives streamed into Parquet, and Parquet read back in row batches.

A table has columns pixel0..pixel783 (uint8) and target (uint8), one row per image in archive
order, and key-value metadata naming its source (dataset, split, and the SHA-256 of the archive
bytes it was made from). Images are stored upright, row by row (pixel SIDE*r + c is row r,
column c), whatever way the archive stores them; targets are class indices 0..K-1.
"""

import hashlib
import logging
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .arrays import arrow, values
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
from .prefetch import prefetched
from .progress import Progress

N_PIXELS = PIXELS
PIXEL_COLUMNS = [f"pixel{i}" for i in range(N_PIXELS)]
TARGET = "target"
COLUMNS = [*PIXEL_COLUMNS, TARGET]
# Required (non-null) columns: the writer then spends nothing on definition levels.
SCHEMA = pa.schema([pa.field(name, pa.uint8(), nullable=False) for name in COLUMNS])

# Parquet stores uint8 as INT32. Split into byte streams (three of the four all zero) and
# compressed with LZ4, a table is written much faster than with dictionaries and read back
# faster than with zstd (whose codec makes a new context for each of the 785 column chunks of a
# row group), and is not much larger than its IDX .gz. Row groups are large: each costs a fixed
# overhead per column chunk; one group (CHUNK_ROWS images) bounds the memory of conversion and
# of reading. Statistics are kept for the target only: nothing reads a pixel column's min and
# max. tests/benchmarks/bench_scale.py measures the whole workflow. Each page has a CRC-32,
# checked when it is read: LZ4 has no checksum of its own, so a damaged byte in a page would
# otherwise be read as another pixel value.
WRITE_OPTIONS = {
    "compression": "lz4",
    "use_dictionary": False,
    "use_byte_stream_split": True,
    "write_statistics": [TARGET],
    "write_page_checksum": True,
}
CHUNK_ROWS = 65536
# Rows transposed per step when images become columns: blocks that stay in cache copy faster
# than numpy's transpose of the whole chunk.
_TRANSPOSE_ROWS = 512
_BLOCK_ROWS = 4096  # images inflated at a time (at most)
_AHEAD = 2  # row groups made ahead of the one being encoded

_READ_COLUMNS = 197  # columns a row group is read by, four calls per row group
# Parquet writers write through a buffer of this many bytes: on a plain file, each of the small
# writes (and seeks) the writer makes per page is a system call of its own.
WRITE_BUFFER = 1 << 20

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
    # Images are inflated a few thousand rows at a time into one small buffer, transposed while
    # still in cache; labels come a row group at a time.
    block_rows = next(b for b in range(min(chunk_rows, _BLOCK_ROWS), 0, -1) if chunk_rows % b == 0)
    images = iter_image_chunks(paths["images"], block_rows, digest=digests["images"], reuse=True)
    labels = iter_label_chunks(
        paths["labels"], chunk_rows, count=count, digest=digests["labels"], **numbering
    )
    progress = Progress(os.fspath(dest), count, "rows", log)
    with (
        atomic_path(dest) as tmp,
        # The metadata holds the hashes of the archives, known once they are read: it is
        # written with the footer, not with an Arrow schema stored up front.
        parquet_writer(
            tmp, SCHEMA, store_schema=False, write_batch_size=chunk_rows, **WRITE_OPTIONS
        ) as writer,
    ):
        # Inflating, hashing and transposing the next row groups (in one thread) overlaps with
        # encoding this one (in this one).
        for group in prefetched(_row_groups(images, labels, transposed), depth=_AHEAD):
            writer.write_table(group, row_group_size=group.num_rows)
            progress.update(group.num_rows)
        for kind, path in paths.items():
            metadata[f"{kind}_sha256"] = digests[kind].hexdigest()
            if kind in pins:
                _check_pin(path, metadata[f"{kind}_sha256"], pins[kind])
        writer.add_key_value_metadata({str(k): str(v) for k, v in metadata.items()})
    return progress.done


@contextmanager
def parquet_writer(
    path: str | os.PathLike, schema: pa.Schema, **options
) -> Iterator[pq.ParquetWriter]:
    """A ParquetWriter of `schema` (with `options`) that writes `path` through a buffer, closed
    (its footer written and the buffer flushed) when the block ends."""
    with (
        pa.OSFile(os.fspath(path), "wb") as file,
        pa.BufferedOutputStream(file, WRITE_BUFFER) as sink,
        pq.ParquetWriter(sink, schema, **options) as writer,
    ):
        yield writer


def _row_groups(
    images: Iterator[np.ndarray], labels: Iterator[np.ndarray], transposed: bool
) -> Iterator[pa.Table]:
    """Tables of the images (in blocks of rows that divide a row group) and their labels (a
    row group at a time), made in a ring of buffers that the tables' columns share.

    A table's buffer is filled again _AHEAD + 1 tables later: by then (prefetched holds no more
    than _AHEAD made beyond the one its consumer holds) that table has been written.
    """
    ring: list[np.ndarray] = []
    for i, targets in enumerate(labels):
        if len(ring) <= _AHEAD:
            ring.append(np.empty((N_PIXELS, len(targets)), dtype=np.uint8))
        pixels = ring[i % len(ring)][:, : len(targets)]
        filled = 0
        while filled < len(targets):
            block = next(images)
            _transpose_into(pixels[:, filled : filled + len(block)], block, transposed)
            filled += len(block)
        # Rows of a contiguous (784, n) array: columns handed to Arrow without a copy.
        arrays = [arrow(column) for column in pixels]
        arrays.append(arrow(targets))
        yield pa.Table.from_arrays(arrays, schema=SCHEMA)
    for _ in images:  # none left: running it to its end checks that no bytes follow them
        pass


def _transpose_into(pixels: np.ndarray, images: np.ndarray, transposed: bool) -> None:
    """Fill `pixels` (784, n) with images (n, 784) as an archive holds them, made upright:
    `transposed` images have each image's rows and columns swapped."""
    for first in range(0, len(images), _TRANSPOSE_ROWS):
        block = images[first : first + _TRANSPOSE_ROWS]
        if transposed:  # (image, column, row) as stored -> (row, column, image)
            block = block.reshape(-1, SIDE, SIDE).transpose(0, 2, 1).reshape(len(block), PIXELS)
        pixels[:, first : first + len(block)] = block.T


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
        return _metadata(file)


def _metadata(file: pq.ParquetFile) -> dict[str, str]:
    raw = file.metadata.metadata or {}
    # Another writer's metadata need not be UTF-8: its bytes are shown, not a UnicodeDecodeError.
    return {
        k.decode(errors="backslashreplace"): v.decode(errors="backslashreplace")
        for k, v in raw.items()
        if not k.startswith(_ARROW_KEYS)
    }


def check_source(
    path: str | os.PathLike, dataset: str, split: str, sha256: Mapping[str, str]
) -> None:
    """Refuse a table that is not the one converted from `dataset`'s `split`, from the archives
    `sha256` pins ({"images": hex, "labels": hex}, either may be missing): its metadata, read
    from the footer alone, must say so.

    A table replaced by another one (the other split's, another dataset's, or one made from
    other archives) would otherwise be predicted and scored under this split's name.
    """
    expected = {"dataset": dataset, "split": split}
    expected |= {f"{kind}_sha256": pin.lower() for kind, pin in sha256.items()}
    with _open_table(path) as file:
        found = _metadata(file)
    wrong = [
        f"{key} '{found[key]}', expected '{value}'" if key in found else f"no {key}"
        for key, value in expected.items()
        if found.get(key) != value
    ]
    if wrong:
        raise TableError(
            f"{os.fspath(path)}: its metadata says {'; '.join(wrong)}: it is not the table "
            f"converted from the archives pinned under datasets.{dataset}.files for the {split} "
            "split (was it replaced, or copied from another split or project?). Delete it and "
            "rerun, so it is converted again from the verified archives."
        )


def num_rows(path: str | os.PathLike) -> int:
    """The number of rows of a pixel table, from its footer."""
    with _open_table(path) as file:
        return file.metadata.num_rows


def _open_table(path: str | os.PathLike) -> pq.ParquetFile:
    """Open a pixel table, checking its columns and types; its pages' checksums are checked as
    they are read (see `_reading`)."""
    try:
        file = pq.ParquetFile(path, page_checksum_verification=True)
    except (pa.ArrowException, OSError) as err:
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


@contextmanager
def _reading(path: str | os.PathLike) -> Iterator[None]:
    """Damage found while reading the table at `path` (a checksum that fails, a page that does not
    decode) becomes a TableError naming it."""
    try:
        yield
    except (pa.ArrowException, OSError) as err:
        raise TableError(
            f"{os.fspath(path)}: damaged ({err}). Delete it and rerun the conversion."
        ) from err


def _column_values(path: str | os.PathLike, column: pa.ChunkedArray, name: str) -> np.ndarray:
    """The values of one column of the pixel table `path`; a null in it raises TableError."""
    if column.null_count:
        raise TableError(
            f"{os.fspath(path)}: column {name} has {column.null_count} empty (null) cell(s); a "
            "pixel table has a value in every cell, each pixel 0..255 and the target class. Make "
            "it with convert_idx_to_parquet."
        )
    return values(column)


def _to_arrays(path: str | os.PathLike, table: pa.Table) -> tuple[np.ndarray, np.ndarray]:
    """(x (n, 784), target (n,)) from the pixel table read from `path`.

    x is filled column by column into a (784, n) array and returned as its transpose, a view:
    a copy into C order would cost more than reading the table (uint8 transposes run at ~0.2 GB/s).
    """
    pixels = np.empty((N_PIXELS, table.num_rows), dtype=np.uint8)
    for i, name in enumerate(PIXEL_COLUMNS):
        pixels[i] = _column_values(path, table.column(i), name)
    return pixels.T, _column_values(path, table.column(N_PIXELS), TARGET).copy()


def read_arrays(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """The whole table as x (N, 784) uint8 (Fortran-ordered) and target (N,) uint8."""
    with _open_table(path) as file, _reading(path):
        return _to_arrays(path, file.read(columns=COLUMNS))


def iter_batches(
    path: str | os.PathLike, batch_rows: int, start: int = 0, stop: int | None = None
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield (x (n, 784) uint8, target (n,) uint8) for rows [start, stop), `batch_rows` at a time.

    Every batch has exactly `batch_rows` rows except the last. Only the row groups that overlap
    the range are read, in order, one ahead of the batches handed out: memory is
    O(batch_rows + row group).
    """
    if batch_rows < 1:
        raise ValueError(f"batch_rows must be a positive integer, got {batch_rows}")
    file, stop = _open_range(path, start, stop)
    # The next row group is read and decoded while the caller works on this one.
    return _rebatch(prefetched(_row_ranges(path, file, start, stop)), batch_rows)


def iter_targets(
    path: str | os.PathLike, start: int = 0, stop: int | None = None
) -> Iterator[np.ndarray]:
    """Yield the targets (uint8) of rows [start, stop), one array per overlapping row group,
    reading the target column only."""
    file, stop = _open_range(path, start, stop)
    return _targets(path, file, start, stop)


def take_rows(path: str | os.PathLike, rows: np.ndarray) -> np.ndarray:
    """The pixels (len(rows), 784) of the given rows, ascending, decoding only the row groups
    that hold them."""
    rows = np.asarray(rows, dtype=np.int64)
    with _open_table(path) as file, _reading(path):
        total = file.metadata.num_rows
        if len(rows) and (np.any(np.diff(rows) < 0) or rows[0] < 0 or rows[-1] >= total):
            raise ValueError(
                f"{os.fspath(path)}: rows must ascend within the table's {total} rows, got "
                f"{rows[:5].tolist()}{'...' if len(rows) > 5 else ''}"
            )
        out = np.empty((len(rows), N_PIXELS), dtype=np.uint8)
        pool = _Reused()
        first = 0
        for group in range(file.num_row_groups):
            end = first + file.metadata.row_group(group).num_rows
            lo, hi = np.searchsorted(rows, [first, end])
            if lo < hi:
                out[lo:hi] = _read_group(path, file, group, pool)[0][rows[lo:hi] - first]
            first = end
    return out


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
    path: str | os.PathLike, file: pq.ParquetFile, start: int, stop: int
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The rows [start, stop) of the table at `path` as one (x, target) piece per overlapping
    row group."""
    pool = _Reused()
    with file, _reading(path):
        for group, keep in _groups(file, start, stop):
            x, target = _read_group(path, file, group, pool)
            yield x[keep], target[keep]


def _references(arrays: list[np.ndarray], i: int) -> int:
    """The references the interpreter counts to arrays[i], the list's among them."""
    return sys.getrefcount(arrays[i])


# What _references counts for an array that only its list refers to: interpreters differ in the
# temporary references they count, so it is measured, not assumed.
_ONLY_LISTED = _references([np.empty(0)], 0)


class _Reused:
    """(784, n) uint8 arrays for the pixels of row groups, each handed out again once nothing
    refers to it any more.

    A fresh array for every row group is memory the kernel must fault in and zero, page by page,
    each time. Every view of an array (a batch of its rows, their transpose) keeps the array
    referenced until it is dropped, so an array held by the pool alone is free to fill again.
    """

    KEEP = 4  # arrays kept; more in use at once are made (and freed) as before

    def __init__(self):
        self._arrays: list[np.ndarray] = []

    def empty(self, rows: int) -> np.ndarray:
        for i in range(len(self._arrays)):
            if self._arrays[i].shape[1] == rows and _references(self._arrays, i) == _ONLY_LISTED:
                return self._arrays[i]
        array = np.empty((N_PIXELS, rows), dtype=np.uint8)
        if len(self._arrays) < self.KEEP:
            self._arrays.append(array)
        return array


def _read_group(
    path: str | os.PathLike, file: pq.ParquetFile, group: int, pool: _Reused
) -> tuple[np.ndarray, np.ndarray]:
    """(x (n, 784), target (n,)) of one row group of the table `path` (open as `file`), as
    `_to_arrays` gives them; x is a view of an array from `pool`.

    Decoded _READ_COLUMNS columns at a time: Arrow holds the pages of all the columns a call
    reads until it returns, and a whole row group at once took far more than its pixels.
    """
    pixels = pool.empty(file.metadata.row_group(group).num_rows)
    for first in range(0, len(COLUMNS), _READ_COLUMNS):
        part = file.read_row_group(group, columns=COLUMNS[first : first + _READ_COLUMNS])
        for i, column in enumerate(part.columns, start=first):
            if i < N_PIXELS:
                pixels[i] = _column_values(path, column, COLUMNS[i])
            else:
                target = _column_values(path, column, TARGET).copy()
    return pixels.T, target


def _targets(
    path: str | os.PathLike, file: pq.ParquetFile, start: int, stop: int
) -> Iterator[np.ndarray]:
    with file, _reading(path):
        for group, keep in _groups(file, start, stop):
            column = file.read_row_group(group, columns=[TARGET]).column(0)
            yield _column_values(path, column, TARGET)[keep]


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
