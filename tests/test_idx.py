"""Strict IDX parsing: round trips on generated archives, and every way an archive can be wrong."""

import re
import struct
from pathlib import Path

import numpy as np
import pytest

from mnist_pipeline.idx import (
    IdxFormatError,
    iter_image_chunks,
    read_image_header,
    read_labels,
)

from idxgen import gz, idx_images, idx_labels, random_split


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def read_images(path: Path, chunk_rows: int = 7) -> np.ndarray:
    return np.concatenate(list(iter_image_chunks(path, chunk_rows)))


def named(path: Path, pattern: str) -> str:
    """A `match` pattern: the message names the file, then says `pattern`."""
    return re.escape(str(path)) + ".*" + pattern


@pytest.fixture
def split() -> tuple[np.ndarray, np.ndarray]:
    return random_split(23, seed=1)


@pytest.mark.parametrize("chunk_rows", [1, 4, 23, 1000])
def test_images_round_trip_in_chunks(tmp_path, split, chunk_rows):
    images, _ = split
    path = write(tmp_path / "i.gz", gz(idx_images(images)))
    chunks = list(iter_image_chunks(path, chunk_rows))
    sizes = [len(c) for c in chunks]
    assert sizes == [chunk_rows] * (23 // chunk_rows) + (
        [23 % chunk_rows] if 23 % chunk_rows else []
    )
    assert all(c.dtype == np.uint8 and c.shape[1] == 784 for c in chunks)
    np.testing.assert_array_equal(np.concatenate(chunks), images.reshape(23, 784))


def test_rows_and_cols_are_read_in_order(tmp_path):
    images = np.arange(2 * 5 * 3, dtype=np.uint8).reshape(2, 5, 3)
    path = write(tmp_path / "i.gz", gz(idx_images(images)))
    assert read_image_header(path) == (2, 5, 3)
    np.testing.assert_array_equal(read_images(path), [list(range(15)), list(range(15, 30))])


def test_empty_archives(tmp_path):
    images = write(tmp_path / "i.gz", gz(idx_images(np.zeros((0, 28, 28), np.uint8))))
    labels = write(tmp_path / "l.gz", gz(idx_labels(np.zeros(0, np.uint8))))
    assert list(iter_image_chunks(images, 5)) == []
    assert read_labels(labels).shape == (0,)


def test_labels_round_trip(tmp_path, split):
    _, labels = split
    path = write(tmp_path / "l.gz", gz(idx_labels(labels)))
    got = read_labels(path)
    assert got.dtype == np.uint8
    np.testing.assert_array_equal(got, labels)


def test_header_is_read_without_the_payload(tmp_path):
    # The header promises far more images than follow: reading it must not look further.
    path = write(tmp_path / "i.gz", gz(struct.pack(">IIII", 2051, 10**9, 28, 28)))
    assert read_image_header(path) == (10**9, 28, 28)


def test_chunks_stream_before_the_end_is_read(tmp_path, split):
    images, _ = split
    head = struct.pack(">IIII", 2051, 10**9, 28, 28)
    path = write(tmp_path / "i.gz", gz(head + images[:3].tobytes()))
    first = next(iter_image_chunks(path, 1))
    np.testing.assert_array_equal(first, images[:1].reshape(1, 784))


def test_chunk_rows_must_be_positive(tmp_path):
    with pytest.raises(ValueError, match="chunk_rows must be a positive integer, got 0"):
        iter_image_chunks(tmp_path / "never-opened.gz", 0)


@pytest.mark.parametrize(
    ("magic", "kind"),
    [
        (2049, r"the magic of an IDX labels file\)\. Check that the images and labels inputs"),
        (0x00000D03, r"an IDX file of 3 dimension\(s\) of floats, not an MNIST archive\)"),
        (0x12345678, r"not an IDX magic number\)"),
    ],
)
def test_images_with_wrong_magic(tmp_path, split, magic, kind):
    path = write(tmp_path / "i.gz", gz(idx_images(split[0], magic=magic)))
    pattern = named(path, rf"expected an IDX images file \(magic 2051\), found magic {magic} \(")
    with pytest.raises(IdxFormatError, match=pattern + kind):
        read_image_header(path)
    with pytest.raises(IdxFormatError, match=pattern + kind):
        read_images(path)


def test_labels_with_wrong_magic(tmp_path, split):
    path = write(tmp_path / "l.gz", gz(idx_labels(split[1], magic=2051)))
    with pytest.raises(
        IdxFormatError,
        match=named(
            path,
            r"expected an IDX labels file \(magic 2049\), found magic 2051 "
            r"\(the magic of an IDX images file\)\. Check that the images and labels",
        ),
    ):
        read_labels(path)


def test_truncated_image_payload(tmp_path, split):
    images, _ = split
    data = idx_images(images)[:-10]
    path = write(tmp_path / "i.gz", gz(data))
    read = len(data) - 16
    pattern = (
        rf"truncated payload: the header promises 23 images of 28x28 \({23 * 784} bytes\), "
        rf"but the data ends after {read} bytes \(in image 22\)"
    )
    chunks = []
    with pytest.raises(IdxFormatError, match=named(path, pattern)):
        chunks.extend(iter_image_chunks(path, 1))
    # Every complete image before the cut came out first.
    np.testing.assert_array_equal(np.concatenate(chunks), images[:22].reshape(22, 784))


def test_truncated_label_payload(tmp_path, split):
    path = write(tmp_path / "l.gz", gz(idx_labels(split[1])[:-3]))
    pattern = r"truncated payload: the header promises 23 labels, but the data ends after 20"
    with pytest.raises(IdxFormatError, match=named(path, pattern)):
        read_labels(path)


def test_trailing_bytes_after_images(tmp_path, split):
    images, _ = split
    path = write(tmp_path / "i.gz", gz(idx_images(images) + b"\x00" * 5))
    chunks = []
    pattern = r"5 unexpected bytes after the payload; the header promises 23 images of 28x28"
    with pytest.raises(IdxFormatError, match=named(path, pattern)):
        chunks.extend(iter_image_chunks(path, 10))
    # Detected after the last chunk: all images were yielded first.
    assert [len(c) for c in chunks] == [10, 10, 3]


def test_trailing_bytes_after_labels(tmp_path, split):
    path = write(tmp_path / "l.gz", gz(idx_labels(split[1]) + b"\x07"))
    pattern = r"1 unexpected bytes after the payload; the header promises 23 labels \(23 bytes\)"
    with pytest.raises(IdxFormatError, match=named(path, pattern)):
        read_labels(path)


@pytest.mark.parametrize("keep", [0, 3, 10, 15])
def test_truncated_image_header(tmp_path, split, keep):
    path = write(tmp_path / "i.gz", gz(idx_images(split[0])[:keep]))
    pattern = rf"truncated header: an IDX images file starts with 16 bytes, found only {keep}\."
    with pytest.raises(IdxFormatError, match=named(path, pattern)):
        read_image_header(path)


@pytest.mark.parametrize("keep", [0, 6])
def test_truncated_label_header(tmp_path, split, keep):
    path = write(tmp_path / "l.gz", gz(idx_labels(split[1])[:keep]))
    pattern = rf"truncated header: an IDX labels file starts with 8 bytes, found only {keep}\."
    with pytest.raises(IdxFormatError, match=named(path, pattern)):
        read_labels(path)


@pytest.mark.parametrize(
    ("content", "hint"),
    [
        (idx_images(np.zeros((2, 28, 28), np.uint8)), "it looks like an uncompressed IDX file"),
        (b"<!DOCTYPE html><html>Moved</html>", "it looks like an HTML/XML page"),
        (b"PK\x03\x04zip", "expected a gzip-compressed IDX archive"),
        (b"", "the file is empty"),
    ],
)
def test_not_gzip(tmp_path, content, hint):
    path = write(tmp_path / "x.gz", content)
    with pytest.raises(IdxFormatError, match=named(path, hint)):
        read_image_header(path)
    with pytest.raises(IdxFormatError, match=named(path, hint)):
        read_labels(path)
    if content:
        with pytest.raises(IdxFormatError, match=named(path, r"not a gzip file \(it starts with")):
            read_images(path)


def test_cut_gzip_stream(tmp_path, split):
    whole = gz(idx_images(split[0]))
    path = write(tmp_path / "i.gz", whole[: len(whole) // 2])
    with pytest.raises(IdxFormatError, match=named(path, "the gzip stream ends early.*truncated")):
        read_images(path)


def test_damaged_gzip_stream(tmp_path, split):
    whole = bytearray(gz(idx_labels(split[1])))
    whole[-8] ^= 0xFF  # the CRC-32 in the gzip trailer
    path = write(tmp_path / "l.gz", bytes(whole))
    with pytest.raises(IdxFormatError, match=named(path, "the gzip stream is damaged")):
        read_labels(path)


def test_label_out_of_range(tmp_path, split):
    labels = split[1].copy()
    labels[[4, 9]] = [10, 255]
    path = write(tmp_path / "l.gz", gz(idx_labels(labels)))
    pattern = r"the label at index 4 is 10, expected a class in 0\.\.9 \(2 labels out of range\)"
    with pytest.raises(IdxFormatError, match=named(path, pattern)):
        read_labels(path)
