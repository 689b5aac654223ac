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
    ],
)
def test_bad_config_stops_before_any_job(project, data, settings, expected):
    write_overlay(project, ["http://127.0.0.1:9/"], pins(archives(data)), **settings)
    result = snakemake(project, check=False)
    assert result.returncode != 0
    assert expected in result.stderr, result.stderr
    assert made_files(project) == []


def test_weights_that_are_not_there_stop_before_any_job(project, data):
    write_overlay(
        project, ["http://127.0.0.1:9/"], pins(archives(data)), model={"weights": "w.pkl"}
    )
    result = snakemake(project, check=False)
    assert result.returncode != 0
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
