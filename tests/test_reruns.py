"""What a rerun does after one change, through the real DAG: the jobs a change must rerun and no
others, and outputs that then match a clean run with the new settings, read back."""

import hashlib
import json
import os
import pickle
import shutil

import numpy as np
import pyarrow.parquet as pq
import pytest

from idxgen import random_split
from mirror import LoopbackMirror
from project import (
    archives,
    edit_overlay,
    make_project,
    pins,
    planned_jobs,
    random_weights,
    snakemake,
    write_overlay,
)

PREDICTIONS = "results/predictions/mnist/test.parquet"
ACCURACY = "results/reports/mnist/test/accuracy.json"
SUMMARY = "results/reports/mnist/summary.html"
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
    for path in (ACCURACY, SUMMARY):  # the summary gives the weights' path and SHA-256 too
        assert (project / path).read_bytes() == (clean / path).read_bytes(), path
    assert planned_jobs(project) == {}


@pytest.mark.parametrize(
    "edit",
    [
        lambda o: o["datasets"]["mnist"]["mirrors"].insert(0, "http://127.0.0.1:9/"),
        lambda o: o["datasets"]["mnist"].update(mirrors_note="ask the lab for a copy"),
        lambda o: o["download"].update(timeout_seconds=7),
        lambda o: o["download"].update(retries=5),
        lambda o: o["download"].update(backoff_seconds=0.5),
    ],
    ids=["mirrors", "mirrors_note", "timeout_seconds", "retries", "backoff_seconds"],
)
def test_how_archives_are_fetched_reruns_nothing(project, edit):
    """A verified archive is the same file from any mirror, fetched however patiently: another
    mirror list (a private one, say) or download setting must not fetch it again, which would
    rerun the conversion and everything after it."""
    edit_overlay(project, edit)
    assert planned_jobs(project) == {}


def test_another_pin_fetches_that_archive_again_and_reruns_what_follows(project, data):
    """The pins say which file an archive is: another pin is another file, and the one on disk,
    verified against the old pin, is not kept as if it were it."""
    labels = pins(archives(data))["test_labels"]
    edit_overlay(
        project,
        lambda o: o["datasets"]["mnist"]["files"]["test_labels"].update(sha256="0" * 64),
    )
    assert planned_jobs(project) == {
        "download_archive": 1,
        "convert_to_parquet": 1,
        **AFTER_PREDICT,
    }
    result = snakemake(project, check=False)
    assert result.returncode != 0
    assert f"SHA-256 mismatch: found {labels['sha256']}, expected {'0' * 64}" in result.stderr
    assert not (project / "results/downloads/mnist" / labels["name"]).exists()


def test_another_mirror_for_the_books_weights_fetches_nothing_again(tmp_path, data, mirror):
    """The book's weights, verified against models.book.file, are the same file from any mirror."""
    weights = random_weights(tmp_path / "given.npz", seed=35)
    pickled = pickle.dumps(dict(np.load(weights)), protocol=3)  # as the book's file is made
    project = make_project(tmp_path / "project")
    pin = {"name": "w.pkl", "size": len(pickled), "sha256": hashlib.sha256(pickled).hexdigest()}
    with LoopbackMirror({"w.pkl": pickled}) as book:
        write_overlay(
            project,
            [mirror.url],
            pins(archives(data)),
            splits=["test"],
            model={"weights": "book"},
            models={"book": {"mirrors": [book.url], "file": pin}},
        )
        snakemake(project)
    edit_overlay(project, lambda o: o["models"]["book"]["mirrors"].insert(0, "http://127.0.0.1:9/"))
    assert planned_jobs(project) == {}
