"""The whole DAG, run by snakemake in a temporary project against a loopback mirror."""

import json
import shutil

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from idxgen import random_split
from project import (
    archives,
    edit_overlay,
    make_project,
    pins,
    planned_jobs,
    snakemake,
    write_overlay,
)

TRAIN_ROWS, TEST_ROWS = 700, 300
PIXELS = [f"pixel{i}" for i in range(784)]
PROBS = [f"prob{i}" for i in range(10)]


@pytest.fixture(scope="module")
def data():
    return {"train": random_split(TRAIN_ROWS, seed=1), "test": random_split(TEST_ROWS, seed=2)}


@pytest.fixture(scope="module")
def built(tmp_path_factory, data, mirror):
    """A project where `snakemake --cores 2` has built everything, training a small model."""
    project = make_project(tmp_path_factory.mktemp("project"))
    write_overlay(
        project,
        [mirror.url],
        pins(archives(data)),
        splits=["train", "test"],
        model={"weights": None, "train": {"epochs": 2, "batch_size": 50}},
    )
    snakemake(project)
    return project


def reference_forward(weights, pixels):
    """The book's forward pass in float64, written out independently of the package."""
    x = pixels.astype(np.float64) / 255.0
    sigmoid = lambda a: 1 / (1 + np.exp(-a))  # noqa: E731
    z1 = sigmoid(x @ weights["W1"] + weights["b1"])
    z2 = sigmoid(z1 @ weights["W2"] + weights["b2"])
    a3 = z2 @ weights["W3"] + weights["b3"]
    e = np.exp(a3 - a3.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("split", ["train", "test"])
def test_parquet_tables_hold_every_pixel_and_label_of_the_archives(built, data, split):
    images, labels = data[split]
    table = pq.read_table(built / f"results/parquet/mnist/{split}.parquet")
    assert table.column_names == [*PIXELS, "target"]
    pixels = np.stack([table[c].to_numpy() for c in PIXELS], axis=1)
    assert pixels.dtype == np.uint8
    np.testing.assert_array_equal(pixels, images.reshape(len(images), 784))
    np.testing.assert_array_equal(table["target"].to_numpy(), labels)
    meta = pq.read_schema(built / f"results/parquet/mnist/{split}.parquet").metadata
    assert meta[b"dataset"] == b"mnist" and meta[b"split"] == split.encode()


@pytest.mark.parametrize("split", ["train", "test"])
def test_predictions_are_the_networks_outputs_for_every_row(built, data, split):
    images, labels = data[split]
    weights = dict(np.load(built / "results/model/mnist/weights.npz"))
    predictions = pd.read_parquet(built / f"results/predictions/mnist/{split}.parquet")
    assert list(predictions.columns) == ["index", "target", "predicted", *PROBS]
    np.testing.assert_array_equal(predictions["index"], np.arange(len(labels)))
    np.testing.assert_array_equal(predictions["target"], labels)
    probs = predictions[PROBS].to_numpy()
    np.testing.assert_allclose(
        probs, reference_forward(weights, images.reshape(-1, 784)), atol=1e-5
    )
    np.testing.assert_array_equal(predictions["predicted"], probs.argmax(axis=1))
    from_csv = pd.read_csv(built / f"results/predictions/mnist/{split}.csv")
    # the same values, each probability's text read back as its float32 bits
    pd.testing.assert_frame_equal(
        from_csv.astype(predictions.dtypes), predictions, check_exact=True
    )


def test_reports_count_what_the_predictions_say(built):
    predictions = pd.read_parquet(built / "results/predictions/mnist/test.parquet")
    report = built / "results/reports/mnist/test"
    accuracy = json.loads((report / "accuracy.json").read_text())
    correct = int((predictions["target"] == predictions["predicted"]).sum())
    assert accuracy["correct"] == correct and accuracy["total"] == TEST_ROWS
    assert accuracy["accuracy"] == pytest.approx(correct / TEST_ROWS)
    assert (accuracy["dataset"], accuracy["split"], accuracy["batch_size"]) == (
        "mnist",
        "test",
        100,
    )
    confusion = pd.read_csv(report / "confusion_matrix.csv", index_col=0).to_numpy()
    expected = pd.crosstab(predictions["target"], predictions["predicted"]).reindex(
        index=range(10), columns=range(10), fill_value=0
    )
    np.testing.assert_array_equal(confusion, expected.to_numpy())
    t, p = predictions["target"].to_numpy(), predictions["predicted"].to_numpy()
    per_class = pd.read_csv(report / "per_class.csv", keep_default_na=False)
    assert list(per_class["name"]) == [*map(str, range(10)), "macro avg", "weighted avg"]
    scores, support = [], []
    for k in range(10):  # the definitions, 0/0 counted as 0
        hits, true, said = np.sum((t == k) & (p == k)), np.sum(t == k), np.sum(p == k)
        precision = hits / said if said else 0.0
        recall = hits / true if true else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        scores.append([precision, recall, f1])
        support.append(true)
    macro = np.mean(scores, axis=0)
    weighted = np.sum(np.multiply(support, np.transpose(scores)), axis=1) / TEST_ROWS
    assert list(per_class["support"]) == [*support, TEST_ROWS, TEST_ROWS]
    np.testing.assert_allclose(
        per_class[["precision", "recall", "f1"]], [*scores, macro, weighted], rtol=0, atol=5e-7
    )
    # the last epoch's accuracies are those of the weights' predictions
    last = pd.read_csv(built / "results/model/mnist/history.csv").iloc[-1]
    train = json.loads((built / "results/reports/mnist/train/accuracy.json").read_text())
    assert (last["test_accuracy"], last["train_accuracy"]) == (
        accuracy["accuracy"],
        train["accuracy"],
    )
    for picture in ("confusion_matrix.png", "samples.png", "misclassified.png"):
        assert (report / picture).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (built / "results/reports/mnist/training_curves.png").stat().st_size > 0
    history = pd.read_csv(built / "results/model/mnist/history.csv")
    assert list(history["epoch"]) == [1, 2]
    gates = pd.read_csv(built / "results/perceptron/gates.csv")
    assert list(gates["XOR"]) == [a ^ b for a, b in zip(gates["x1"], gates["x2"], strict=True)]


def test_a_second_run_has_nothing_to_do(built):
    assert planned_jobs(built) == {}


# predict and what follows it, for the two splits
AFTER_PREDICT = {
    "predict": 2,
    "gather_predictions": 2,
    "evaluate_metrics": 2,
    "evaluate_pictures": 2,
    "summarize_results": 1,
    "all": 1,
}


def test_changing_batch_size_reruns_predict_and_what_follows_only(built):
    assert planned_jobs(built, "--config", "batch_size=7") == AFTER_PREDICT


def test_giving_weights_reruns_predict_and_what_follows_only(built, tmp_path):
    project = shutil.copytree(built, tmp_path / "project", symlinks=True)
    weights = shutil.copy(built / "results/model/mnist/weights.npz", tmp_path / "given.npz")
    edit_overlay(project, lambda o: o["model"].update(weights=str(weights)))
    assert planned_jobs(project) == AFTER_PREDICT


@pytest.mark.parametrize(
    "change",
    [
        ("--config", "batch_size=7"),
        ("--set-scatter", "predict=3"),
        # Snakemake gives a job's script as many BLAS threads as the job has, and OpenBLAS's
        # sums differ in their last bits between one thread and two.
        ("--set-threads", "predict=1", "--forcerun", "predict"),
    ],
    ids=["batch_size", "shards", "threads"],
)
def test_predictions_do_not_depend_on_batch_size_shards_or_threads(built, tmp_path, change):
    project = shutil.copytree(built, tmp_path / "project", symlinks=True)
    snakemake(project, *change)
    for split in ("train", "test"):
        before = pq.read_table(built / f"results/predictions/mnist/{split}.parquet")
        after = pq.read_table(project / f"results/predictions/mnist/{split}.parquet")
        assert after.equals(before)  # bit for bit, probabilities too
        for name in ("parquet", "csv"):
            path = f"results/predictions/mnist/{split}.{name}"
            assert (project / path).read_bytes() == (built / path).read_bytes()
    accuracy = json.loads((project / "results/reports/mnist/test/accuracy.json").read_text())
    assert accuracy["batch_size"] == (int(change[1].split("=")[1]) if "batch" in change[1] else 100)


def test_report_html_is_self_contained(built):
    snakemake(built, "--report", "report.html")
    html = (built / "report.html").read_text()
    assert "accuracy.json" in html and "confusion_matrix.png" in html


def test_sharded_inference_runs_under_a_cluster_executor(built, tmp_path):
    """Each predict shard is a job submitted through the generic cluster executor, and so is
    the gathering of the two into the prediction files."""
    project = shutil.copytree(built, tmp_path / "project", symlinks=True)
    target = "results/predictions/mnist/test.parquet"
    profile = ("--profile", "workflow/profiles/local-cluster", "--set-scatter", "predict=2")
    result = snakemake(project, target, *profile)
    assert (result.stdout + result.stderr).count("with external jobid") == 3
    assert (
        "rows in batches of 100"
        in (project / "results/logs/predict/mnist/test/2-of-2.log").read_text()
    )
    assert pq.read_table(project / target).equals(pq.read_table(built / target))
