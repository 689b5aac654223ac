"""Bad config and bad inputs stop the workflow, say what to fix, and leave nothing half-made."""

import hashlib

import numpy as np
import pytest

from mnist_pipeline.network import SHAPES

from idxgen import gz, idx_labels, random_split
from mirror import LoopbackMirror
from project import (
    ARCHIVE_NAMES,
    archives,
    files_under,
    make_project,
    pins,
    snakemake,
    write_overlay,
)


@pytest.fixture(scope="module")
def data():
    return {"train": random_split(60, seed=3), "test": random_split(40, seed=4)}


@pytest.fixture
def project(tmp_path):
    return make_project(tmp_path / "project")


def made_files(project):
    results = project / "results"
    return files_under(results) if results.exists() else []


def outputs(project):
    """Files under results/ other than logs and benchmarks."""
    return [f for f in made_files(project) if not f.startswith(("logs/", "benchmarks/"))]


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({"batch_size": "abc"}, "config key 'batch_size': expected integer; found 'abc'"),
        ({"batch_size": 0}, "config key 'batch_size': 0 is less than the minimum of 1"),
        (
            {"dataset": "cifar"},
            "config key 'dataset': expected one of mnist, fashion-mnist, kmnist",
        ),
        ({"batchsize": 5}, "unknown key 'batchsize' at the top level; allowed: batch_size, "),
        (
            {"model": {"weigths": "w.pkl"}},
            "unknown key 'weigths' under 'model'; allowed: train, weights",
        ),
        ({"predict": {"shards": 1.5}}, "config key 'predict.shards': expected integer; found 1.5"),
        (
            {"batch_size": 100.0},
            "config key 'batch_size': expected integer; found 100.0 (float): write 100",
        ),
        ({"predict": {"shards": 2.0}}, "config key 'predict.shards': expected integer; found 2.0"),
        (
            {"download": {"timeout_seconds": float("inf")}},
            "config key 'download.timeout_seconds': expected a finite number; found inf",
        ),
        (
            {"download": {"backoff_seconds": float("inf")}},
            "config key 'download.backoff_seconds': expected a finite number; found inf",
        ),
        (
            {"download": {"timeout_seconds": float("nan")}},
            "config key 'download.timeout_seconds': expected a finite number; found nan",
        ),
        (
            {"download": {"backoff_seconds": float("nan")}},
            "config key 'download.backoff_seconds': expected a finite number; found nan",
        ),
        (
            {"model": {"train": {"learning_rate": float("nan")}}},
            "config key 'model.train.learning_rate': expected a finite number; found nan",
        ),
        (
            {"download": {"timeout_seconds": 86400}},
            "config key 'download.timeout_seconds': 86400 is greater than the maximum of 3600",
        ),
        (
            {"download": {"backoff_seconds": 3600}},
            "config key 'download.backoff_seconds': 3600 is greater than the maximum of 600",
        ),
        (
            {"model": {"weights": "</script><script>alert(1)</script>.npz"}},
            "config key 'model.weights': '</script><script>alert(1)</script>.npz' does not match",
        ),
    ],
)
def test_bad_config_stops_before_any_job(project, data, settings, expected):
    write_overlay(project, ["http://127.0.0.1:9/"], pins(archives(data)), **settings)
    result = snakemake(project, check=False)
    assert result.returncode != 0
    assert expected in result.stderr, result.stderr
    assert "config/README.md explains each key" in result.stderr
    assert made_files(project) == []


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ("--config", "batch_size=100.0"),
            "config key 'batch_size': expected integer; found 100.0 (float): write 100",
        ),
        (
            ("--config", "batch_size=inf"),
            "config key 'batch_size': expected integer; found inf (float)",
        ),
        # --config reads values nested in {...} as text: the user wrote null, and a number
        (
            ("--config", "model={weights: null}"),
            "config key 'model.weights': null is not a file; 'null' is text, not null "
            "(snakemake --config reads values nested in {...} as text",
        ),
        (
            ("--config", "predict={shards: 2}"),
            "config key 'predict.shards': expected integer; found '2' (str): text, not a number",
        ),
        (
            ("--set-scatter", "predict=0"),
            "--set-scatter predict=0 (which overrides config key 'predict.shards': 0 is less "
            "than the minimum of 1); give --set-scatter predict=N with a valid N, or leave it "
            "out to use predict.shards",
        ),
        (
            ("--set-scatter", "predcit=2"),
            "--set-scatter predcit=2: this workflow has no scatter step 'predcit'; it has: predict",
        ),
    ],
)
def test_bad_command_line_values_stop_before_any_job(project, data, args, expected):
    write_overlay(project, ["http://127.0.0.1:9/"], pins(archives(data)))
    result = snakemake(project, *args, check=False)
    assert result.returncode != 0
    assert expected in result.stderr, result.stderr
    assert made_files(project) == []


def test_the_training_images_pinned_as_the_test_images_are_refused(project, data):
    # test_images names the training file but keeps the test pins: without this check the
    # "test" report would be computed on the training images
    files = pins(archives(data))
    files["test_images"]["name"] = files["train_images"]["name"]
    write_overlay(project, ["http://127.0.0.1:9/"], files)
    result = snakemake(project, check=False)
    assert result.returncode != 0
    assert (
        "config keys 'datasets.mnist.files.train_images.name' and "
        "'datasets.mnist.files.test_images.name' are both 'train-images-idx3-ubyte.gz'"
    ) in result.stderr, result.stderr
    assert "Give train_images and test_images their own file names and pins" in result.stderr
    assert made_files(project) == []


def test_one_archive_pinned_under_two_keys_is_refused(project, data):
    files = pins(archives(data))
    files["test_labels"] = {**files["train_labels"], "name": "copy-of-train-labels.gz"}
    write_overlay(project, ["http://127.0.0.1:9/"], files)
    result = snakemake(project, check=False)
    assert result.returncode != 0
    assert (
        "config keys 'datasets.mnist.files.train_labels.sha256' and "
        "'datasets.mnist.files.test_labels.sha256' are the same"
    ) in result.stderr, result.stderr
    assert made_files(project) == []


@pytest.mark.parametrize("name", ["..", "t10k-labels-idx1-ubyte", ".t10k-labels.gz"])
def test_an_archive_name_the_download_rule_cannot_write_is_refused(project, data, name):
    files = pins(archives(data))
    files["test_labels"]["name"] = name
    write_overlay(project, ["http://127.0.0.1:9/"], files)
    result = snakemake(project, check=False)
    assert result.returncode != 0
    assert f"config key 'datasets.mnist.files.test_labels.name': '{name}' does not match" in (
        result.stderr
    ), result.stderr
    assert "ending in .gz" in result.stderr
    assert made_files(project) == []


def test_weights_that_are_not_there_stop_before_any_job(project, data):
    write_overlay(
        project, ["http://127.0.0.1:9/"], pins(archives(data)), model={"weights": "w.pkl"}
    )
    result = snakemake(project, check=False)
    assert result.returncode != 0
    assert "ConfigError" in result.stderr
    assert "config key 'model.weights': w.pkl is not a file" in result.stderr, result.stderr
    assert made_files(project) == []


def test_a_mirror_url_that_is_not_http_or_file_is_refused(project, data):
    write_overlay(project, ["ftp://example.org/mnist/"], pins(archives(data)))
    result = snakemake(project, check=False)
    assert result.returncode != 0
    assert "datasets.mnist.mirrors.0" in result.stderr, result.stderr
    assert made_files(project) == []


def test_checksum_mismatch_fails_the_download_and_keeps_nothing(project, data):
    files = archives(data)
    wrong = pins(files)
    wrong["test_labels"]["sha256"] = hashlib.sha256(b"something else").hexdigest()
    with LoopbackMirror(files) as mirror:
        write_overlay(project, [mirror.url], wrong)
        result = snakemake(project, "results/parquet/mnist/test.parquet", check=False)
    assert result.returncode != 0
    assert f"{mirror.url}{ARCHIVE_NAMES['test_labels']}" in result.stderr
    assert wrong["test_labels"]["sha256"] in result.stderr
    assert "datasets.mnist.files" in result.stderr
    assert f"downloads/mnist/{ARCHIVE_NAMES['test_labels']}" not in outputs(project)
    assert not [f for f in made_files(project) if f.endswith(".part")]


def test_a_label_out_of_range_fails_the_conversion_and_keeps_nothing(project, data):
    images, labels = data["test"]
    labels = labels.copy()
    labels[7] = 10
    files = archives({**data, "test": (images, labels)})
    files[ARCHIVE_NAMES["test_labels"]] = gz(idx_labels(labels))
    with LoopbackMirror(files) as mirror:
        write_overlay(project, [mirror.url], pins(files))
        result = snakemake(project, "results/parquet/mnist/test.parquet", check=False)
    assert result.returncode != 0
    assert ARCHIVE_NAMES["test_labels"] in result.stderr and "10" in result.stderr
    assert "parquet/mnist/test.parquet" not in outputs(project)
    assert not [f for f in made_files(project) if f.endswith(".part")]


def test_weights_of_the_wrong_shape_fail_predict_and_keep_nothing(project, data):
    weights = project / "weights.npz"
    rng = np.random.default_rng(0)
    shapes = {**SHAPES, "W3": (100, 9)}
    np.savez(weights, **{k: rng.normal(size=s).astype(np.float32) for k, s in shapes.items()})
    files = archives(data)
    with LoopbackMirror(files) as mirror:
        write_overlay(project, [mirror.url], pins(files), model={"weights": str(weights)})
        result = snakemake(project, "results/predictions/mnist/test.parquet", check=False)
    assert result.returncode != 0
    assert "W3" in result.stderr and "(100, 10)" in result.stderr and "(100, 9)" in result.stderr
    assert not [f for f in outputs(project) if f.startswith("predictions/")]
