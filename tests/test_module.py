"""The workflow used from elsewhere: imported as a module by another workflow (also under a
prefix), sharing downloads through Snakemake's cache, and in a conda environment of its pins."""

import importlib.util
import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml

from idxgen import random_split
from mirror import LoopbackMirror
from project import (
    REPO,
    SNAKEMAKE,
    archives,
    files_under,
    make_project,
    pins,
    snakemake,
    write_overlay,
)

TRAIN_ROWS, TEST_ROWS = 400, 200
PROBS = [f"prob{i}" for i in range(10)]
HOST_SNAKEFILE = """\
configfile: "{config}"


module mnist:
    snakefile:
        "{snakefile}"
    config:
        config{prefix}


use rule * from mnist as mnist_*
"""
# What the default target runs (splits: [test], training here), by where it runs.
HOST_JOBS = {
    "download_archive": 4,
    "tabulate_perceptron_gates": 1,
    "plot_training_curves": 1,
    "summarize_results": 1,
    "all": 1,
}
CLUSTER_JOBS = {
    "convert_to_parquet": 2,
    "train_model": 1,
    "predict": 1,
    "gather_predictions": 1,
    "evaluate_metrics": 1,
    "evaluate_pictures": 1,
}
ENVS = REPO / "workflow/envs"


@pytest.fixture(scope="module")
def data():
    return {"train": random_split(TRAIN_ROWS, seed=3), "test": random_split(TEST_ROWS, seed=4)}


def make_host(folder: Path, mirror, data, prefix: str | None = None) -> Path:
    """Another workflow: a Snakefile importing this repository's workflow/Snakefile as `mnist`."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "Snakefile").write_text(
        HOST_SNAKEFILE.format(
            config=REPO / "config/config.yaml",
            snakefile=REPO / "workflow/Snakefile",
            prefix=f'\n    prefix:\n        "{prefix}"' if prefix else "",
        )
    )
    write_overlay(
        folder,
        [mirror.url],
        pins(archives(data)),
        model={"weights": None, "train": {"epochs": 2, "batch_size": 50}},
    )
    return folder


def dependencies_only_python(folder: Path) -> Path:
    """A Python with the venv's packages but not mnist_pipeline, as a conda env of the pins is.

    A venv whose .pth names the venv's site-packages: that folder joins sys.path, but the .pth
    files in it, among them the editable install of mnist_pipeline, are not read."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True)
    python = folder / "bin" / "python"
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    ours = next(p for p in sys.path if p.endswith("site-packages") and Path(p).is_dir())
    Path(site, "dependencies.pth").write_text(ours + "\n")
    return python


@pytest.fixture(scope="module")
def as_module(tmp_path_factory, mirror, data):
    """A host importing the workflow as is, run through the generic cluster executor, so that
    local rules run on the host and the others are submitted."""
    host = make_host(tmp_path_factory.mktemp("host"), mirror, data)
    submit = REPO / "workflow/profiles/local-cluster/submit.sh"
    result = snakemake(
        host,
        "--executor",
        "cluster-generic",
        "--cluster-generic-submit-cmd",
        str(submit),
        "--jobs",
        "4",
        "--seconds-between-status-checks",
        "1",
    )
    return host, result.stdout + result.stderr


@pytest.fixture(scope="module")
def under_prefix(tmp_path_factory, mirror, data):
    """A host importing the workflow under `prefix: "mnist"`, run by a Python that has the
    dependencies but not the package: the workflow brings its own source."""
    python = dependencies_only_python(tmp_path_factory.mktemp("env"))
    assert subprocess.run([python, "-c", "import mnist_pipeline"]).returncode != 0
    host = make_host(tmp_path_factory.mktemp("host"), mirror, data, prefix="mnist")
    result = subprocess.run(
        [python, "-m", "snakemake", "--cores", "2", "--configfile", "overlay.yaml"],
        cwd=host,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return host


def check_results(results: Path, data) -> None:
    """What the default target makes, read back against the archives the mirror served."""
    images, labels = data["test"]
    table = pq.read_table(results / "parquet/mnist/test.parquet")
    np.testing.assert_array_equal(table["target"].to_numpy(), labels)
    np.testing.assert_array_equal(table["pixel300"].to_numpy(), images.reshape(-1, 784)[:, 300])
    predictions = pd.read_parquet(results / "predictions/mnist/test.parquet")
    np.testing.assert_array_equal(predictions["target"], labels)
    np.testing.assert_array_equal(predictions["predicted"], predictions[PROBS].to_numpy().argmax(1))
    accuracy = json.loads((results / "reports/mnist/test/accuracy.json").read_text())
    correct = int((predictions["target"] == predictions["predicted"]).sum())
    assert (accuracy["correct"], accuracy["total"]) == (correct, TEST_ROWS)
    assert (results / "reports/mnist/training_curves.png").stat().st_size > 0
    assert (results / "perceptron/gates.csv").stat().st_size > 0


def test_a_host_workflow_runs_the_whole_pipeline_as_a_module(as_module, data):
    host, output = as_module
    check_results(host / "results", data)
    assert not any(p.startswith(("workflow/", "config/")) for p in files_under(host))


def test_local_rules_stay_local_under_the_modules_rule_names(as_module):
    _, output = as_module
    for prefix, expected in (("localrule", HOST_JOBS), ("rule", CLUSTER_JOBS)):
        names = re.findall(rf"^{prefix} mnist_(\w+):", output, re.MULTILINE)
        assert {name: names.count(name) for name in set(names)} == expected, prefix
    assert output.count("with external jobid") == sum(CLUSTER_JOBS.values())


def test_a_prefix_moves_every_output_and_changes_none(under_prefix, as_module, data):
    check_results(under_prefix / "mnist/results", data)
    made = [p for p in files_under(under_prefix) if not p.startswith(".snakemake/")]
    assert all(p.startswith("mnist/") for p in made if p not in ("Snakefile", "overlay.yaml"))
    for path in ("predictions/mnist/test.parquet", "reports/mnist/test/accuracy.json"):
        assert (under_prefix / "mnist/results" / path).read_bytes() == (
            as_module[0] / "results" / path
        ).read_bytes(), path


def test_the_report_labels_each_result_by_dataset_split_and_model(as_module):
    host, _ = as_module
    snakemake(host, "--report", "report.zip")
    with zipfile.ZipFile(host / "report.zip") as report:
        html = report.read("report/report.html").decode()
    labels = [json.loads(found) for found in re.findall(r'"labels": (\{[^{}]*\})', html)]
    model = "trained by train_model"
    for output in ("accuracy", "per-class metrics", "confusion matrix", "misclassified"):
        assert {"dataset": "mnist", "split": "test", "model": model, "output": output} in labels
    assert {"dataset": "mnist", "model": model, "output": "training curves"} in labels


def test_cache_shares_downloads_between_checkouts(tmp_path, data):
    (tmp_path / "cache").mkdir()
    env = {**os.environ, "SNAKEMAKE_OUTPUT_CACHE": str(tmp_path / "cache")}
    name = "t10k-images-idx3-ubyte.gz"
    archive = f"results/downloads/mnist/{name}"
    with LoopbackMirror(archives(data)) as mirror:
        for checkout in ("first", "second"):
            project = make_project(tmp_path / checkout)
            write_overlay(project, [mirror.url], pins(archives(data)))
            result = subprocess.run(
                [SNAKEMAKE, archive, "--cache", "--cores", "1", "--configfile", "overlay.yaml"],
                cwd=project,
                env=env,
                capture_output=True,
                text=True,
                timeout=300,
            )
            assert result.returncode == 0, result.stdout + result.stderr
        assert len(mirror.requests_for(name)) == 1
    assert (project / archive).read_bytes() == archives(data)[name]


def test_every_job_runs_the_package_of_its_own_checkout(tmp_path, data):
    """The environment's mnist_pipeline (here an editable install of this repository) is not
    the checkout's: the jobs of a checkout must import the checkout's src/, as its rules do."""
    project = make_project(tmp_path / "checkout")
    source = project / "workflow/src/mnist_pipeline/perceptron.py"
    text = source.read_text()
    assert '"OR": ((0.5, 0.5), -0.2)' in text
    source.write_text(text.replace('"OR": ((0.5, 0.5), -0.2)', '"OR": ((0.5, 0.5), -2.0)'))
    write_overlay(project, ["http://127.0.0.1:9/"], pins(archives(data)))
    snakemake(project, "results/perceptron/gates.csv")
    gates = pd.read_csv(project / "results/perceptron/gates.csv")
    assert list(gates["OR"]) == [0, 0, 0, 0]  # this checkout's OR, which never fires


def load_env_writer():
    spec = importlib.util.spec_from_file_location("pipeline_env", ENVS / "pipeline_env.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_conda_env_holds_exactly_the_pins_of_requirements_lock():
    writer = load_env_writer()
    lock = (REPO / "requirements.lock").read_text()
    text = (ENVS / "pipeline.yaml").read_text()
    assert text == writer.render(lock), "run: python workflow/envs/pipeline_env.py"
    pip = next(d["pip"] for d in yaml.safe_load(text)["dependencies"] if isinstance(d, dict))
    assert pip == writer.pins(lock)
    # Snakemake builds the env from a copy, elsewhere: nothing may point into the checkout.
    assert all(re.fullmatch(r"[A-Za-z0-9._-]+==[A-Za-z0-9.+!-]+", pin) for pin in pip), pip
