"""The whole job on the real MNIST archives, served from a loopback mirror (skipped if absent)."""

import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from mirror import LoopbackMirror
from project import (
    ARCHIVE_NAMES,
    SHARED_MNIST,
    idx_payload,
    make_project,
    shared_pins,
    snakemake,
    write_overlay,
)

pytestmark = pytest.mark.skipif(
    not (SHARED_MNIST / "SHA256SUMS").exists(),
    reason=f"the real MNIST archives are not on this machine ({SHARED_MNIST})",
)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The default job (training included) on the real data, from an empty results/."""
    project = make_project(tmp_path_factory.mktemp("real"))
    with LoopbackMirror.from_directory(SHARED_MNIST) as mirror:
        write_overlay(project, [mirror.url], shared_pins(), splits=["train", "test"])
        snakemake(project)
    return project


@pytest.mark.parametrize(("split", "rows"), [("train", 60_000), ("test", 10_000)])
def test_tables_hold_every_pixel_and_label_of_the_real_archives(built, split, rows):
    table = pq.read_table(built / f"results/parquet/mnist/{split}.parquet")
    assert table.num_rows == rows
    pixels = np.stack([table[f"pixel{i}"].to_numpy() for i in range(784)], axis=1)
    np.testing.assert_array_equal(pixels.ravel(), idx_payload(ARCHIVE_NAMES[f"{split}_images"], 16))
    np.testing.assert_array_equal(
        table["target"].to_numpy(), idx_payload(ARCHIVE_NAMES[f"{split}_labels"], 8)
    )


def test_the_default_model_reaches_97_percent_on_the_test_split(built):
    accuracy = json.loads((built / "results/reports/mnist/test/accuracy.json").read_text())
    assert accuracy["total"] == 10_000
    assert accuracy["accuracy"] >= 0.97
