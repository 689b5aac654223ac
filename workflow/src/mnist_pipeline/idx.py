"""Strict, streaming readers for gzip-compressed IDX archives (the MNIST file format).

IDX is big-endian: a 4-byte magic (0x0000, a type byte, a dimension count), one uint32 per
dimension, then the payload. Images are magic 2051 (count, rows, cols, then count*rows*cols
bytes); labels are magic 2049 (count, then count bytes). Anything else is an error that names
the file, what was expected and what was found.
"""

import gzip
import os
import struct
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import BinaryIO

import numpy as np

from .dims import CLASSES
from .errors import MnistPipelineError

IMAGES_MAGIC = 2051
LABELS_MAGIC = 2049
N_CLASSES = CLASSES

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
_SKIP_BYTES = 1 << 20


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
        return (
            f"{name}: the file is empty; expected a gzip-compressed IDX archive. Download it again."
        )
    hint = "expected a gzip-compressed IDX archive (.gz)"
    if head[:2] == b"\x00\x00" and len(head) >= 4:
        hint += (
            "; it looks like an uncompressed IDX file: compress it with `gzip -n` or use the .gz"
        )
    elif head.lstrip()[:1] == b"<":
        hint += "; it looks like an HTML/XML page: the mirror answered with a web page"
    return f"{name}: not a gzip file (it starts with {head[:8]!r}); {hint}."


@contextmanager
def _open_gzip(path: str | os.PathLike) -> Iterator[tuple[str, BinaryIO]]:
    """Open a gzip file for reading; damage in the compressed stream becomes an IdxFormatError."""
    name = os.fspath(path)
    with open(path, "rb") as raw:
        head = raw.read(8)
        if head[:2] != _GZIP_MAGIC:
            raise IdxFormatError(_not_gzip_message(name, head))
        raw.seek(0)
        try:
            with gzip.GzipFile(fileobj=raw, mode="rb") as stream:
                yield name, stream
        except EOFError as err:
            raise IdxFormatError(
                f"{name}: the gzip stream ends early ({err}); the file is truncated. "
                "Download it again."
            ) from err
        except (gzip.BadGzipFile, zlib.error) as err:
            raise IdxFormatError(
                f"{name}: the gzip stream is damaged ({err}). Download it again."
            ) from err


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
            f"found only {len(raw)}. Download it again."
        )
    return struct.unpack(f">{ndims}I", raw[4:])


def _check_end(name: str, stream: BinaryIO, expected: int, what: str) -> None:
    """Raise if any bytes follow the payload; count them (streamed) for the message."""
    extra = 0
    while block := stream.read(_SKIP_BYTES):
        extra += len(block)
    if extra:
        raise IdxFormatError(
            f"{name}: {extra} unexpected bytes after the payload; the header promises {what} "
            f"({expected} bytes), so the header and the payload disagree. The file is corrupt or "
            "not an MNIST archive."
        )


def read_image_header(path: str | os.PathLike) -> tuple[int, int, int]:
    """Return (count, rows, cols) from an images archive's header, without reading the payload."""
    with _open_gzip(path) as (name, stream):
        count, rows, cols = _read_header(name, stream, IMAGES_MAGIC, 3)
    return count, rows, cols


def iter_image_chunks(path: str | os.PathLike, chunk_rows: int) -> Iterator[np.ndarray]:
    """Yield the images as uint8 arrays of shape (n, rows*cols), n <= chunk_rows, in file order.

    Streams from the .gz in O(chunk_rows) memory. A short payload raises as soon as it is seen;
    bytes after the last image raise after the last chunk has been yielded.
    """
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be a positive integer, got {chunk_rows}")
    return _image_chunks(path, chunk_rows)


def _image_chunks(path: str | os.PathLike, chunk_rows: int) -> Iterator[np.ndarray]:
    with _open_gzip(path) as (name, stream):
        count, rows, cols = _read_header(name, stream, IMAGES_MAGIC, 3)
        size = rows * cols
        what = f"{count} images of {rows}x{cols}"
        for first in range(0, count, chunk_rows):
            n = min(chunk_rows, count - first)
            chunk = np.empty(n * size, dtype=np.uint8)
            got = stream.readinto(chunk)
            if got < chunk.nbytes:
                read = first * size + got
                raise IdxFormatError(
                    f"{name}: truncated payload: the header promises {what} "
                    f"({count * size} bytes), but the data ends after {read} bytes "
                    f"(in image {read // size if size else first}). Download it again."
                )
            yield chunk.reshape(n, size)
        _check_end(name, stream, count * size, what)


def read_labels(path: str | os.PathLike) -> np.ndarray:
    """Return the labels of a labels archive as a uint8 array of shape (count,), each in 0..9."""
    with _open_gzip(path) as (name, stream):
        (count,) = _read_header(name, stream, LABELS_MAGIC, 1)
        labels = np.empty(count, dtype=np.uint8)
        got = stream.readinto(labels)
        if got < count:
            raise IdxFormatError(
                f"{name}: truncated payload: the header promises {count} labels, but the data "
                f"ends after {got}. Download it again."
            )
        _check_end(name, stream, count, f"{count} labels")
    bad = np.flatnonzero(labels >= N_CLASSES)
    if bad.size:
        first = int(bad[0])
        raise IdxFormatError(
            f"{name}: the label at index {first} is {labels[first]}, expected a class in "
            f"0..{N_CLASSES - 1} "
            f"({bad.size} labels out of range). The file is corrupt or not an MNIST archive."
        )
    return labels
