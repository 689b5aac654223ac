"""K classes wherever the class count matters: the network's outputs, weights, training,
prediction columns, reports and the book's loader; and one module that knows the dimensions."""

import ast
import pickle

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from mnist_pipeline import load_mnist
from mnist_pipeline.dims import CLASSES, PIXELS, SIDE
from mnist_pipeline.evaluation import score
from mnist_pipeline.inference import (
    PredictionError,
    checked_predictions,
    gather_predictions,
    predict_shard,
)
from mnist_pipeline.network import SHAPES, NetworkError, forward, shapes
from mnist_pipeline.tables import convert_idx_to_parquet
from mnist_pipeline.train import TrainError, TrainSettings, train
from mnist_pipeline.weights import WeightsError, load_weights, save_weights

from idxgen import gz, idx_images, idx_labels
from project import REPO

LETTERS = [chr(c) for c in range(ord("a"), ord("z") + 1)]


def random_weights(classes: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {k: rng.normal(0, 0.3, s).astype(np.float32) for k, s in shapes(classes).items()}


def learnable(count: int, classes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images (count, 784): one random prototype per class plus noise; every class."""
    rng = np.random.default_rng(seed)
    prototypes = np.random.default_rng(99).integers(0, 256, (classes, PIXELS))
    labels = rng.permutation(np.arange(count) % classes).astype(np.uint8)
    noise = rng.integers(-40, 41, (count, PIXELS))
    return np.clip(prototypes[labels] + noise, 0, 255).astype(np.uint8), labels


def pixel_table(path, images, labels, classes: int):
    """A pixel table of `classes` classes, as convert_to_parquet writes it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    (path.parent / "i.gz").write_bytes(gz(idx_images(images.reshape(-1, SIDE, SIDE))))
    (path.parent / "l.gz").write_bytes(gz(idx_labels(labels)))
    convert_idx_to_parquet(
        path.parent / "i.gz",
        path.parent / "l.gz",
        path,
        metadata={"classes": str(classes)},
        classes=classes,
    )
    return path


# --- the network --------------------------------------------------------------------------------


def test_the_book_network_has_ten_outputs_and_k_only_changes_the_output_layer():
    assert shapes(CLASSES) == SHAPES
    assert SHAPES["W3"] == (100, 10)
    for k in (2, 26, 47, 62):
        assert shapes(k) == {**SHAPES, "W3": (100, k), "b3": (k,)}
    with pytest.raises(NetworkError, match="at least 2 classes, got 1"):
        shapes(1)


@pytest.mark.parametrize("classes", [26, 47, 62])
def test_forward_gives_one_probability_per_class(classes):
    weights = random_weights(classes)
    x = np.random.default_rng(1).integers(0, 256, (150, PIXELS), dtype=np.uint8)
    probs = forward(weights, x)
    assert probs.shape == (150, classes)
    w = {k: v.astype(np.float64) for k, v in weights.items()}
    z1 = 1 / (1 + np.exp(-(x / 255 @ w["W1"] + w["b1"])))
    z2 = 1 / (1 + np.exp(-(z1 @ w["W2"] + w["b2"])))
    a3 = z2 @ w["W3"] + w["b3"]
    expected = np.exp(a3 - a3.max(axis=1, keepdims=True))
    np.testing.assert_allclose(probs, expected / expected.sum(axis=1, keepdims=True), atol=1e-6)


# --- weights files ------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".npz", ".pkl"])
def test_ten_class_weights_for_a_47_class_dataset_are_refused_naming_file_and_key(tmp_path, suffix):
    path = tmp_path / f"sample_weight{suffix}"
    if suffix == ".npz":
        np.savez(path, **random_weights(10))
    else:
        path.write_bytes(pickle.dumps(random_weights(10), protocol=3))  # as the book's file
    with pytest.raises(WeightsError) as error:
        load_weights(path, 47, classes_key="datasets.emnist-balanced.classes")
    message = str(error.value)
    assert message.startswith(f"{path}: key ")
    assert (
        "has shape (100, 10), expected (100, 47): the output layer of a network of 10 " in message
    )
    assert "but datasets.emnist-balanced.classes names 47" in message
    assert "set model.weights to null to train them here" in message


def test_k_class_weights_round_trip_and_are_refused_for_another_k(tmp_path):
    weights = random_weights(47)
    save_weights(tmp_path / "w.npz", weights)
    loaded = load_weights(tmp_path / "w.npz", 47)
    assert {k: v.shape for k, v in loaded.items()} == shapes(47)
    for key in shapes(47):
        np.testing.assert_array_equal(loaded[key], weights[key])
    with pytest.raises(WeightsError, match=r"expected \(100, 10\): .* of 47 classes, but the data"):
        load_weights(tmp_path / "w.npz")  # the book's ten classes by default


def test_a_hidden_layer_of_another_size_gets_no_class_count_advice(tmp_path):
    weights = {**random_weights(10), "W3": np.zeros((99, 10), np.float32)}
    np.savez(tmp_path / "w.npz", **weights)
    with pytest.raises(WeightsError) as error:
        load_weights(tmp_path / "w.npz", 10)
    assert str(error.value).endswith("key 'W3' has shape (99, 10), expected (100, 10)")


# --- training -----------------------------------------------------------------------------------


def test_training_builds_and_learns_a_network_of_k_outputs():
    x, t = learnable(520, 26, seed=1)
    xt, tt = learnable(260, 26, seed=2)
    weights, history = train(x, t, xt, tt, TrainSettings(epochs=3, batch_size=20), classes=26)
    assert {k: v.shape for k, v in weights.items()} == shapes(26)
    assert history[-1]["test_accuracy"] > 0.5  # chance is 1/26


def test_training_refuses_labels_beyond_k():
    x, t = learnable(60, 26, seed=1)
    t[5] = 26
    with pytest.raises(
        TrainError, match=r"labels must lie in 0\.\.25 \(26 classes\), found 0\.\.26"
    ):
        train(x, t, x, t, TrainSettings(epochs=1), classes=26)


# --- predictions and reports --------------------------------------------------------------------


@pytest.fixture(scope="module")
def letters(tmp_path_factory):
    """A 26-class table, its predictions by a 26-class network, and the network."""
    folder = tmp_path_factory.mktemp("letters")
    images, labels = learnable(300, 26, seed=3)
    table = pixel_table(folder / "table" / "test.parquet", images, labels, 26)
    weights = random_weights(26)
    shards = [folder / f"{i}.parquet" for i in range(2)]
    for i, shard in enumerate(shards):
        predict_shard(table, weights, 64, i, 2, shard)
    gathered = folder / "test.parquet"
    gather_predictions(shards, table, gathered, gathered.with_suffix(".csv"), classes=26)
    return table, gathered, weights, images


def test_predictions_have_prob0_to_prob_k_minus_1(letters):
    table, gathered, weights, images = letters
    predictions = pd.read_parquet(gathered)
    probs = [f"prob{i}" for i in range(26)]
    assert list(predictions.columns) == ["index", "target", "predicted", *probs]
    np.testing.assert_allclose(predictions[probs].to_numpy(), forward(weights, images), atol=0)
    assert list(pd.read_csv(gathered.with_suffix(".csv")).columns) == list(predictions.columns)


def test_predictions_of_another_class_count_are_refused(letters, tmp_path):
    table, gathered, _, _ = letters
    with pytest.raises(PredictionError) as error:
        list(checked_predictions(gathered, table, classes=47))
    message = str(error.value)
    assert "expected prediction columns ['index', 'target', 'predicted', 'prob0', ..., " in message
    assert "'prob45', 'prob46'] (50 columns), found [" in message
    assert "'prob24', 'prob25'] (29 columns)" in message
    with pytest.raises(PredictionError, match="expected prediction columns"):
        gather_predictions([gathered], table, tmp_path / "p.parquet", tmp_path / "p.csv")
    assert list(tmp_path.iterdir()) == []


def test_evaluation_counts_k_classes_by_name(letters):
    table, gathered, _, _ = letters
    result = score([gathered], table, LETTERS)
    predictions = pd.read_parquet(gathered)
    expected = pd.crosstab(predictions["target"], predictions["predicted"]).reindex(
        index=range(26), columns=range(26), fill_value=0
    )
    np.testing.assert_array_equal(result.confusion, expected.to_numpy())
    assert list(result.per_class["name"]) == [*LETTERS, "macro avg", "weighted avg"]
    assert result.summary["total"] == 300


def test_load_mnist_one_hot_has_a_column_per_class(letters, tmp_path):
    table, _, _, _ = letters
    for split in ("train", "test"):
        dest = tmp_path / "emnist-letters" / f"{split}.parquet"
        dest.parent.mkdir(exist_ok=True)
        dest.write_bytes(table.read_bytes())
    (_, _), (x, t) = load_mnist(one_hot_label=True, dataset="emnist-letters", root=tmp_path)
    labels = pq.read_table(table, columns=["target"])["target"].to_numpy()
    assert t.shape == (300, 26)
    np.testing.assert_array_equal(t.argmax(axis=1), labels)


# --- one place for the dimensions ---------------------------------------------------------------


def package_nodes():
    """(file name, node) for every syntax node of the package's modules but dims.py."""
    for path in sorted((REPO / "workflow/src/mnist_pipeline").glob("*.py")):
        if path.name != "dims.py":
            for node in ast.walk(ast.parse(path.read_text())):
                yield path.name, node


def test_only_dims_states_the_image_size():
    """No module of the package writes 784 or 28 as a number: they come from dims."""
    found = []
    for name, node in package_nodes():
        is_int = isinstance(node, ast.Constant) and type(node.value) is int
        if is_int and node.value in (SIDE, PIXELS):
            found.append(f"{name}:{node.lineno}: {node.value}")
    assert found == []


def test_only_dims_states_the_books_class_count():
    """10 as the number of classes is dims.CLASSES: no default, range or shape writes it."""
    found = []
    for name, node in package_nodes():
        is_function = isinstance(node, ast.FunctionDef)
        defaults = [*node.args.defaults, *node.args.kw_defaults] if is_function else []
        for value in defaults:
            if isinstance(value, ast.Constant) and value.value == CLASSES:
                found.append(f"{name}:{node.lineno}: default {CLASSES}")
        if isinstance(node, ast.Tuple) and any(
            isinstance(e, ast.Constant) and e.value == CLASSES for e in node.elts
        ):
            found.append(f"{name}:{node.lineno}: a shape with {CLASSES}")
    assert found == []
