"""load_mnist keeps the book's semantics over the Parquet tables."""

import numpy as np
import pytest

from mnist_pipeline import load_mnist

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
    assert t_train.shape == (120, 10) and t_train.dtype == np.float32
    np.testing.assert_array_equal(t_train.argmax(axis=1), labels)
    np.testing.assert_array_equal(t_train.sum(axis=1), 1)


def test_missing_tables_name_the_file_and_the_command(tmp_path):
    with pytest.raises(FileNotFoundError) as error:
        load_mnist(root=tmp_path, dataset="kmnist")
    message = str(error.value)
    assert str(tmp_path / "kmnist" / "train.parquet") in message
    assert "snakemake --cores 4" in message
