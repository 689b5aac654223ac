"""Archives read in place from a zip (EMNIST's gzip.zip): checked, upright, labelled 0..K-1."""

import hashlib
import zipfile
from pathlib import Path

import numpy as np
import pytest

from mnist_pipeline.bundle import BundleError, ZipMember, bundle_members, source_sha256
from mnist_pipeline.idx import IdxFormatError, iter_image_chunks, read_labels
from mnist_pipeline.tables import ChecksumError, convert_idx_to_parquet, read_arrays, read_metadata

from emnist import BUNDLE, SPLITS, bundle_pin, emnist_zip, member
from idxgen import gz, idx_images, idx_labels

ROWS = {"train": 70, "test": 64}  # every class of every split in each part


@pytest.fixture(scope="module")
def zipped(tmp_path_factory):
    """The zip on disk, and what it holds: {(split, part): (upright images, classes)}."""
    data, content = emnist_zip(ROWS)
    path = tmp_path_factory.mktemp("bundle") / BUNDLE
    path.write_bytes(data)
    return path, content


def spec(path: Path, split: str = "letters", part: str = "test", **member_pins) -> dict:
    """The convert rule's `bundle` param for one part of one split of the zip at `path`."""
    key = f"datasets.emnist-{split}"
    members = {
        kind: {"name": member(split, part, kind), "key": f"{key}.files.{part}_{kind}"}
        for kind in ("images", "labels")
    }
    for kind, pins in member_pins.items():
        members[kind].update(pins)
    return {**bundle_pin(path.read_bytes()), "key": f"{key}.bundle", "members": members}


def convert(path: Path, dest: Path, split: str, part: str, **options) -> int:
    """Convert one part of a split straight from the zip, as the convert rule does."""
    classes, first = SPLITS[split]
    members = bundle_members(path, spec(path, split, part))
    return convert_idx_to_parquet(
        members["images"],
        members["labels"],
        dest,
        metadata={"dataset": f"emnist-{split}", "split": part},
        **{"transposed": True, "classes": classes, "first_label": first, **options},
    )


def assert_nothing_under(folder: Path) -> None:
    assert not folder.exists() or list(folder.iterdir()) == []


@pytest.mark.parametrize("split", ["letters", "balanced", "byclass"])
@pytest.mark.parametrize("chunk_rows", [7, 65536])
def test_a_split_converts_from_the_zip_upright_with_classes_from_0(
    zipped, tmp_path, split, chunk_rows
):
    path, content = zipped
    dest = tmp_path / "out" / "train.parquet"
    assert convert(path, dest, split, "train", chunk_rows=chunk_rows) == ROWS["train"]
    images, classes = content[(split, "train")]
    x, target = read_arrays(dest)
    np.testing.assert_array_equal(x, images.reshape(len(images), -1))  # upright, row by row
    np.testing.assert_array_equal(target, classes)
    assert target.max() == SPLITS[split][0] - 1  # every class, the last one too
    stored = zipfile.ZipFile(path).read(member(split, "train", "images"))
    meta = read_metadata(dest)
    assert meta["images_sha256"] == hashlib.sha256(stored).hexdigest()
    assert list(tmp_path.rglob("*.gz")) == []  # nothing extracted


def test_without_transposed_the_images_stay_as_stored(zipped, tmp_path):
    path, content = zipped
    dest = tmp_path / "t.parquet"
    convert(path, dest, "digits", "test", transposed=False)
    images, _ = content[("digits", "test")]
    x, _ = read_arrays(dest)
    np.testing.assert_array_equal(x, images.transpose(0, 2, 1).reshape(len(images), -1))


def test_letters_are_read_as_stored_1_to_26_and_held_as_0_to_25(zipped):
    path, content = zipped
    labels = ZipMember(str(path), member("letters", "test", "labels"))
    with pytest.raises(IdxFormatError, match=r"is 26, expected a class in 0\.\.25"):
        read_labels(labels, classes=26)  # stored 1..26: without first_label, 26 is too high
    np.testing.assert_array_equal(
        read_labels(labels, classes=26, first_label=1), content[("letters", "test")][1]
    )


def test_a_label_below_the_first_is_refused_naming_the_member(tmp_path):
    path = tmp_path / BUNDLE
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("gzip/l.gz", gz(idx_labels(np.array([1, 26, 0, 3]))))
    with pytest.raises(IdxFormatError) as error:
        read_labels(ZipMember(str(path), "gzip/l.gz"), classes=26, first_label=1)
    assert str(error.value).startswith(f"{path} (member gzip/l.gz): the label at index 2 is 0, ")
    assert "expected a class in 1..26" in str(error.value)
    assert "other classes than the config's 26, numbered from 1" in str(error.value)


def test_a_member_missing_from_the_zip_is_named_with_its_key(tmp_path):
    gone = member("letters", "test", "labels")
    data, _ = emnist_zip(ROWS, omit=(gone,))
    path = tmp_path / BUNDLE
    path.write_bytes(data)
    with pytest.raises(BundleError) as error:
        bundle_members(path, spec(path))
    message = str(error.value)
    assert message.startswith(f"{path}: no member '{gone}' (config key ")
    assert "'datasets.emnist-letters.files.test_labels.name'" in message
    assert "did you mean 'gzip/emnist-letters-train-labels-idx1-ubyte.gz'?" in message
    assert "as `unzip -l` lists it" in message


def test_every_missing_member_is_named_at_once(tmp_path):
    path = tmp_path / BUNDLE
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("other.txt", b"x")
    with pytest.raises(BundleError) as error:
        bundle_members(path, spec(path))
    assert "files.test_images.name" in str(error.value)
    assert "files.test_labels.name" in str(error.value)
    assert "it holds 1 members" in str(error.value)


def test_a_zip_replaced_after_its_download_is_refused_naming_its_pin(zipped, tmp_path):
    path, _ = zipped
    pinned = spec(path)
    for label, content in [
        ("other bytes", bytearray(path.read_bytes())),
        ("other size", path.read_bytes() + b"\0"),
    ]:
        if label == "other bytes":
            content[-1] ^= 0xFF
        copy = tmp_path / BUNDLE
        copy.write_bytes(bytes(content))
        with pytest.raises(BundleError) as error:
            bundle_members(copy, pinned)
        message = str(error.value)
        assert message.startswith(f"{copy}: ")
        assert "but datasets.emnist-letters.bundle pins" in message
        assert "Delete it and rerun, so it is downloaded and verified again." in message


def test_a_pinned_file_that_is_not_a_zip_is_refused(tmp_path):
    path = tmp_path / BUNDLE
    path.write_bytes(b"<html>not a zip</html>")
    with pytest.raises(BundleError, match="not a zip archive .*pins it as the zip"):
        bundle_members(path, spec(path))


def test_a_member_size_pin_is_checked_against_the_zip(zipped):
    path, _ = zipped
    wrong = spec(path, labels={"size": 3})
    with pytest.raises(BundleError) as error:
        bundle_members(path, wrong)
    assert "datasets.emnist-letters.files.test_labels.size pins 3" in str(error.value)
    right = zipfile.ZipFile(path).getinfo(member("letters", "test", "labels")).file_size
    bundle_members(path, spec(path, labels={"size": right}))


def test_a_member_sha256_pin_is_checked_as_it_is_read(zipped, tmp_path):
    path, _ = zipped
    members = bundle_members(path, spec(path))
    good = source_sha256(members["labels"])
    common = {"metadata": {}, "transposed": True, "classes": 26, "first_label": 1}
    ok = tmp_path / "ok.parquet"
    convert_idx_to_parquet(
        members["images"], members["labels"], ok, sha256={"labels": good}, **common
    )
    assert read_metadata(ok)["labels_sha256"] == good
    dest = tmp_path / "bad" / "t.parquet"
    with pytest.raises(ChecksumError) as error:
        convert_idx_to_parquet(
            members["images"], members["labels"], dest, sha256={"labels": "0" * 64}, **common
        )
    message = str(error.value)
    assert message.startswith(f"{members['labels']}: SHA-256 {good}, but the config pins ")
    assert "Fix the member's sha256 in the config, or leave it out" in message
    assert_nothing_under(dest.parent)


def stored_zip(path: Path, members: dict[str, bytes]) -> None:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)


@pytest.mark.parametrize("count", [5, 3000])  # read at once; read in many blocks (2.4 MB)
def test_a_member_whose_crc_is_wrong_fails_its_conversion(tmp_path, count):
    images = np.random.default_rng(0).integers(0, 256, (count, 28, 28), dtype=np.uint8)
    body = gz(idx_images(images))
    path = tmp_path / BUNDLE
    stored_zip(path, {"gzip/i.gz": body, "gzip/l.gz": gz(idx_labels(np.arange(count) % 10))})
    # Change a byte of the gzip header's time stamp: gzip's own checks still pass (its CRC
    # covers the data only), so only the zip's CRC-32 of the member can catch it.
    raw = bytearray(path.read_bytes())
    at = raw.find(body) + 4
    raw[at] ^= 0x01
    path.write_bytes(bytes(raw))
    source = ZipMember(str(path), "gzip/i.gz")
    with pytest.raises(IdxFormatError) as error:
        list(iter_image_chunks(source, 2))
    assert str(error.value).startswith(f"{path} (member gzip/i.gz): the zip member is damaged")
    assert "Bad CRC-32" in str(error.value)
    dest = tmp_path / "out" / "t.parquet"
    with pytest.raises(IdxFormatError, match="Bad CRC-32"):
        convert_idx_to_parquet(source, ZipMember(str(path), "gzip/l.gz"), dest, metadata={})
    assert_nothing_under(dest.parent)


def test_a_member_that_is_not_gzip_is_named(tmp_path):
    path = tmp_path / BUNDLE
    stored_zip(path, {"gzip/i.gz": idx_images(np.zeros((1, 28, 28), np.uint8))})
    with pytest.raises(IdxFormatError) as error:
        list(iter_image_chunks(ZipMember(str(path), "gzip/i.gz"), 2))
    assert str(error.value).startswith(f"{path} (member gzip/i.gz): not a gzip file")
    assert "uncompressed IDX file" in str(error.value)


@pytest.mark.parametrize(
    ("method", "flags", "found"),
    [
        (9, 0, "That compression method is not supported"),  # Deflate64, as Windows' zip makes
        (0, 1, "File 'gzip/l.gz' is encrypted"),
    ],
)
def test_a_member_zipfile_cannot_read_is_named(tmp_path, method, flags, found):
    path = tmp_path / BUNDLE
    stored_zip(path, {"gzip/l.gz": gz(idx_labels(np.arange(5)))})
    raw = bytearray(path.read_bytes())
    for header, at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):  # local and central entries
        start = raw.find(header) + at
        raw[start] |= flags
        raw[start + 2 : start + 4] = method.to_bytes(2, "little")
    path.write_bytes(bytes(raw))
    with pytest.raises(BundleError) as error:
        read_labels(ZipMember(str(path), "gzip/l.gz"))
    message = str(error.value)
    assert message.startswith(f"{path} (member gzip/l.gz): zipfile cannot read it ({found}")
    assert "zip -r" in message


def test_a_member_is_read_in_chunks_in_file_order(zipped):
    path, content = zipped
    source = ZipMember(str(path), member("byclass", "train", "images"))
    chunks = list(iter_image_chunks(source, 4))
    assert [len(c) for c in chunks] == [4] * 17 + [2]
    images, _ = content[("byclass", "train")]
    np.testing.assert_array_equal(
        np.concatenate(chunks), images.transpose(0, 2, 1).reshape(len(images), -1)
    )
