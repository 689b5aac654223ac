"""Strict, streaming readers for gzip-compressed IDX archives (the MNIST file format).

IDX is big-endian: a 4-byte magic (0x0000, a type byte, a dimension count), one uint32 per
dimension, then the payload. Images are magic 2051 (count, rows, cols, then count*rows*cols
bytes; rows and cols are 28 in the MNIST family); labels are magic 2049 (count, then count
bytes, each a class, numbered from 0, or from another first label: EMNIST letters count from 1).
An archive is a file or a member of a zip bundle (`bundle.Source`). Anything else is an error
that names the file, what was expected and what was found. No header value decides how much
memory is taken: payloads are read in chunks of at most a given number of rows, and only as far
as the data goes.
"""

import gzip
import struct
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import BinaryIO

import numpy as np
from zlib_ng import gzip_ng, zlib_ng

from .bundle import Source, open_source, source_name
from .digest import Digest, HashingReader
from .dims import CLASSES, SIDE
from .errors import MnistPipelineError

IMAGES_MAGIC = 2051
LABELS_MAGIC = 2049

_GZIP_MAGIC = b"\x1f\x8b"
_IDX_TYPES = {
    0x08: "unsigned bytes",
    0x09: "signed bytes",
    0x0B: "16-bit integers",
    0x0C: "32-bit integers",
    0x0D: "floats",
    0x0E: "doubles",
}
_KINDS = {IMAGES_MAGIC: "IDX images file", LABELS_MAGIC: "IDX labels file"}
# Bytes after the payload are an error; this many are read to say how many, no more.
_TRAILING_SHOWN = 1 << 20
_LABEL_CHUNK = 1 << 20
_AGAIN = "Delete it and rerun, so it is downloaded and verified again."


class IdxFormatError(MnistPipelineError, ValueError):
    """An IDX archive is not what the pipeline expects (not gzip, wrong magic, wrong length...)."""


def _describe_magic(magic: int) -> str:
    if magic in _KINDS:
        return f"the magic of an {_KINDS[magic]}"
    kind, dims = (magic >> 8) & 0xFF, magic & 0xFF
    if magic >> 16 == 0 and kind in _IDX_TYPES:
        return f"an IDX file of {dims} dimension(s) of {_IDX_TYPES[kind]}, not an MNIST archive"
    return "not an IDX magic number"


def _not_gzip_message(name: str, head: bytes) -> str:
    if not head:
        return f"{name}: the file is empty; expected a gzip-compressed IDX archive. {_AGAIN}"
    hint = "expected a gzip-compressed IDX archive (.gz)"
    if head[:2] == b"\x00\x00" and len(head) >= 4:
        hint += (
            "; it looks like an uncompressed IDX file: compress it with `gzip -n` or use the .gz"
        )
    elif head.lstrip()[:1] == b"<":
        hint += "; it looks like an HTML/XML page: the mirror answered with a web page"
    return f"{name}: not a gzip file (it starts with {head[:8]!r}); {hint}."


@contextmanager
def _open_gzip(path: Source, digest: Digest | None = None) -> Iterator[tuple[str, BinaryIO]]:
    """Open a gzip file for reading; damage in the compressed stream (or a zip member whose
    CRC-32 is wrong) becomes an IdxFormatError.

    With a `digest`, every byte of the file is fed to it as gzip reads it, and what is left
    after the gzip stream once the block ends without error: one pass over the file.
    """
    name = source_name(path)
    try:
        with open_source(path) as raw:
            head = raw.peek(8)[:8]
            if head[:2] != _GZIP_MAGIC:
                raise IdxFormatError(_not_gzip_message(name, head))
            source = raw if digest is None else HashingReader(raw, digest)
            try:
                # zlib-ng inflates much faster than zlib, with the gzip module's behaviour, and
                # straight into the buffer a large readinto gives it.
                with gzip_ng.open(source, "rb") as stream:
                    yield name, stream
            except EOFError as err:
                raise IdxFormatError(
                    f"{name}: the gzip stream ends early ({err}); the file is truncated, or bytes "
                    f"that are not gzip follow it. {_AGAIN}"
                ) from err
            except (gzip.BadGzipFile, zlib_ng.error) as err:
                raise IdxFormatError(
                    f"{name}: the gzip stream is damaged ({err}). {_AGAIN}"
                ) from err
            if isinstance(source, HashingReader):
                source.finish()
    except zipfile.BadZipFile as err:  # a member's CRC-32 is checked on its last read
        raise IdxFormatError(f"{name}: the zip member is damaged ({err}). {_AGAIN}") from err


def _read_header(name: str, stream: BinaryIO, magic: int, ndims: int) -> tuple[int, ...]:
    """Check the magic and return the `ndims` big-endian uint32 dimensions that follow it."""
    raw = stream.read(4)
    if len(raw) == 4:
        (found,) = struct.unpack(">I", raw)
        if found != magic:
            hint = ""
            if found in _KINDS:
                hint = " Check that the images and labels inputs are not swapped."
            raise IdxFormatError(
                f"{name}: expected an {_KINDS[magic]} (magic {magic}), found magic {found} "
                f"({_describe_magic(found)}).{hint}"
            )
    raw += stream.read(4 * ndims)
    if len(raw) < 4 * (ndims + 1):
        raise IdxFormatError(
            f"{name}: truncated header: an {_KINDS[magic]} starts with {4 * (ndims + 1)} bytes, "
            f"found only {len(raw)}. {_AGAIN}"
        )
    return struct.unpack(f">{ndims}I", raw[4:])


def _check_end(name: str, stream: BinaryIO, expected: int, what: str) -> None:
    """Raise if any bytes follow the payload, reading no more than _TRAILING_SHOWN of them."""
    extra = len(stream.read(_TRAILING_SHOWN + 1))
    if extra:
        found = f"more than {_TRAILING_SHOWN:,}" if extra > _TRAILING_SHOWN else f"{extra:,}"
        raise IdxFormatError(
            f"{name}: more bytes than the header promises: it promises {what} ({expected:,} "
            f"bytes), and {found} unexpected bytes follow the payload. The file is corrupt or not "
            f"an MNIST archive. {_AGAIN}"
        )


def _read_image_header(name: str, stream: BinaryIO) -> int:
    """Check an images header (magic, 28x28 images) and return the image count."""
    count, rows, cols = _read_header(name, stream, IMAGES_MAGIC, 3)
    if (rows, cols) != (SIDE, SIDE):
        raise IdxFormatError(
            f"{name}: the header says images of {rows}x{cols} pixels, expected {SIDE}x{SIDE} "
            "(every image of the MNIST family is). This is not an MNIST-family archive."
        )
    return count


def read_image_header(path: Source) -> tuple[int, int, int]:
    """Return (count, rows, cols) from an images archive's header, without reading the payload.

    Images other than 28x28 are refused.
    """
    with _open_gzip(path) as (name, stream):
        count = _read_image_header(name, stream)
    return count, SIDE, SIDE


def read_label_count(path: Source) -> int:
    """The label count a labels archive's header promises, without reading the payload."""
    with _open_gzip(path) as (name, stream):
        (count,) = _read_header(name, stream, LABELS_MAGIC, 1)
    return count


def _check_chunk_rows(chunk_rows: int) -> None:
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be a positive integer, got {chunk_rows}")


def iter_image_chunks(
    path: Source, chunk_rows: int, *, digest: Digest | None = None, reuse: bool = False
) -> Iterator[np.ndarray]:
    """Yield the images as uint8 arrays of shape (n, 784), n <= chunk_rows, in file order.

    Streams from the .gz in O(chunk_rows) memory. A short payload raises as soon as it is seen;
    bytes after the last image raise after the last chunk has been yielded. A `digest` (e.g.
    hashlib.sha256()) is fed every byte of the file as stored, and is complete once the
    iterator is exhausted. `reuse`: every chunk is read into the same buffer, so a chunk holds
    its images only until the next one is asked for (no fresh memory to fault in per chunk).
    """
    _check_chunk_rows(chunk_rows)
    return _image_chunks(path, chunk_rows, digest, reuse)


def _image_chunks(
    path: Source, chunk_rows: int, digest: Digest | None, reuse: bool
) -> Iterator[np.ndarray]:
    size = SIDE * SIDE
    with _open_gzip(path, digest) as (name, stream):
        count = _read_image_header(name, stream)
        what = f"{count:,} images of {SIDE}x{SIDE}"
        buffer = None
        for first in range(0, count, chunk_rows):
            n = min(chunk_rows, count - first)
            if buffer is None or not reuse:
                buffer = np.empty(n * size, dtype=np.uint8)
            chunk = buffer[: n * size]
            got = stream.readinto(chunk)
            if got < chunk.nbytes:
                read = first * size + got
                raise IdxFormatError(
                    f"{name}: truncated payload: the header promises {what} "
                    f"({count * size:,} bytes), but the data ends after {read:,} bytes "
                    f"(in image {read // size}). {_AGAIN}"
                )
            yield chunk.reshape(n, size)
        _check_end(name, stream, count * size, what)


def iter_label_chunks(
    path: Source,
    chunk_rows: int,
    *,
    count: int | None = None,
    digest: Digest | None = None,
    classes: int = CLASSES,
    first_label: int = 0,
) -> Iterator[np.ndarray]:
    """Yield the labels as uint8 class indices 0..classes-1 in arrays of shape (n,),
    n <= chunk_rows: the archive's labels, which must lie in first_label..first_label+classes-1,
    less `first_label`.

    `count`, when known (the images' count), must be what the header promises: otherwise the
    archive is refused before any label is read. Streams in O(chunk_rows) memory; `digest` as
    in `iter_image_chunks`.
    """
    _check_chunk_rows(chunk_rows)
    return _label_chunks(path, chunk_rows, count, digest, range(first_label, first_label + classes))


def _label_chunks(
    path: Source, chunk_rows: int, expected: int | None, digest: Digest | None, labels: range
) -> Iterator[np.ndarray]:
    with _open_gzip(path, digest) as (name, stream):
        (count,) = _read_header(name, stream, LABELS_MAGIC, 1)
        if expected is not None and count != expected:
            raise IdxFormatError(
                f"{name}: the header promises {count:,} labels, expected {expected:,} (one per "
                "image); the labels and images must be the same split of the same dataset."
            )
        for first in range(0, count, chunk_rows):
            chunk = np.empty(min(chunk_rows, count - first), dtype=np.uint8)
            got = stream.readinto(chunk)
            if got < len(chunk):
                raise IdxFormatError(
                    f"{name}: truncated payload: the header promises {count:,} labels, but the "
                    f"data ends after {first + got:,}. {_AGAIN}"
                )
            _check_labels(name, chunk, first, labels)
            yield chunk - np.uint8(labels.start) if labels.start else chunk
        _check_end(name, stream, count, f"{count:,} labels")


def _check_labels(name: str, chunk: np.ndarray, first: int, labels: range) -> None:
    """Refuse labels outside `labels`; `first` is the index of the chunk's first label."""
    bad = np.flatnonzero((chunk < labels.start) | (chunk >= labels.stop))
    if bad.size:
        at = int(bad[0])
        numbered = f", numbered from {labels.start}" if labels.start else ""
        raise IdxFormatError(
            f"{name}: the label at index {first + at} is {chunk[at]}, expected a class in "
            f"{labels.start}..{labels.stop - 1} ({bad.size} out of range among labels {first}.."
            f"{first + len(chunk) - 1}). The file is corrupt or not an MNIST archive, or the "
            f"dataset has other classes than the config's {len(labels)}{numbered}."
        )


def read_labels(
    path: Source, *, digest: Digest | None = None, classes: int = CLASSES, first_label: int = 0
) -> np.ndarray:
    """Return the labels of a labels archive as uint8 class indices of shape (count,), as
    `iter_label_chunks` gives them.

    Memory grows with the labels actually read, never with what the header promises.
    """
    chunks = list(
        iter_label_chunks(
            path, _LABEL_CHUNK, digest=digest, classes=classes, first_label=first_label
        )
    )
    return np.concatenate(chunks) if chunks else np.empty(0, dtype=np.uint8)
