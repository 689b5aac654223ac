"""model.weights: book, the book's weights fetched and verified like an archive, then loaded through
the restricted unpickler."""

import copy
import hashlib
import json
import os
import pickle
import re

import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml

from mnist_pipeline.config import ConfigError, load_schema, validate_config
from mnist_pipeline.network import SHAPES, forward
from mnist_pipeline.weights import load_weights

from idxgen import random_split
from mirror import LoopbackMirror
from project import (
    REPO,
    SHARED_BOOK,
    SHARED_MNIST,
    archives,
    files_under,
    idx_payload,
    make_project,
    pins,
    shared_pins,
    snakemake,
    write_overlay,
)

SCHEMA = load_schema(REPO / "workflow/schemas/config.schema.yaml")
CONFIG = yaml.safe_load((REPO / "config/config.yaml").read_text())
BOOK_FILE = SHARED_BOOK / "sample_weight.pkl"
BOOK = ("--config", "model={weights: book}")  # as the README shows it
WEIGHTS = "results/model/book/sample_weight.pkl"


def book_overlay(mirrors, file=None):
    """The `models` part of an overlay: the book's weights from `mirrors`, pinned as `file`
    (or as config/config.yaml pins them)."""
    return {"book": {"mirrors": mirrors, **({"file": file} if file else {})}}


def pin(name, data):
    return {"name": name, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def generated_weights(seed=0):
    rng = np.random.default_rng(seed)
    return {k: rng.normal(scale=0.5, size=s).astype(np.float32) for k, s in SHAPES.items()}


def under(project, folder):
    path = project / folder
    return files_under(path) if path.exists() else []


# --- the real thing -----------------------------------------------------------------------------


def archive_images(name):
    """The images of a real archive as the book's loader gives them normalized: float32 / 255."""
    x = idx_payload(name, 16).reshape(-1, 784).astype(np.float32)
    x /= 255.0
    return x


def book_predict(network, x):
    """The book's predict (ch. 3), in batches of 100 as its neuralnet_mnist_batch.py runs it."""

    def sigmoid(a):
        return 1 / (1 + np.exp(-a))

    def predict(x):
        z1 = sigmoid(x @ network["W1"] + network["b1"])
        z2 = sigmoid(z1 @ network["W2"] + network["b2"])
        a3 = z2 @ network["W3"] + network["b3"]
        e = np.exp(a3 - a3.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    return np.concatenate([predict(x[i : i + 100]) for i in range(0, len(x), 100)])


@pytest.mark.skipif(
    not BOOK_FILE.exists() or not (SHARED_MNIST / "SHA256SUMS").exists(),
    reason=f"the book's weights ({BOOK_FILE}) or the real MNIST ({SHARED_MNIST}) are not here",
)
def test_the_books_weights_score_9352_of_the_10000_real_test_images(tmp_path):
    project = make_project(tmp_path / "project")
    with (
        LoopbackMirror.from_directory(SHARED_MNIST) as mnist,
        LoopbackMirror.from_directory(SHARED_BOOK) as book,
    ):
        # The shipped pins (models.book.file); the first mirror has no such file.
        write_overlay(
            project,
            [mnist.url],
            shared_pins(),
            models=book_overlay([book.url + "gone/", book.url]),
        )
        snakemake(project, *BOOK)
    accuracy = json.loads((project / "results/reports/mnist/test/accuracy.json").read_text())
    assert (accuracy["correct"], accuracy["total"], accuracy["accuracy"]) == (9352, 10_000, 0.9352)
    # Row by row what the book's predict gives, from the archives' own bytes: the same class
    # (so the same 9352 rows right, not another 9352), probabilities within float32 rounding.
    books = book_predict(load_weights(BOOK_FILE), archive_images("t10k-images-idx3-ubyte.gz"))
    predictions = pq.read_table(project / "results/predictions/mnist/test.parquet")
    np.testing.assert_array_equal(predictions["predicted"].to_numpy(), books.argmax(axis=1))
    probs = np.stack([predictions[f"prob{k}"].to_numpy() for k in range(10)], axis=1)
    np.testing.assert_allclose(probs, books, rtol=0, atol=2e-6)
    labels = idx_payload("t10k-labels-idx1-ubyte.gz", 8)
    confusion = np.zeros((10, 10), dtype=np.int64)
    np.add.at(confusion, (labels, books.argmax(axis=1)), 1)  # rows true, columns predicted
    report = project / "results/reports/mnist/test/confusion_matrix.csv"
    np.testing.assert_array_equal(
        np.loadtxt(report, delimiter=",", skiprows=1, usecols=range(1, 11), dtype=np.int64),
        confusion,
    )
    pinned = CONFIG["models"]["book"]["file"]["sha256"]
    assert (accuracy["weights"], accuracy["weights_sha256"]) == ("book", pinned)
    assert (project / WEIGHTS).read_bytes() == BOOK_FILE.read_bytes()
    log = (project / "results/logs/download_weights/book/sample_weight.pkl.log").read_text()
    assert f"GET {book.url}gone/sample_weight.pkl (attempt 1/2): HTTP 404" in log
    assert f"GET {book.url}sample_weight.pkl (attempt 1/2): ok" in log
    assert not under(project, "results/model/mnist")  # nothing trained


# --- generated weights and data -----------------------------------------------------------------


@pytest.fixture(scope="module")
def data():
    return {"train": random_split(20, seed=11), "test": random_split(50, seed=12)}


def test_the_downloaded_weights_are_the_ones_predictions_are_made_with(tmp_path, data):
    weights = generated_weights()
    pickled = pickle.dumps(weights, protocol=3)  # the book's protocol
    files = archives(data)
    project = make_project(tmp_path / "project")
    with LoopbackMirror({**files, "w/sample_weight.pkl": pickled}) as mirror:
        write_overlay(
            project,
            [mirror.url],
            pins(files),
            models=book_overlay([mirror.url + "w/"], pin("sample_weight.pkl", pickled)),
        )
        snakemake(
            project,
            "results/reports/mnist/test/accuracy.json",
            "results/predictions/mnist/test.parquet",
            *BOOK,
        )
    images, labels = data["test"]
    expected = forward(weights, images.reshape(len(images), -1)).argmax(axis=1)
    predictions = pq.read_table(project / "results/predictions/mnist/test.parquet")
    np.testing.assert_array_equal(predictions["predicted"].to_numpy(), expected)
    accuracy = json.loads((project / "results/reports/mnist/test/accuracy.json").read_text())
    assert accuracy["correct"] == int((expected == labels).sum())
    assert accuracy["weights"] == "book"
    assert accuracy["weights_sha256"] == hashlib.sha256(pickled).hexdigest()
    assert (project / WEIGHTS).read_bytes() == pickled


def test_a_wrong_pin_fails_the_weights_download_naming_models_book_and_keeps_nothing(
    tmp_path, data
):
    pickled = pickle.dumps(generated_weights(), protocol=3)
    wrong = {**pin("sample_weight.pkl", pickled), "sha256": hashlib.sha256(b"other").hexdigest()}
    files = archives(data)
    project = make_project(tmp_path / "project")
    with LoopbackMirror({**files, "sample_weight.pkl": pickled}) as mirror:
        write_overlay(project, [mirror.url], pins(files), models=book_overlay([mirror.url], wrong))
        result = snakemake(project, "results/predictions/mnist/test.parquet", *BOOK, check=False)
    assert result.returncode != 0
    assert f"{mirror.url}sample_weight.pkl: SHA-256 mismatch: found " in result.stderr
    assert f"expected {wrong['sha256']}" in result.stderr
    assert "What to do: check models.book.mirrors in the config" in result.stderr
    assert "pin their size and sha256 under models.book.file" in result.stderr
    assert under(project, "results/model") == []
    assert under(project, "results/predictions") == []


def test_a_pickle_that_would_run_code_is_refused_when_loaded(tmp_path, data):
    class RunsCode:
        def __reduce__(self):
            return os.system, ("true",)

    pickled = pickle.dumps({**generated_weights(), "W1": RunsCode()}, protocol=3)
    files = archives(data)
    project = make_project(tmp_path / "project")
    with LoopbackMirror({**files, "sample_weight.pkl": pickled}) as mirror:
        write_overlay(
            project,
            [mirror.url],
            pins(files),
            models=book_overlay([mirror.url], pin("sample_weight.pkl", pickled)),
        )
        result = snakemake(project, "results/predictions/mnist/test.parquet", *BOOK, check=False)
    assert result.returncode != 0
    assert f"refusing to load {WEIGHTS}: it references {os.system.__module__}.system" in (
        result.stderr
    ), result.stderr
    assert under(project, "results/predictions") == []


def test_asking_for_another_file_under_the_books_folder_is_refused(tmp_path, data):
    project = make_project(tmp_path / "project")
    write_overlay(project, ["http://127.0.0.1:9/"], pins(archives(data)))
    result = snakemake(project, "--dry-run", "results/model/book/other.pkl", check=False)
    assert result.returncode != 0
    assert (
        "results/model/book/other.pkl: the book's weights are sample_weight.pkl "
        "(models.book.file.name), not this file"
    ) in result.stdout + result.stderr
    assert under(project, "results") == []


# --- checked at load ----------------------------------------------------------------------------


def test_book_is_refused_for_a_dataset_without_ten_classes():
    schema = copy.deepcopy(SCHEMA)  # the shipped one allows only ten classes for now
    schema["$defs"]["dataset"]["properties"]["classes"].pop("maxItems", None)
    config = copy.deepcopy(CONFIG)
    config["model"]["weights"] = "book"
    config["datasets"]["mnist"]["classes"] = [chr(c) for c in range(ord("a"), ord("z") + 1)]
    with pytest.raises(ConfigError) as error:
        validate_config(config, schema)
    assert (
        "config key 'model.weights' is 'book': the book's weights have 10 outputs, but dataset "
        "'mnist' has 26 classes (datasets.mnist.classes). Choose a dataset of 10 classes, or "
        "set model.weights to null"
    ) in str(error.value)
    config["model"]["weights"] = None
    validate_config(config, schema)


def test_book_needs_models_book():
    config = {**copy.deepcopy(CONFIG), "model": {"weights": "book"}}
    del config["models"]
    with pytest.raises(ConfigError, match=r"'models' has no entry 'book': add models\.book"):
        validate_config(config, SCHEMA)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("models.book.mirrors", ["https://example.org/<script>/"]),
        ("models.book.mirrors", ["ftp://example.org/"]),
        ("models.book.mirrors", []),
        ("models.book.file", {"name": "../w.pkl", "size": 1, "sha256": "0" * 64}),
        ("models.book.file", {"name": "w.exe", "size": 1, "sha256": "0" * 64}),
        ("models.book.file", {"name": "w.pkl", "size": 0, "sha256": "0" * 64}),
        ("models.book.file", {"name": "w.pkl", "size": 1, "sha256": "0" * 63}),
        ("models.book.file", {"name": "w.pkl", "size": 1}),
    ],
)
def test_bad_models_book_values_are_refused_naming_the_key(key, value):
    config = copy.deepcopy(CONFIG)
    *parents, last = key.split(".")
    node = config
    for part in parents:
        node = node[part]
    node[last] = value
    with pytest.raises(ConfigError, match=f"config key '{re.escape(key)}[.'0-9a-z]*"):
        validate_config(config, SCHEMA)


@pytest.mark.skipif(not BOOK_FILE.exists(), reason=f"{BOOK_FILE} is not on this machine")
def test_the_shipped_pins_and_mirrors_are_the_books_published_ones():
    readme = (SHARED_BOOK / "README.md").read_text()
    size, sha256 = re.search(r"(\d+) bytes, SHA-256\s+`([0-9a-f]{64})`", readme).groups()
    mirrors = re.findall(r"^- (https://\S+)$", readme, flags=re.MULTILINE)
    assert CONFIG["models"]["book"] == {
        "mirrors": mirrors,
        "file": {"name": BOOK_FILE.name, "size": int(size), "sha256": sha256},
    }
    assert len(mirrors) == 2
    data = BOOK_FILE.read_bytes()
    assert (len(data), hashlib.sha256(data).hexdigest()) == (int(size), sha256)
