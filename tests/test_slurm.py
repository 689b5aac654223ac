"""The whole pipeline on a real single-node Slurm, through the shipped profile, as the README says.

Needs root and Debian's Slurm packages, installed here when missing (tests/slurm_cluster.py);
elsewhere every test skips and says why.
"""

import json
import os
import re
import shutil
import subprocess
import time
from contextlib import ExitStack

import pyarrow.parquet as pq
import pytest

from idxgen import random_split
from mirror import LoopbackMirror
from project import SNAKEMAKE, archives, make_project, pins, snakemake, write_overlay
from slurm_cluster import SingleNodeSlurm, SlurmUnavailable, install_packages, install_plugins

TRAIN_ROWS, TEST_ROWS = 700, 300
SLURM_JOBS = {
    "convert_to_parquet": 2,
    "train_model": 1,
    "predict": 2,
    "gather_predictions": 2,
    "evaluate_metrics": 2,
    "evaluate_pictures": 2,
}
HOST_JOBS = {
    "download_archive": 4,
    "tabulate_perceptron_gates": 1,
    "plot_training_curves": 1,
    "summarize_results": 1,
    "all": 1,
}
SUBMITTED = re.compile(r"submitted with SLURM jobid (\d+) \(log: \S*/slurm_logs/rule_(\w+)/")
COMPARED = [
    f"results/{path}"
    for split in ("train", "test")
    for path in (
        f"predictions/mnist/{split}.parquet",
        f"predictions/mnist/{split}.csv",
        f"reports/mnist/{split}/accuracy.json",
        f"reports/mnist/{split}/confusion_matrix.csv",
    )
]


def on_slurm(project, env, *args, timeout=300) -> subprocess.CompletedProcess:
    """What README.md's "Scaling out" has a user run, and the overlay of the loopback mirror."""
    return subprocess.run(
        [SNAKEMAKE, *args, "--profile", "workflow/profiles/slurm", "--configfile", "overlay.yaml"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def slurm():
    with ExitStack() as stack:
        try:
            install_packages()
            plugins = install_plugins()
            cluster = stack.enter_context(SingleNodeSlurm())
        except SlurmUnavailable as error:
            pytest.skip(f"no Slurm to run on: {error}")
        pythonpath = os.pathsep.join(filter(None, [str(plugins), os.environ.get("PYTHONPATH")]))
        yield cluster, {**cluster.env, "PYTHONPATH": pythonpath}


@pytest.fixture(scope="module")
def runs(slurm, tmp_path_factory):
    """The same project run locally, then through the Slurm profile."""
    cluster, env = slurm
    data = {"train": random_split(TRAIN_ROWS, seed=1), "test": random_split(TEST_ROWS, seed=2)}
    with LoopbackMirror(archives(data)) as mirror:
        projects = {}
        for name in ("slurm", "local"):
            projects[name] = make_project(tmp_path_factory.mktemp(name))
            write_overlay(
                projects[name],
                [mirror.url],
                pins(archives(data)),
                splits=["train", "test"],
                model={"weights": None, "train": {"epochs": 2, "batch_size": 50}},
            )
        snakemake(projects["local"])
        started = time.monotonic()
        run = on_slurm(projects["slurm"], env)
    output = run.stdout + run.stderr
    seconds = time.monotonic() - started
    assert run.returncode == 0, f"the Slurm run failed after {seconds:.0f} s:\n{output}"
    return projects["slurm"], projects["local"], output, cluster


def test_the_slurm_run_makes_what_a_local_run_makes(runs):
    on_slurm, local, _, _ = runs
    for path in COMPARED:
        made, expected = on_slurm / path, local / path
        if path.endswith(".parquet"):
            assert pq.read_table(made).equals(pq.read_table(expected)), path
        elif path.endswith(".json"):
            assert json.loads(made.read_text()) == json.loads(expected.read_text()), path
        else:
            assert made.read_text() == expected.read_text(), path


def test_slurm_runs_the_heavy_jobs_and_the_host_the_small_ones(runs):
    on_slurm, _, output, cluster = runs
    submitted = SUBMITTED.findall(output)
    rules = [rule for _, rule in submitted]
    assert {rule: rules.count(rule) for rule in set(rules)} == SLURM_JOBS
    for rule, count in HOST_JOBS.items():
        assert output.count(f"localrule {rule}:") == count, rule
    # Each submitted job ran to completion in Slurm, in the project's folder.
    finished = dict(re.findall(r"JobId=(\d+) .*?JobState=(\w+)", cluster.log("jobcomp.txt")))
    assert {job: finished.get(job) for job, _ in submitted} == {
        job: "COMPLETED" for job, _ in submitted
    }
    assert cluster.log("jobcomp.txt").count(f"WorkDir={on_slurm} ") == len(submitted)


def test_a_job_that_fails_in_slurm_fails_the_run_and_names_its_log(runs, slurm, tmp_path):
    project = shutil.copytree(runs[0], tmp_path / "project", symlinks=True)
    (project / "results/model/mnist/weights.npz").write_bytes(b"not weights")
    target = "results/predictions/mnist/test.parquet"
    # No retry: the profile's one retry would only fail the same way again.
    run = on_slurm(project, slurm[1], target, "--forcerun", "predict", "--retries", "0")
    output = run.stdout + run.stderr
    assert run.returncode != 0, output
    assert "Error in rule predict" in output and "SLURM status is: 'FAILED'" in output, output
    log = project / "results/logs/predict/mnist/test/1-of-1.log"
    assert str(log.relative_to(project)) in output
    assert "weights.npz" in log.read_text(), log.read_text()
