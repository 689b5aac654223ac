"""What a rerun does after one change, through the real DAG: the jobs a change must rerun and no
others, and outputs that then match a clean run with the new settings, read back."""

import hashlib
import json
import os
import shutil

import pyarrow.parquet as pq
import pytest
import yaml

from idxgen import random_split
from mirror import LoopbackMirror
from project import (
    archives,
    make_project,
    pins,
    planned_jobs,
    random_weights,
    snakemake,
    write_overlay,
)

PREDICTIONS = "results/predictions/mnist/test.parquet"
ACCURACY = "results/reports/mnist/test/accuracy.json"
# predict and what follows it, for the test split
AFTER_PREDICT = {
    "predict": 1,
    "gather_predictions": 1,
    "evaluate_metrics": 1,
    "evaluate_pictures": 1,
    "summarize_results": 1,
    "all": 1,
}


@pytest.fixture(scope="module")
def data():
    return {"train": random_split(30, seed=31), "test": random_split(120, seed=32)}


@pytest.fixture(scope="module")
def mirror(data):
    with LoopbackMirror(archives(data)) as server:
        yield server


@pytest.fixture(scope="module")
def built(tmp_path_factory, data, mirror):
    """The test split predicted and evaluated with weights.npz, a file given in the project."""
    project = make_project(tmp_path_factory.mktemp("built"))
    random_weights(project / "weights.npz", seed=33)
    write_overlay(
        project,
        [mirror.url],
        pins(archives(data)),
        splits=["test"],
        model={"weights": "weights.npz"},
    )
    snakemake(project)
    return project


@pytest.fixture
def project(built, tmp_path):
    return shutil.copytree(built, tmp_path / "project", symlinks=True)


def edit_overlay(project, edit):
    overlay = yaml.safe_load((project / "overlay.yaml").read_text())
    edit(overlay)
    (project / "overlay.yaml").write_text(yaml.safe_dump(overlay))


def test_weights_replaced_keeping_an_older_time_are_predicted_with_again(built, project, tmp_path):
    """cp -p, tar and rsync -a keep a file's modification time: other weights, older than the
    predictions, under the same name. The predictions and the SHA-256 that accuracy.json gives
    for their weights must be those of the new file, as in a clean run with it."""
    weights = project / "weights.npz"
    made = os.stat(weights)
    random_weights(weights, seed=34)
    os.utime(weights, ns=(made.st_atime_ns, made.st_mtime_ns - 10**9))
    assert planned_jobs(project) == AFTER_PREDICT
    snakemake(project)
    clean = make_project(tmp_path / "clean")
    shutil.copy(weights, clean / "weights.npz")
    shutil.copy(project / "overlay.yaml", clean)
    snakemake(clean)
    assert pq.read_table(project / PREDICTIONS).equals(pq.read_table(clean / PREDICTIONS))
    assert not pq.read_table(project / PREDICTIONS).equals(pq.read_table(built / PREDICTIONS))
    accuracy = json.loads((project / ACCURACY).read_text())
    assert accuracy["weights_sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest()
    assert (project / ACCURACY).read_bytes() == (clean / ACCURACY).read_bytes()
    assert planned_jobs(project) == {}
