"""EMNIST through the whole DAG: one zip from the loopback mirror, read in place, upright tables,
K-class models, predictions and reports that name the letters; and what a bad zip or pin does."""

import io
import json
import shutil
import zipfile

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml

from mnist_pipeline.network import SHAPES, shapes

from emnist import BUNDLE, LETTERS, SPLITS, bundle_pin, emnist_zip, member, write_emnist_overlay
from mirror import LoopbackMirror
from project import (
    REPO,
    edit_overlay,
    files_under,
    make_project,
    planned_jobs,
    random_weights,
    snakemake,
)

ROWS = {"train": 160, "test": 94}  # every class of the largest split in both parts
DATASETS = ["emnist-letters", "emnist-balanced"]
REPORT_FILES = ["accuracy.json", "per_class.csv", "confusion_matrix.csv", "confusion_matrix.png"]
DIGITS = [str(d) for d in range(10)]
UPPER = [chr(c) for c in range(ord("A"), ord("Z") + 1)]
CLASSES = {"emnist-letters": LETTERS, "emnist-balanced": DIGITS + UPPER + list("abdefghnqrt")}


def reports(dataset: str) -> list[str]:
    """The test split's metrics and its predictions, as Parquet and as CSV."""
    return [f"results/reports/{dataset}/test/{name}" for name in REPORT_FILES] + [
        f"results/predictions/{dataset}/test.{form}" for form in ("parquet", "csv")
    ]


@pytest.fixture(scope="module")
def zipped():
    return emnist_zip(ROWS)


@pytest.fixture(scope="module")
def mirror(zipped):
    with LoopbackMirror({BUNDLE: zipped[0]}) as server:
        yield server


@pytest.fixture(scope="module")
def built(tmp_path_factory, zipped, mirror):
    """A project where one snakemake run built the reports of two EMNIST datasets."""
    project = make_project(tmp_path_factory.mktemp("project"))
    write_emnist_overlay(
        project,
        [mirror.url],
        zipped[0],
        model={"weights": None, "train": {"epochs": 1, "batch_size": 20}},
    )
    snakemake(project, *reports("emnist-letters"), *reports("emnist-balanced"))
    return project


def split_of(dataset: str) -> str:
    return dataset.removeprefix("emnist-")


def test_the_zip_is_downloaded_once_for_both_datasets_and_nothing_is_extracted(
    built, zipped, mirror
):
    assert len(mirror.requests_for(BUNDLE)) == 1
    assert (built / "results/downloads/bundles" / BUNDLE).read_bytes() == zipped[0]
    downloads = files_under(built / "results/downloads")
    assert downloads == [f"bundles/{BUNDLE}"]  # no member copied out of the zip
    assert not [f for f in files_under(built) if f.endswith(".gz")]
    log = (built / f"results/logs/download_bundle/{BUNDLE}.log").read_text()
    assert "SHA-256 verified" in log
    assert "for datasets.emnist-balanced, datasets.emnist-byclass" in log


@pytest.mark.parametrize("part", ["train", "test"])
@pytest.mark.parametrize("dataset", DATASETS)
def test_tables_hold_the_images_upright_and_the_classes_from_0(built, zipped, dataset, part):
    images, classes = zipped[1][(split_of(dataset), part)]
    path = built / f"results/parquet/{dataset}/{part}.parquet"
    table = pq.read_table(path)
    pixels = np.stack([table[f"pixel{i}"].to_numpy() for i in range(784)], axis=1)
    np.testing.assert_array_equal(pixels, images.reshape(len(images), 784))
    np.testing.assert_array_equal(table["target"].to_numpy(), classes)
    meta = pq.read_schema(path).metadata
    assert meta[b"classes"] == str(len(CLASSES[dataset])).encode()
    assert meta[b"dataset"] == dataset.encode()


def test_letters_are_stored_1_to_26_and_held_0_to_25(built):
    # the zip labels the letters 1..26 (as NIST's does); the table counts classes from 0
    target = pq.read_table(built / "results/parquet/emnist-letters/train.parquet")["target"]
    assert (target.to_numpy().min(), target.to_numpy().max()) == (0, 25)


@pytest.mark.parametrize("dataset", DATASETS)
def test_the_trained_network_has_one_output_per_class(built, dataset):
    weights = np.load(built / f"results/model/{dataset}/weights.npz")
    assert {key: weights[key].shape for key in SHAPES} == shapes(len(CLASSES[dataset]))
    history = pd.read_csv(built / f"results/model/{dataset}/history.csv")
    assert list(history["epoch"]) == [1]


def reference_forward(weights, pixels):
    x = pixels.astype(np.float64) / 255
    z1 = 1 / (1 + np.exp(-(x @ weights["W1"] + weights["b1"])))
    z2 = 1 / (1 + np.exp(-(z1 @ weights["W2"] + weights["b2"])))
    a3 = z2 @ weights["W3"] + weights["b3"]
    e = np.exp(a3 - a3.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("dataset", DATASETS)
def test_predictions_have_a_probability_per_class_for_the_upright_images(built, zipped, dataset):
    images, classes = zipped[1][(split_of(dataset), "test")]
    k = len(CLASSES[dataset])
    probs = [f"prob{i}" for i in range(k)]
    predictions = pd.read_parquet(built / f"results/predictions/{dataset}/test.parquet")
    assert list(predictions.columns) == ["index", "target", "predicted", *probs]
    np.testing.assert_array_equal(predictions["target"], classes)
    weights = dict(np.load(built / f"results/model/{dataset}/weights.npz"))
    expected = reference_forward(weights, images.reshape(len(images), 784))
    np.testing.assert_allclose(predictions[probs].to_numpy(), expected, atol=1e-5)
    csv = pd.read_csv(built / f"results/predictions/{dataset}/test.csv")
    assert list(csv.columns) == list(predictions.columns)


@pytest.mark.parametrize("dataset", DATASETS)
def test_reports_count_the_predictions_and_name_the_classes(built, dataset):
    names = CLASSES[dataset]
    predictions = pd.read_parquet(built / f"results/predictions/{dataset}/test.parquet")
    report = built / f"results/reports/{dataset}/test"
    accuracy = json.loads((report / "accuracy.json").read_text())
    correct = int((predictions["target"] == predictions["predicted"]).sum())
    assert (accuracy["dataset"], accuracy["correct"], accuracy["total"]) == (
        dataset,
        correct,
        ROWS["test"],
    )
    per_class = pd.read_csv(report / "per_class.csv", keep_default_na=False)
    assert list(per_class["name"]) == [*names, "macro avg", "weighted avg"]
    assert list(per_class["support"][: len(names)]) == list(
        np.bincount(predictions["target"], minlength=len(names))
    )
    confusion = pd.read_csv(report / "confusion_matrix.csv", index_col=0, keep_default_na=False)
    assert list(confusion.index) == names and list(confusion.columns) == names
    expected = pd.crosstab(predictions["target"], predictions["predicted"]).reindex(
        index=range(len(names)), columns=range(len(names)), fill_value=0
    )
    np.testing.assert_array_equal(confusion.to_numpy(), expected.to_numpy())
    assert (report / "confusion_matrix.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_second_run_has_nothing_to_do(built):
    assert planned_jobs(built, *reports("emnist-letters"), *reports("emnist-balanced")) == {}


def test_a_third_emnist_dataset_reads_the_same_zip_without_a_download(built, tmp_path):
    project = shutil.copytree(built, tmp_path / "project", symlinks=True)
    jobs = planned_jobs(project, "results/parquet/emnist-byclass/test.parquet")
    assert jobs == {"convert_to_parquet": 1}


def test_changing_how_a_dataset_is_stored_reconverts_it_and_downloads_nothing(built, tmp_path):
    project = shutil.copytree(built, tmp_path / "project", symlinks=True)
    edit_overlay(project, lambda o: o["datasets"]["emnist-letters"].update(transposed=False))
    assert planned_jobs(project, *reports("emnist-letters")) == {
        "convert_to_parquet": 2,
        "train_model": 1,
        "predict": 1,
        "gather_predictions": 1,
        "evaluate_metrics": 1,
        "evaluate_pictures": 1,  # its confusion_matrix.png
    }


def test_another_mirror_for_the_zip_fetches_nothing_again(built, tmp_path):
    """The verified zip is the same file from any mirror: a mirror added for one of the datasets
    naming it does not download it again, which would reconvert every split read from it."""
    project = shutil.copytree(built, tmp_path / "project", symlinks=True)
    edit_overlay(
        project,
        lambda o: o["datasets"]["emnist-letters"]["mirrors"].insert(0, "http://127.0.0.1:9/"),
    )
    assert planned_jobs(project, *reports("emnist-letters"), *reports("emnist-balanced")) == {}


def test_ten_class_weights_are_refused_for_a_47_class_dataset_at_predict(built, tmp_path):
    project = shutil.copytree(built, tmp_path / "project", symlinks=True)
    weights = tmp_path / "mnist-weights.npz"
    random_weights(weights, seed=0)
    edit_overlay(project, lambda o: o["model"].update(weights=str(weights)))
    target = "results/predictions/emnist-balanced/test.parquet"
    (project / target).unlink()
    result = snakemake(project, target, check=False)
    assert result.returncode != 0
    assert f"{weights}: key 'W3' has shape (100, 10), expected (100, 47)" in result.stderr
    assert "but datasets.emnist-balanced.classes names 47" in result.stderr
    assert not (project / target).exists()
    assert not list((project / "results/predictions/emnist-balanced/shards").rglob("*.parquet"))


# --- a bad zip or pin ----------------------------------------------------------------------------


def outputs(project):
    results = project / "results"
    made = files_under(results) if results.exists() else []
    return [f for f in made if not f.startswith(("logs/", "benchmarks/"))]


def test_a_wrong_bundle_pin_fails_the_download_naming_the_bundle_keys(tmp_path, zipped):
    project = make_project(tmp_path / "project")
    wrong = {**bundle_pin(zipped[0]), "sha256": "0" * 64}
    with LoopbackMirror({BUNDLE: zipped[0]}) as mirror:
        write_emnist_overlay(project, [mirror.url], wrong)
        result = snakemake(project, "results/parquet/emnist-letters/test.parquet", check=False)
        assert len(mirror.requests_for(BUNDLE)) == 1  # a wrong SHA-256 is not retried
    assert result.returncode != 0
    assert f"Could not download {BUNDLE} ({len(zipped[0])} bytes, SHA-256 {'0' * 64})" in (
        result.stderr
    )
    assert f"{mirror.url}{BUNDLE}: SHA-256 mismatch" in result.stderr
    assert "check datasets.emnist-balanced.mirrors and datasets.emnist-byclass.mirrors" in (
        result.stderr
    )
    assert "datasets.emnist-letters.bundle and datasets.emnist-mnist.bundle" in result.stderr
    assert outputs(project) == []


def test_bundles_pinned_differently_stop_before_any_job(tmp_path, zipped):
    project = make_project(tmp_path / "project")
    write_emnist_overlay(project, ["http://127.0.0.1:9/"], zipped[0])

    def grow(overlay):
        overlay["datasets"]["emnist-letters"]["bundle"]["size"] += 1

    edit_overlay(project, grow)
    result = snakemake(project, "results/parquet/emnist-letters/test.parquet", check=False)
    assert result.returncode != 0
    assert (
        "config keys 'datasets.emnist-balanced.bundle' and 'datasets.emnist-letters.bundle' both "
        "name 'gzip.zip' but pin it with different size"
    ) in result.stderr, result.stderr
    assert not (project / "results").exists()


def test_a_zip_missing_a_member_fails_the_conversion_naming_member_and_key(tmp_path):
    gone = member("letters", "test", "labels")
    data, _ = emnist_zip(ROWS, omit=(gone,))
    project = make_project(tmp_path / "project")
    with LoopbackMirror({BUNDLE: data}) as mirror:
        write_emnist_overlay(project, [mirror.url], data)
        result = snakemake(project, "results/parquet/emnist-letters/test.parquet", check=False)
    assert result.returncode != 0
    message = f"no member '{gone}' (config key 'datasets.emnist-letters.files.test_labels.name')"
    assert message in result.stderr, result.stderr
    log = (project / "results/logs/convert_to_parquet/emnist-letters/test.log").read_text()
    assert message in log
    assert outputs(project) == [f"downloads/bundles/{BUNDLE}"]  # verified, kept for the others


def test_the_generated_zip_holds_every_member_the_shipped_config_names(zipped):
    config = yaml.safe_load((REPO / "config/config.yaml").read_text())
    members = set(zipfile.ZipFile(io.BytesIO(zipped[0])).namelist())
    for split in SPLITS:
        files = config["datasets"][f"emnist-{split}"]["files"]
        assert {entry["name"] for entry in files.values()} <= members
