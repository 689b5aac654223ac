"""IDX -> Parquet conversion and batch reading, on generated archives and real MNIST if present."""

import functools
import gzip
import hashlib
import re
import struct
import subprocess
import sys
import tracemalloc
import weakref
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mnist_pipeline import tables
from mnist_pipeline.idx import IdxFormatError
from mnist_pipeline.progress import Progress
from mnist_pipeline.tables import (
    PIXEL_COLUMNS,
    TARGET,
    ChecksumError,
    TableError,
    check_source,
    convert_idx_to_parquet,
    iter_batches,
    iter_targets,
    num_rows,
    parquet_writer,
    read_arrays,
    read_metadata,
    take_rows,
)

from idxgen import damage_page, gz, idx_images, idx_labels, random_split
from project import SHARED_MNIST

ROWS = 37
GROUP = 8  # chunk_rows: row groups of 8, 8, 8, 8, 5
META = {"dataset": "mnist", "split": "test"}


def write_pair(folder: Path, images: np.ndarray, labels: np.ndarray, **edits) -> tuple[Path, Path]:
    """Write an images/labels archive pair; `edits` may replace the raw IDX bytes of either."""
    raw_images = edits.get("raw_images", idx_images(images))
    raw_labels = edits.get("raw_labels", idx_labels(labels))
    (folder / "i.gz").write_bytes(gz(raw_images))
    (folder / "l.gz").write_bytes(gz(raw_labels))
    return folder / "i.gz", folder / "l.gz"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def pins_of(images: Path, labels: Path) -> dict[str, str]:
    return {"images": sha256(images), "labels": sha256(labels)}


def assert_nothing_written(dest: Path) -> None:
    """No file under the final name, and no temporary file beside it."""
    assert not dest.exists()
    assert not dest.parent.exists() or list(dest.parent.iterdir()) == []


@pytest.fixture(scope="module")
def split() -> tuple[np.ndarray, np.ndarray]:
    return random_split(ROWS, seed=2)


def convert_split(folder: Path, split: tuple[np.ndarray, np.ndarray]) -> Path:
    dest = folder / "out" / "t.parquet"
    paths = write_pair(folder, *split)
    rows = convert_idx_to_parquet(
        *paths, dest, metadata=META, sha256=pins_of(*paths), chunk_rows=GROUP
    )
    assert rows == ROWS
    return dest


@pytest.fixture(scope="module")
def table(tmp_path_factory, split) -> Path:
    """One converted table shared by the read-only tests of this module."""
    return convert_split(tmp_path_factory.mktemp("table"), split)


def test_round_trip(table, split):
    images, labels = split
    x, target = read_arrays(table)
    assert x.dtype == target.dtype == np.uint8
    assert x.shape == (ROWS, 784)
    np.testing.assert_array_equal(x, images.reshape(ROWS, 784))
    np.testing.assert_array_equal(target, labels)
    assert num_rows(table) == ROWS
    folder = table.parent.parent
    assert read_metadata(table) == {
        **META,
        "images_sha256": sha256(folder / "i.gz"),
        "labels_sha256": sha256(folder / "l.gz"),
    }
    # Where any Parquet reader looks for it, too:
    assert pq.read_schema(table).metadata[b"labels_sha256"] == sha256(folder / "l.gz").encode()


def test_converting_and_reading_load_no_pandas(tmp_path, split):
    """pyarrow loads pandas (a third of a second) for numpy conversions; the jobs avoid them."""
    paths = write_pair(tmp_path, *split)
    code = (
        "import sys\n"
        "from mnist_pipeline.tables import convert_idx_to_parquet, iter_batches, iter_targets\n"
        f"convert_idx_to_parquet(*{[str(p) for p in paths]!r}, 't.parquet', metadata={{}})\n"
        "assert sum(len(x) for x, _ in iter_batches('t.parquet', 10)) == sum(\n"
        "    len(t) for t in iter_targets('t.parquet'))\n"
        "assert 'pandas' not in sys.modules, 'pandas was loaded'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=tmp_path)


def test_columns_schema_and_row_groups(table, split):
    images, labels = split
    schema = pq.read_schema(table)
    assert schema.names == [f"pixel{i}" for i in range(784)] + ["target"]
    assert schema.names[:784] == PIXEL_COLUMNS and schema.names[784] == TARGET
    assert set(schema.types) == {pa.uint8()}
    # Independently of read_arrays: pixel{28*r + c} of row k is image k at row r, column c.
    columns = pq.read_table(table, columns=["pixel0", "pixel29", "pixel783", "target"])
    np.testing.assert_array_equal(columns["pixel29"].to_numpy(), images[:, 1, 1])
    np.testing.assert_array_equal(columns["pixel783"].to_numpy(), images[:, 27, 27])
    np.testing.assert_array_equal(columns["target"].to_numpy(), labels)
    meta = pq.ParquetFile(table).metadata
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [8, 8, 8, 8, 5]
    assert list(table.parent.iterdir()) == [table]
    # Statistics for the target (row groups of a class can be skipped), none for the pixels.
    for i in range(meta.num_row_groups):
        group = meta.row_group(i)
        assert not any(group.column(c).is_stats_set for c in range(784))
        stats = group.column(784).statistics
        rows = labels[GROUP * i : GROUP * (i + 1)]
        assert (stats.min, stats.max) == (rows.min(), rows.max())


def test_row_groups_are_filled_from_several_image_blocks(tmp_path, split, monkeypatch):
    monkeypatch.setattr(tables, "_BLOCK_ROWS", 3)  # blocks of 2 rows: 4 to a group, then 2, 2, 1
    images, labels = split
    dest = convert_split(tmp_path, split)
    x, target = read_arrays(dest)
    np.testing.assert_array_equal(x, images.reshape(ROWS, 784))
    np.testing.assert_array_equal(target, labels)
    meta = pq.ParquetFile(dest).metadata
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [8, 8, 8, 8, 5]


@pytest.mark.parametrize("buffer", [256, tables.WRITE_BUFFER])
def test_parquet_writer_writes_the_bytes_of_a_plain_writer(tmp_path, split, monkeypatch, buffer):
    # Through a buffer smaller than a page (flushed many times) or the real one, the file is the
    # one pyarrow writes to a path itself: every offset in its footer still points where it should.
    monkeypatch.setattr(tables, "WRITE_BUFFER", buffer)
    images, labels = split
    data = pa.table(
        [pa.array(images[:, 5, i]) for i in range(28)] + [pa.array(labels)],
        names=[f"p{i}" for i in range(28)] + ["target"],
    )
    options = {**tables.WRITE_OPTIONS, "write_statistics": True}
    with parquet_writer(tmp_path / "buffered.parquet", data.schema, **options) as writer:
        writer.write_table(data, row_group_size=16)
    with pq.ParquetWriter(tmp_path / "plain.parquet", data.schema, **options) as writer:
        writer.write_table(data, row_group_size=16)
    assert (tmp_path / "buffered.parquet").read_bytes() == (tmp_path / "plain.parquet").read_bytes()
    assert pq.read_table(tmp_path / "buffered.parquet").equals(data)


def test_count_mismatch(tmp_path, split):
    images, labels = split
    paths = write_pair(tmp_path, images, labels[:-1])
    dest = tmp_path / "out" / "t.parquet"
    pattern = (
        re.escape(str(paths[0]))
        + r" has 37 images but "
        + re.escape(str(paths[1]))
        + r" has 36 labels; they must be the same split"
    )
    with pytest.raises(TableError, match=pattern):
        convert_idx_to_parquet(*paths, dest, metadata=META)
    assert_nothing_written(dest)


@pytest.mark.parametrize("shape", [(16, 49), (1, 784), (5, 3)])
def test_images_other_than_28x28(tmp_path, shape):
    images = np.zeros((4, *shape), np.uint8)
    paths = write_pair(tmp_path, images, np.zeros(4, np.uint8))
    dest = tmp_path / "out" / "t.parquet"
    pattern = re.escape(str(paths[0])) + rf": the header says images of {shape[0]}x{shape[1]} pix"
    with pytest.raises(IdxFormatError, match=pattern + r"els, expected 28x28"):
        convert_idx_to_parquet(*paths, dest, metadata=META)
    assert_nothing_written(dest)


def test_a_label_header_of_four_billion_is_refused_before_allocating(tmp_path, split):
    images, labels = split
    raw_labels = struct.pack(">II", 2049, 2**32 - 1) + labels.tobytes()
    paths = write_pair(tmp_path, images, labels, raw_labels=raw_labels)
    dest = tmp_path / "out" / "t.parquet"
    tracemalloc.start()
    try:
        with pytest.raises(TableError, match=r"has 37 images but .* has 4294967295 labels"):
            convert_idx_to_parquet(*paths, dest, metadata=META)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20
    assert_nothing_written(dest)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        # Found while streaming, after some row groups were written:
        ("truncated", "truncated payload"),
        ("trailing", "more bytes than the header promises"),
        # Found before writing:
        ("label 10", "the label at index 3 is 10"),
        ("swapped", r"expected an IDX images file \(magic 2051\), found magic 2049"),
    ],
)
def test_no_partial_file_on_bad_archives(tmp_path, split, edit, message):
    images, labels = split
    raw_images, raw_labels = idx_images(images), idx_labels(labels)
    if edit == "truncated":
        raw_images = raw_images[:-784]
    elif edit == "trailing":
        raw_images += b"\x00"
    elif edit == "label 10":
        raw_labels = raw_labels[:11] + b"\x0a" + raw_labels[12:]
    else:
        raw_images = raw_labels
    paths = write_pair(tmp_path, images, labels, raw_images=raw_images, raw_labels=raw_labels)
    dest = tmp_path / "out" / "t.parquet"
    with pytest.raises(IdxFormatError, match=message):
        convert_idx_to_parquet(*paths, dest, metadata=META, chunk_rows=GROUP)
    assert_nothing_written(dest)


def test_failure_keeps_an_earlier_good_table(tmp_path, split):
    images, labels = split
    table = convert_split(tmp_path, split)
    before = table.read_bytes()
    paths = write_pair(tmp_path, images, labels, raw_images=idx_images(images) + b"\x00")
    with pytest.raises(IdxFormatError):
        convert_idx_to_parquet(*paths, table, metadata=META, chunk_rows=GROUP)
    assert table.read_bytes() == before
    assert list(table.parent.iterdir()) == [table]


@pytest.mark.parametrize(
    ("batch_rows", "start", "stop"),
    [
        (1, 0, None),  # batch 1
        (5, 0, None),
        (8, 0, None),  # batches aligned with the row groups
        (9, 0, ROWS),  # batches straddling every boundary
        (100, 0, None),  # batch > rows
        (3, 6, 19),  # start and stop inside groups, crossing two boundaries
        (7, 7, 9),  # one row on each side of a boundary
        (4, 8, 16),  # exactly one group
        (2, 36, 37),  # the last row
        (6, 12, 12),  # empty range
    ],
)
def test_iter_batches(table, split, batch_rows, start, stop):
    images, labels = split
    end = ROWS if stop is None else stop
    batches = list(iter_batches(table, batch_rows, start, stop))
    sizes = [len(x) for x, _ in batches]
    assert sizes == [len(t) for _, t in batches]
    full, rest = divmod(end - start, batch_rows)
    assert sizes == [batch_rows] * full + ([rest] if rest else [])
    for x, target in batches:
        assert x.dtype == target.dtype == np.uint8 and x.shape[1:] == (784,)
    if batches:
        np.testing.assert_array_equal(
            np.concatenate([x for x, _ in batches]), images[start:end].reshape(-1, 784)
        )
        np.testing.assert_array_equal(np.concatenate([t for _, t in batches]), labels[start:end])


def test_a_row_groups_pixel_array_is_filled_again_only_once_nothing_refers_to_it():
    pool = tables._Reused()
    first = pool.empty(8)
    ref = weakref.ref(first)  # does not count as a reference
    batch = first.T[2:5]  # a batch of its rows, as iter_batches hands them out
    del first
    assert pool.empty(8) is not ref()  # the batch still reads it
    del batch
    assert pool.empty(8) is ref()
    assert pool.empty(5) is not ref()  # another row count


@pytest.mark.parametrize(
    ("start", "stop", "groups"),
    [(9, 15, [1]), (7, 17, [0, 1, 2]), (32, 37, [4]), (0, 37, [0, 1, 2, 3, 4]), (5, 5, [])],
)
def test_iter_batches_reads_only_overlapping_groups(table, monkeypatch, start, stop, groups):
    read = []  # (row group, columns) of each read
    original = pq.ParquetFile.read_row_group

    def spy(self, i, columns=None, *args, **kwargs):
        read.append((i, list(columns)))
        return original(self, i, columns, *args, **kwargs)

    monkeypatch.setattr(pq.ParquetFile, "read_row_group", spy)
    batches = iter_batches(table, 4, start, stop)
    assert read == []  # nothing is read before the first batch is asked for
    for _ in batches:
        order = [group for group, _ in read]
        assert order == sorted(order)  # one group after the other
    assert list(dict.fromkeys(group for group, _ in read)) == groups
    for group in groups:  # each column of a group read once (in a few calls)
        columns = [name for g, names in read if g == group for name in names]
        assert columns == tables.COLUMNS


@pytest.mark.parametrize(
    ("rows", "groups"),
    [([], []), ([0], [0]), ([5, 7, 8, 36], [0, 1, 4]), ([9, 9, 10], [1]), ([17, 33], [2, 4])],
)
def test_take_rows_decodes_only_the_groups_that_hold_them(table, split, monkeypatch, rows, groups):
    images, _ = split
    read = []
    original = pq.ParquetFile.read_row_group

    def spy(self, i, *args, **kwargs):
        read.append(i)
        return original(self, i, *args, **kwargs)

    monkeypatch.setattr(pq.ParquetFile, "read_row_group", spy)
    got = take_rows(table, np.array(rows, dtype=np.int64))
    np.testing.assert_array_equal(got, images.reshape(ROWS, 784)[rows])
    assert list(dict.fromkeys(read)) == groups


@pytest.mark.parametrize("rows", [[3, 2], [-1], [37], [0, 40]])
def test_take_rows_refuses_rows_out_of_order_or_range(table, rows):
    with pytest.raises(ValueError, match=r"rows must ascend within the table's 37 rows, got"):
        take_rows(table, rows)


@pytest.mark.parametrize(
    ("batch_rows", "start", "stop", "message"),
    [
        (0, 0, None, "batch_rows must be a positive integer, got 0"),
        (4, -1, None, r"rows \[-1, 37\) are not within the table's 37 rows"),
        (4, 10, 5, r"rows \[10, 5\) are not within the table's 37 rows"),
        (4, 0, 38, r"rows \[0, 38\) are not within the table's 37 rows"),
    ],
)
def test_iter_batches_bad_range(table, batch_rows, start, stop, message):
    with pytest.raises(ValueError, match=message):
        iter_batches(table, batch_rows, start, stop)


def test_not_a_pixel_table(tmp_path):
    path = tmp_path / "predictions.parquet"
    pq.write_table(pa.table({"index": [0, 1], "predicted": pa.array([3, 4], pa.uint8())}), path)
    pattern = re.escape(str(path)) + r": expected a pixel table .* found 2 columns \(index, pred"
    with pytest.raises(TableError, match=pattern):
        read_arrays(path)
    with pytest.raises(TableError, match=pattern):
        iter_batches(path, 10)


@pytest.mark.parametrize(("column", "row"), [("pixel3", 2), ("target", 1)])
def test_a_table_with_empty_cells_is_refused_naming_the_column(table, tmp_path, column, row):
    # Other tools write nullable columns: a null is an image or a label that is not there.
    whole = pq.read_table(table)
    cells = whole[column].to_pylist()
    cells[row] = None
    nulled = whole.set_column(
        whole.schema.get_field_index(column), column, pa.array(cells, pa.uint8())
    )
    path = tmp_path / "nulls.parquet"
    pq.write_table(nulled, path)
    pattern = re.escape(str(path)) + rf": column {column} has 1 empty \(null\) cell"
    reads = [read_arrays, lambda p: list(iter_batches(p, 10)), lambda p: take_rows(p, [row])]
    if column == TARGET:
        reads.append(lambda p: list(iter_targets(p)))
    for read in reads:
        with pytest.raises(TableError, match=pattern):
            read(path)


@pytest.mark.parametrize("content", [b"", b"<html>not parquet</html>"])
def test_not_a_parquet_file(tmp_path, content):
    path = tmp_path / "t.parquet"
    path.write_bytes(content)
    pattern = re.escape(str(path)) + r": not a readable Parquet file \(.*\)\. Delete it and rerun"
    for read in (read_arrays, num_rows, lambda p: iter_batches(p, 10)):
        with pytest.raises(TableError, match=pattern):
            read(path)


def test_empty_archives_make_an_empty_table(tmp_path):
    paths = write_pair(tmp_path, np.zeros((0, 28, 28), np.uint8), np.zeros(0, np.uint8))
    dest = tmp_path / "t.parquet"
    assert convert_idx_to_parquet(*paths, dest, metadata=META, sha256=pins_of(*paths)) == 0
    x, target = read_arrays(dest)
    assert x.shape == (0, 784) and target.shape == (0,)
    assert list(iter_batches(dest, 5)) == []
    assert list(iter_targets(dest)) == []
    assert read_metadata(dest) == {**META, **{f"{k}_sha256": v for k, v in pins_of(*paths).items()}}


def test_real_mnist_test_split(tmp_path):
    images_gz, labels_gz = (
        SHARED_MNIST / "t10k-images-idx3-ubyte.gz",
        SHARED_MNIST / "t10k-labels-idx1-ubyte.gz",
    )
    if not (images_gz.exists() and labels_gz.exists()):
        pytest.skip(
            f"the real MNIST archives are not in {SHARED_MNIST} (only some machines have them)"
        )
    dest = tmp_path / "test.parquet"
    assert convert_idx_to_parquet(images_gz, labels_gz, dest, metadata=META) == 10_000
    # Decoded independently: skip the 16- and 8-byte headers.
    expected_x = np.frombuffer(gzip.decompress(images_gz.read_bytes()), np.uint8, offset=16)
    expected_t = np.frombuffer(gzip.decompress(labels_gz.read_bytes()), np.uint8, offset=8)
    x, target = read_arrays(dest)
    np.testing.assert_array_equal(x, expected_x.reshape(10_000, 784))
    np.testing.assert_array_equal(target, expected_t)
    assert np.bincount(target).tolist()[:2] == [980, 1135]  # published MNIST test class counts
    batches = list(iter_batches(dest, 3000, 1234, 9999))
    assert [len(b) for b, _ in batches] == [3000, 3000, 2765]
    np.testing.assert_array_equal(np.concatenate([b for b, _ in batches]), x[1234:9999])


@pytest.mark.parametrize(("start", "stop"), [(0, None), (3, 19), (8, 16), (36, 37), (12, 12)])
def test_iter_targets_reads_the_target_column_of_a_range(table, split, start, stop):
    end = ROWS if stop is None else stop
    pieces = list(iter_targets(table, start, stop))
    assert all(p.dtype == np.uint8 for p in pieces)
    got = np.concatenate([np.empty(0, np.uint8), *pieces])
    np.testing.assert_array_equal(got, split[1][start:end])


def checksum_pattern(path: Path, found: str, pin: str) -> str:
    return (
        re.escape(f"{path}: SHA-256 {found}, but the config pins {pin}: ")
        + ".*"
        + re.escape(f"Delete {path} and rerun, so it is downloaded and verified again.")
    )


@pytest.mark.parametrize("replaced", ["labels", "images"])
def test_an_archive_that_is_not_the_pinned_one_is_refused(tmp_path, split, replaced):
    """Another valid archive of the same shape in place of the pinned one: the table must not
    be made from it, nor claim the pin."""
    images, labels = split
    pins = pins_of(*write_pair(tmp_path, images, labels))
    other = random_split(ROWS, seed=99)
    paths = write_pair(
        tmp_path,
        other[0] if replaced == "images" else images,
        other[1] if replaced == "labels" else labels,
    )
    path = paths[0] if replaced == "images" else paths[1]
    dest = tmp_path / "out" / "t.parquet"
    pattern = checksum_pattern(path, sha256(path), pins[replaced])
    with pytest.raises(ChecksumError, match=pattern) as caught:
        convert_idx_to_parquet(*paths, dest, metadata=META, sha256=pins, chunk_rows=GROUP)
    assert "Reading it failed" not in str(caught.value)
    assert_nothing_written(dest)


def test_a_pinned_archive_that_does_not_parse_is_reported_as_not_the_pinned_one(tmp_path, split):
    images, labels = split
    pins = pins_of(*write_pair(tmp_path, images, labels))
    paths = write_pair(tmp_path, images, labels[:20])  # valid IDX, but 20 labels
    dest = tmp_path / "out" / "t.parquet"
    pattern = checksum_pattern(paths[1], sha256(paths[1]), pins["labels"])
    with pytest.raises(ChecksumError, match=pattern) as caught:
        convert_idx_to_parquet(*paths, dest, metadata=META, sha256=pins)
    assert "Reading it failed: " in str(caught.value) and "has 20 labels" in str(caught.value)
    assert_nothing_written(dest)


def test_pins_are_hex_in_either_case(tmp_path, split):
    paths = write_pair(tmp_path, *split)
    pins = {kind: pin.upper() for kind, pin in pins_of(*paths).items()}
    dest = tmp_path / "t.parquet"
    assert convert_idx_to_parquet(*paths, dest, metadata=META, sha256=pins) == ROWS
    assert read_metadata(dest)["images_sha256"] == pins["images"].lower()


@pytest.mark.parametrize(
    "read",
    [
        read_arrays,
        lambda path: list(iter_batches(path, 10)),
        lambda path: list(iter_targets(path)),
        lambda path: take_rows(path, np.arange(ROWS)),
    ],
    ids=["read_arrays", "iter_batches", "iter_targets", "take_rows"],
)
def test_a_byte_damaged_inside_a_page_is_refused_not_read_as_another_value(tmp_path, split, read):
    """LZ4 would decode the damaged page to other pixels (or targets): the pages' checksums
    catch it."""
    dest = convert_split(tmp_path, split)
    damage_page(dest, "pixel400")
    damage_page(dest, TARGET, group=1)
    message = re.escape(f"{dest}: damaged (") + ".*CRC checksum verification failed.*"
    with pytest.raises(
        TableError, match=message + re.escape("). Delete it and rerun the conversion.")
    ):
        read(dest)


def test_a_table_is_checked_against_its_split_and_pins_from_its_footer(tmp_path, split):
    paths = write_pair(tmp_path, *split)
    pins = pins_of(*paths)
    dest = tmp_path / "t.parquet"
    convert_idx_to_parquet(*paths, dest, metadata=META, sha256=pins)
    check_source(dest, "mnist", "test", {kind: pin.upper() for kind, pin in pins.items()})
    check_source(dest, "mnist", "test", {})  # a bundle's member may have no pin

    other = {**pins, "labels": "ab" * 32}
    wrong = [
        ("mnist", "train", pins, "split 'test', expected 'train'"),
        ("kmnist", "test", pins, "dataset 'mnist', expected 'kmnist'"),
        ("mnist", "test", other, f"labels_sha256 '{pins['labels']}', expected '{'ab' * 32}'"),
    ]
    for dataset, split_name, sha256, found in wrong:
        with pytest.raises(TableError) as caught:
            check_source(dest, dataset, split_name, sha256)
        assert str(caught.value).startswith(f"{dest}: its metadata says {found}: ")
        assert str(caught.value).endswith(
            "Delete it and rerun, so it is converted again from the verified archives."
        )
        assert f"datasets.{dataset}.files for the {split_name} split" in str(caught.value)

    bare = tmp_path / "bare.parquet"
    pq.write_table(pq.read_table(dest).replace_schema_metadata(None), bare)
    with pytest.raises(TableError, match=f"{bare}: its metadata says no dataset; no split; "):
        check_source(bare, "mnist", "test", pins)


class SteppingClock:
    """A fake clock that moves `step` seconds each time it is read."""

    def __init__(self, step: float):
        self.now, self.step = 0.0, step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


@pytest.mark.parametrize(("step", "lines"), [(1.0, 7), (0.001, 0)])
def test_conversion_reports_progress_only_when_long(tmp_path, split, monkeypatch, step, lines):
    """37 chunks of one row, the clock moving `step` s per chunk: 37 s of work gives a line
    every 5 s (7, not one per chunk); 0.037 s gives none."""
    monkeypatch.setattr(tables, "Progress", functools.partial(Progress, clock=SteppingClock(step)))
    logged: list[str] = []
    paths = write_pair(tmp_path, *split)
    dest = tmp_path / "t.parquet"
    convert_idx_to_parquet(*paths, dest, metadata=META, chunk_rows=1, log=logged.append)
    assert len(logged) == lines
    if lines:
        assert logged[0] == f"{dest}: 5 of 37 rows (14%), 1 rows/s"
        assert logged[-1] == f"{dest}: 35 of 37 rows (95%), 1 rows/s"
