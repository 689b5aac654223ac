"""Inputs changed behind the workflow's back are caught where they are used, through the real DAG.

A built project is copied, one file in it is replaced by something valid-looking but wrong and
made newer (as an edit by hand would), and the target that uses it is rebuilt: the job must fail
with a message naming the file and what to do, leave nothing under its output's name, and
following the message must give back the right outputs.
"""

import hashlib
import shutil

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from idxgen import gz, idx_labels, random_split
from project import (
    ARCHIVE_NAMES,
    archives,
    files_under,
    make_project,
    pins,
    random_weights,
    snakemake,
    write_overlay,
)

TEST_ROWS = 300
LABELS = f"results/downloads/mnist/{ARCHIVE_NAMES['test_labels']}"
TABLE = "results/parquet/mnist/test.parquet"
SHARD = "results/predictions/mnist/shards/test/{}-of-2.parquet"
PREDICTIONS = "results/predictions/mnist/test.parquet"
REPORTS = "results/reports/mnist/test"
REMAKE = "Delete it and rerun, so it is made again."


@pytest.fixture(scope="module")
def data():
    return {"train": random_split(20, seed=21), "test": random_split(TEST_ROWS, seed=22)}


@pytest.fixture(scope="module")
def built(tmp_path_factory, data, mirror):
    """The test split downloaded, converted, predicted in 2 shards with given weights, evaluated,
    the shards kept."""
    project = make_project(tmp_path_factory.mktemp("built"))
    weights = random_weights(project / "weights.npz", seed=23)
    write_overlay(
        project,
        [mirror.url],
        pins(archives(data)),
        splits=["test"],
        model={"weights": str(weights)},
        predict={"shards": 2},
    )
    snakemake(project, "--notemp")  # keep the shards (temp() files) for the tests to break
    return project


@pytest.fixture
def project(built, tmp_path):
    return shutil.copytree(built, tmp_path / "project", symlinks=True)


def fails(project, target, *messages):
    """Building `target` fails, and its stderr says every one of `messages`."""
    result = snakemake(project, target, check=False)
    assert result.returncode != 0
    for message in messages:
        assert message in result.stderr, result.stderr
    assert not [f for f in files_under(project / "results") if f.endswith(".part")]
    return result


def test_an_archive_replaced_after_its_download_is_refused_by_the_conversion(project, data, mirror):
    """Another valid labels archive of the same length, which would convert without a complaint
    (wrong targets for every row) into a table claiming the pinned SHA-256."""
    images, labels = data["test"]
    replaced = gz(idx_labels(np.roll(labels, 1)))
    (project / LABELS).write_bytes(replaced)
    pin = pins(archives(data))["test_labels"]["sha256"]
    fails(
        project,
        TABLE,
        f"{LABELS}: SHA-256 {hashlib.sha256(replaced).hexdigest()}, but the config pins {pin}",
        f"Delete {LABELS} and rerun, so it is downloaded and verified again.",
    )
    assert (
        not (project / "results/parquet").exists() or files_under(project / "results/parquet") == []
    )
    # Doing what the message says downloads it again, verified, and the table is right.
    (project / LABELS).unlink()
    snakemake(project, TABLE)
    table = pq.read_table(project / TABLE)
    np.testing.assert_array_equal(table["target"].to_numpy(), labels)
    assert table.schema.metadata[b"labels_sha256"] == pin.encode()


@pytest.mark.parametrize(
    ("target", "made"),
    [
        (PREDICTIONS, [SHARD.format(1), SHARD.format(2)]),  # by predict
        ("results/model/mnist/weights.npz", ["results/model/mnist/weights.npz"]),  # train_model
    ],
)
def test_a_table_replaced_by_the_other_splits_is_refused_by_what_reads_it(
    built, project, target, made
):
    """The train split's table copied over the test split's: a valid pixel table, newer than
    the predictions, that would be predicted (or trained on) and scored as the test split."""
    train = "results/parquet/mnist/train.parquet"
    snakemake(project, train)
    shutil.copy(project / train, project / TABLE)
    fails(
        project,
        target,
        f"{TABLE}: its metadata says split 'train', expected 'test'; images_sha256 ",
        "Delete it and rerun, so it is converted again from the verified archives.",
    )
    # Nothing was made from it (a shard the failed run never got to is the built one).
    made = [path for path in made if (project / path).exists()]
    assert [(project / path).read_bytes() for path in made] == [
        (built / path).read_bytes() for path in made
    ]
    (project / TABLE).unlink()
    snakemake(project, PREDICTIONS)
    assert pq.read_table(project / PREDICTIONS).equals(pq.read_table(built / PREDICTIONS))


def test_a_shard_missing_its_tail_is_named_by_the_gather(built, project):
    shard = SHARD.format(1)
    pq.write_table(pq.read_table(project / shard).slice(0, 100), project / shard)
    fails(
        project,
        PREDICTIONS,
        f"{shard}: 100 rows, expected 150 (shard 1-of-2: rows 0..149 of {TABLE}, a table of "
        f"300 rows). {REMAKE}",
    )
    assert not (project / PREDICTIONS).exists()
    (project / shard).unlink()
    snakemake(project, PREDICTIONS)
    assert pq.read_table(project / PREDICTIONS).equals(pq.read_table(built / PREDICTIONS))


METRICS = ["accuracy.json", "per_class.csv", "confusion_matrix.csv"]
PICTURES = ["samples.png", "misclassified.png", "confusion_matrix.png"]


def with_target(table: pa.Table, row: int, value: int) -> pa.Table:
    target = table["target"].to_numpy().copy()
    target[row] = value
    return table.set_column(1, "target", pa.array(target))


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: t.slice(0, t.num_rows - 1), "149 rows, expected 150 (shard 1-of-2: rows 0"),
        (
            lambda t: t.take(np.r_[0:5, 6, 5, 7 : t.num_rows]),
            "the row for table row 5 has index 6: rows are missing, repeated or out of order",
        ),
        (lambda t: with_target(t, 42, 10), "row 42 has target 10, but row 42 of"),
        (None, "not a readable Parquet file"),
    ],
)
@pytest.mark.parametrize("job", ["accuracy.json", "samples.png"])  # metrics, pictures
def test_predictions_that_are_not_the_tables_rows_are_refused_by_the_evaluation(
    built, project, edit, message, job
):
    """The evaluation reads the shards, as the gathering does, and checks them as it does."""
    shard = SHARD.format(1)
    path = project / shard
    if edit is None:
        path.write_bytes(path.read_bytes()[:-100])
    else:
        pq.write_table(edit(pq.read_table(path)), path)
    fails(project, f"{REPORTS}/{job}", f"{shard}: {message}", REMAKE)
    # The job's outputs are gone, none half-written (the other job's are untouched).
    made_with = {"accuracy.json": METRICS, "samples.png": PICTURES}[job]
    assert not [f for f in made_with if (project / REPORTS / f).exists()]
    assert not [f for f in files_under(project / REPORTS) if f not in METRICS + PICTURES]
    path.unlink()
    snakemake(project, f"{REPORTS}/accuracy.json")
    path = f"{REPORTS}/confusion_matrix.csv"
    assert (project / path).read_bytes() == (built / path).read_bytes()
