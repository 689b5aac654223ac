"""A job killed mid-write leaves a temporary; the next run removes it and builds the file whole."""

import numpy as np
import pandas as pd

from mnist_pipeline.tables import read_arrays
from mnist_pipeline.weights import load_weights

from crash import killed_writer
from idxgen import random_split
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

TARGETS = [
    f"results/downloads/mnist/{ARCHIVE_NAMES['test_labels']}",
    "results/parquet/mnist/test.parquet",
    "results/model/mnist/weights.npz",
    "results/model/mnist/history.csv",
]


def test_a_rerun_after_killed_jobs_removes_their_temporaries_and_builds_whole_files(tmp_path):
    project = make_project(tmp_path / "project")
    data = {"train": random_split(80, seed=5), "test": random_split(40, seed=6)}
    files = archives(data)
    left = [killed_writer(project / target) for target in TARGETS]
    with LoopbackMirror(files) as mirror:
        write_overlay(
            project,
            [mirror.url],
            pins(files),
            model={"weights": None, "train": {"epochs": 1, "batch_size": 20}},
        )
        snakemake(project, *TARGETS)

    assert not [p for p in left if p.exists()]
    assert not [f for f in files_under(project / "results") if f.endswith(".part")]
    log = (project / "results/logs/convert_to_parquet/mnist/test.log").read_text()
    assert f"removed {left[1].relative_to(project)}" in log

    assert (project / TARGETS[0]).read_bytes() == files[ARCHIVE_NAMES["test_labels"]]
    images, labels = read_arrays(project / TARGETS[1])
    np.testing.assert_array_equal(images, data["test"][0].reshape(-1, 784))
    np.testing.assert_array_equal(labels, data["test"][1])
    load_weights(project / TARGETS[2])
    assert list(pd.read_csv(project / TARGETS[3])["epoch"]) == [1]
