"""load_mnist keeps the book's semantics over the Parquet tables."""

import gzip
import itertools
import pickle
import re

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mnist_pipeline import load_mnist
from mnist_pipeline.dims import CLASSES, PIXELS, SIDE
from mnist_pipeline.tables import TableError

from idxgen import random_split, write_pixel_table


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("parquet")
    for split, rows, seed in [("train", 120, 8), ("test", 30, 9)]:
        write_pixel_table(root / "mnist" / f"{split}.parquet", *random_split(rows, seed=seed))
    return root


def test_defaults_are_normalized_flat_pixels_and_integer_labels(root):
    (x_train, t_train), (x_test, t_test) = load_mnist(root=root)
    images, labels = random_split(120, seed=8)
    assert x_train.shape == (120, 784) and x_train.dtype == np.float32
    np.testing.assert_array_equal(x_train, images.reshape(120, 784).astype(np.float32) / 255)
    np.testing.assert_array_equal(t_train, labels)
    assert x_test.shape == (30, 784) and t_test.shape == (30,)


def test_raw_images_in_the_books_shape_with_one_hot_labels(root):
    (x_train, t_train), _ = load_mnist(
        normalize=False, flatten=False, one_hot_label=True, root=root
    )
    images, labels = random_split(120, seed=8)
    assert x_train.dtype == np.uint8 and x_train.shape == (120, 1, 28, 28)
    np.testing.assert_array_equal(x_train[:, 0], images)
    assert t_train.shape == (120, 10) and t_train.dtype == np.float64
    np.testing.assert_array_equal(t_train.argmax(axis=1), labels)
    np.testing.assert_array_equal(t_train.sum(axis=1), 1)


def test_missing_tables_name_the_file_and_the_command(tmp_path):
    with pytest.raises(FileNotFoundError) as error:
        load_mnist(root=tmp_path, dataset="kmnist")
    message = str(error.value)
    assert str(tmp_path / "kmnist" / "train.parquet") in message
    assert "snakemake --cores 4" in message


@pytest.mark.parametrize(
    ("classes", "target", "message"),
    [
        (
            "ten",
            None,
            r"its metadata gives 'classes' as 'ten', expected a whole number of 2 to 256",
        ),
        ("100000000", None, r"its metadata gives 'classes' as '100000000', expected a whole"),
        (b"\xff", None, r"its metadata gives 'classes' as '.*xff', expected a whole number"),
        ("3", None, r"target 9 in row \d+ is not one of its 3 classes \(0\.\.2, as its metadata"),
        (None, 200, r"target 200 in row 4 is not one of its 10 classes \(0\.\.9, as the MNIST"),
    ],
)
def test_a_table_whose_targets_are_not_its_classes_is_refused(
    root, tmp_path, classes, target, message
):
    # Tables made elsewhere: one-hot rows of np.eye(classes)[t] failed in numpy, or took K^2 memory.
    table = pq.read_table(root / "mnist" / "train.parquet")
    if target is not None:
        targets = table["target"].to_numpy().copy()
        targets[4] = target
        table = table.set_column(784, table.schema.field(784), pa.array(targets))
    if classes is not None:
        table = table.replace_schema_metadata({"classes": classes})
    folder = tmp_path / "mnist"
    folder.mkdir()
    pq.write_table(table, folder / "train.parquet")
    (folder / "test.parquet").write_bytes((root / "mnist" / "test.parquet").read_bytes())
    with pytest.raises(TableError, match=re.escape(str(folder / "train.parquet")) + ": " + message):
        load_mnist(one_hot_label=True, root=tmp_path)


def book_load_mnist(folder, normalize=True, flatten=True, one_hot_label=False):
    """The book's dataset/mnist.py loader, written out again: it reads the gzipped IDX archives
    (here `{split}-images.gz` and `{split}-labels.gz`, as write_pixel_table leaves them), keeps
    them through a pickle as the book's mnist.pkl does, then applies the flags in its order."""

    def load_img(name):
        with gzip.open(folder / name, "rb") as f:
            data = np.frombuffer(f.read(), np.uint8, offset=16)
        return data.reshape(-1, PIXELS)

    def load_label(name):
        with gzip.open(folder / name, "rb") as f:
            return np.frombuffer(f.read(), np.uint8, offset=8)

    def change_one_hot_label(x):
        t = np.zeros((x.size, CLASSES))
        for idx, row in enumerate(t):
            row[x[idx]] = 1
        return t

    dataset = {
        "train_img": load_img("train-images.gz"),
        "train_label": load_label("train-labels.gz"),
        "test_img": load_img("test-images.gz"),
        "test_label": load_label("test-labels.gz"),
    }
    dataset = pickle.loads(pickle.dumps(dataset, -1))
    if normalize:
        for key in ("train_img", "test_img"):
            dataset[key] = dataset[key].astype(np.float32)
            dataset[key] /= 255.0
    if one_hot_label:
        dataset["train_label"] = change_one_hot_label(dataset["train_label"])
        dataset["test_label"] = change_one_hot_label(dataset["test_label"])
    if not flatten:
        for key in ("train_img", "test_img"):
            dataset[key] = dataset[key].reshape(-1, 1, SIDE, SIDE)
    return (dataset["train_img"], dataset["train_label"]), (
        dataset["test_img"],
        dataset["test_label"],
    )


FLAGS = list(itertools.product([True, False], repeat=3))


@pytest.mark.parametrize(("normalize", "flatten", "one_hot_label"), FLAGS)
def test_every_array_is_the_books_bit_for_bit(root, normalize, flatten, one_hot_label):
    flags = {"normalize": normalize, "flatten": flatten, "one_hot_label": one_hot_label}
    ours = load_mnist(**flags, root=root)
    book = book_load_mnist(root / "mnist", **flags)
    for split, our_pair, book_pair in zip(("train", "test"), ours, book, strict=True):
        for what, a, b in zip(("images", "labels"), our_pair, book_pair, strict=True):
            where = f"{split} {what} with {flags}"
            assert (a.dtype, a.shape) == (b.dtype, b.shape), where
            assert a.tobytes() == b.tobytes(), where
            assert a.flags.c_contiguous and a.flags.writeable, where
    (x, t), _ = ours
    assert x.dtype == (np.float32 if normalize else np.uint8)
    assert t.dtype == (np.float64 if one_hot_label else np.uint8)
    assert t.shape == ((120, CLASSES) if one_hot_label else (120,))
    assert x.shape == ((120, PIXELS) if flatten else (120, 1, SIDE, SIDE))
