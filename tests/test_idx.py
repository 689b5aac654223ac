"""Strict IDX parsing: round trips on generated archives, and every way an archive can be wrong."""

import hashlib
import re
import struct
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from mnist_pipeline.idx import (
    IdxFormatError,
    iter_image_chunks,
    iter_label_chunks,
    read_image_header,
    read_label_count,
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


def test_reused_chunks_share_one_buffer_and_each_holds_its_images(tmp_path, split):
    images, _ = split
    path = write(tmp_path / "i.gz", gz(idx_images(images)))
    chunks = iter_image_chunks(path, 7, reuse=True)
    first = next(chunks)
    copies = [first.copy()]
    for chunk in chunks:  # 7, 7, 2 more
        assert np.shares_memory(chunk, first)
        copies.append(chunk.copy())
    assert [len(c) for c in copies] == [7, 7, 7, 2]
    np.testing.assert_array_equal(np.concatenate(copies), images.reshape(23, 784))


def test_rows_and_cols_are_read_in_order(tmp_path):
    images = (np.arange(2 * 28 * 28) % 251).astype(np.uint8).reshape(2, 28, 28)
    path = write(tmp_path / "i.gz", gz(idx_images(images)))
    assert read_image_header(path) == (2, 28, 28)
    flat = read_images(path)
    assert flat[0, 28 * 3 + 5] == images[0, 3, 5] and flat[1, 783] == images[1, 27, 27]
    np.testing.assert_array_equal(flat, (np.arange(2 * 784) % 251).reshape(2, 784))


@pytest.mark.parametrize(("rows", "cols"), [(16, 49), (1, 784), (56, 14), (28, 27), (0, 0)])
def test_images_other_than_28x28_are_refused(tmp_path, rows, cols):
    images = np.zeros((3, rows, cols), np.uint8)
    path = write(tmp_path / "i.gz", gz(idx_images(images)))
    pattern = named(path, rf"images of {rows}x{cols} pixels, expected 28x28 .*not an MNIST-family")
    with pytest.raises(IdxFormatError, match=pattern):
        read_image_header(path)
    with pytest.raises(IdxFormatError, match=pattern):
        read_images(path)


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
    assert read_label_count(path) == 23
    chunks = list(iter_label_chunks(path, 10, count=23))
    assert [len(c) for c in chunks] == [10, 10, 3]
    np.testing.assert_array_equal(np.concatenate(chunks), labels)


class Counted:
    """A digest that counts the bytes it is fed (how far into the file a reader went)."""

    def __init__(self):
        self.bytes = 0
        self.sha = hashlib.sha256()

    def update(self, data):
        self.bytes += len(data)
        self.sha.update(data)

    def hexdigest(self):
        return self.sha.hexdigest()


@pytest.mark.parametrize("padding", [b"", b"\0" * 100_000])
def test_digest_covers_every_byte_of_the_file_in_one_pass(tmp_path, split, padding):
    images, labels = split
    # gzip allows zero padding after the stream: it is part of the file, so of its hash.
    image_path = write(tmp_path / "i.gz", gz(idx_images(images)) + padding)
    label_path = write(tmp_path / "l.gz", gz(idx_labels(labels)) + padding)
    digest = Counted()
    chunks = list(iter_image_chunks(image_path, 5, digest=digest))
    np.testing.assert_array_equal(np.concatenate(chunks), images.reshape(23, 784))
    assert digest.bytes == image_path.stat().st_size
    assert digest.hexdigest() == hashlib.sha256(image_path.read_bytes()).hexdigest()
    digest = Counted()
    np.testing.assert_array_equal(read_labels(label_path, digest=digest), labels)
    assert digest.bytes == label_path.stat().st_size
    assert digest.hexdigest() == hashlib.sha256(label_path.read_bytes()).hexdigest()


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
    with pytest.raises(ValueError, match="chunk_rows must be a positive integer, got 0"):
        iter_label_chunks(tmp_path / "never-opened.gz", 0)


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
        rf"truncated payload: the header promises 23 images of 28x28 \({23 * 784:,} bytes\), "
        rf"but the data ends after {read:,} bytes \(in image 22\)\. Delete it and rerun"
    )
    chunks = []
    with pytest.raises(IdxFormatError, match=named(path, pattern)):
        chunks.extend(iter_image_chunks(path, 1))
    # Every complete image before the cut came out first.
    np.testing.assert_array_equal(np.concatenate(chunks), images[:22].reshape(22, 784))


def test_truncated_label_payload(tmp_path, split):
    path = write(tmp_path / "l.gz", gz(idx_labels(split[1])[:-3]))
    pattern = r"truncated payload: the header promises 23 labels, but the data ends after 20\. Del"
    with pytest.raises(IdxFormatError, match=named(path, pattern)):
        read_labels(path)


def test_trailing_bytes_after_images(tmp_path, split):
    images, _ = split
    path = write(tmp_path / "i.gz", gz(idx_images(images) + b"\x00" * 5))
    chunks = []
    pattern = (
        r"more bytes than the header promises: it promises 23 images of 28x28 \(18,032 bytes\), "
        r"and 5 unexpected bytes follow the payload\. .*Delete it and rerun"
    )
    with pytest.raises(IdxFormatError, match=named(path, pattern)):
        chunks.extend(iter_image_chunks(path, 10))
    # Detected after the last chunk: all images were yielded first.
    assert [len(c) for c in chunks] == [10, 10, 3]


def test_trailing_bytes_after_labels(tmp_path, split):
    path = write(tmp_path / "l.gz", gz(idx_labels(split[1]) + b"\x07"))
    pattern = r"more bytes than the header promises: it promises 23 labels \(23 bytes\), and 1 "
    with pytest.raises(IdxFormatError, match=named(path, pattern)):
        read_labels(path)


READ_AHEAD = 1 << 20  # compressed bytes the inflater may read beyond what it has inflated


def bomb(payload: bytes, gib: int) -> bytes:
    """`payload` gzipped, then `gib` GiB of zeros in further gzip members (~1 MB per GiB)."""
    return gz(payload) + gz(bytes(1 << 20)) * (1024 * gib)


def test_gigabytes_after_the_labels_are_refused_without_reading_them(tmp_path, split):
    path = write(tmp_path / "l.gz", bomb(idx_labels(split[1]), gib=2))
    digest = Counted()
    pattern = r"it promises 23 labels \(23 bytes\), and more than 1,048,576 unexpected bytes"
    tracemalloc.start()
    try:
        with pytest.raises(IdxFormatError, match=named(path, pattern)):
            read_labels(path, digest=digest)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20
    # It stopped a few MiB into the 2 GiB of zeros (each MiB is a ~1 KB member of the file, so
    # the file is ~2 MB): no further than the inflater's read-ahead, well short of the end.
    assert digest.bytes < len(gz(idx_labels(split[1]))) + READ_AHEAD


def test_gigabytes_after_the_images_are_refused_without_reading_them(tmp_path, split):
    path = write(tmp_path / "i.gz", bomb(idx_images(split[0]), gib=2))
    digest = Counted()
    with pytest.raises(IdxFormatError, match=named(path, "and more than 1,048,576 unexpected")):
        read_images(path)
    with pytest.raises(IdxFormatError):
        list(iter_image_chunks(path, 100, digest=digest))
    assert digest.bytes < len(gz(idx_images(split[0]))) + READ_AHEAD


def test_a_label_count_of_four_billion_allocates_nothing_for_it(tmp_path, split):
    data = struct.pack(">II", 2049, 2**32 - 1) + split[1].tobytes()
    path = write(tmp_path / "l.gz", gz(data))
    assert read_label_count(path) == 2**32 - 1
    tracemalloc.start()
    try:
        with pytest.raises(IdxFormatError, match=named(path, "promises 4,294,967,295 labels, bu")):
            read_labels(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20


def test_labels_whose_count_is_not_the_expected_one_are_refused_before_reading(tmp_path, split):
    data = struct.pack(">II", 2049, 2**32 - 1) + split[1].tobytes()
    path = write(tmp_path / "l.gz", gz(data))
    pattern = r"the header promises 4,294,967,295 labels, expected 23 \(one per image\)"
    tracemalloc.start()
    try:
        with pytest.raises(IdxFormatError, match=named(path, pattern)):
            next(iter_label_chunks(path, 2**32, count=23))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20


def test_an_image_count_of_four_billion_reads_in_chunks(tmp_path, split):
    data = struct.pack(">IIII", 2051, 2**32 - 1, 28, 28) + split[0].tobytes()
    path = write(tmp_path / "i.gz", gz(data))
    with pytest.raises(IdxFormatError, match=named(path, "truncated payload.*in image 23")):
        read_images(path, chunk_rows=1000)


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


def test_a_gzip_of_several_members_reads_as_one_stream(tmp_path, split):
    # As `cat a.gz b.gz` and parallel compressors (pigz, bgzip) make them.
    data = idx_labels(split[1])
    path = write(tmp_path / "l.gz", gz(data[:5]) + gz(data[5:]))
    np.testing.assert_array_equal(read_labels(path), split[1])


def test_bytes_that_are_not_gzip_after_the_stream_are_refused(tmp_path, split):
    path = write(tmp_path / "l.gz", gz(idx_labels(split[1])) + b"<html>")
    with pytest.raises(IdxFormatError, match=named(path, "or bytes that are not gzip follow it")):
        read_labels(path)


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
    pattern = r"the label at index 4 is 10, expected a class in 0\.\.9 \(2 out of range among"
    with pytest.raises(IdxFormatError, match=named(path, pattern + r" labels 0\.\.22\)")):
        read_labels(path)
    with pytest.raises(IdxFormatError, match=named(path, pattern + r" labels 0\.\.9\)")):
        list(iter_label_chunks(path, 10))
