"""A disk that fills up mid-run: the job that could not write says which file and what to do,
nothing half-written stands under a final name, and once there is room a plain rerun finishes
with the outputs of a run that never ran short.

The project runs on a small tmpfs, mounted for the test (root only) and filled all but a share
of what a whole run writes.
"""

import os
import re
import subprocess

import pytest

from idxgen import random_split
from project import (
    archives,
    files_under,
    make_project,
    pins,
    random_weights,
    snakemake,
    write_overlay,
)


@pytest.fixture(scope="module")
def data():
    return {"train": random_split(20, seed=31), "test": random_split(300, seed=32)}


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    return random_weights(tmp_path_factory.mktemp("weights") / "weights.npz", seed=33)


def project_in(folder, mirror, data, weights):
    project = make_project(folder)
    write_overlay(
        project,
        [mirror.url],
        pins(archives(data)),
        splits=["test"],
        model={"weights": str(weights)},
        predict={"shards": 2},
    )
    return project


def outputs(project):
    """Every file under results/ but the logs and benchmarks, by path."""
    results = project / "results"
    return {
        path: (results / path).read_bytes()
        for path in files_under(results)
        if not path.startswith(("logs/", "benchmarks/"))
    }


@pytest.fixture(scope="module")
def reference(tmp_path_factory, mirror, data, weights):
    """(outputs, bytes written) of the run on a disk with room."""
    project = project_in(tmp_path_factory.mktemp("reference"), mirror, data, weights)
    snakemake(project)
    written = sum(
        (project / folder / path).stat().st_size
        for folder in ("results", ".snakemake")
        for path in files_under(project / folder)
    )
    return outputs(project), written


@pytest.fixture
def small_disk(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(disk)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", str(disk)], check=True)


def fill(disk, leave: int):
    """Fill `disk` with one file, all but `leave` bytes; return the file."""
    filler = disk / "filler"
    stat = os.statvfs(disk)
    size = max(stat.f_bavail * stat.f_frsize - leave, 0)
    with open(filler, "wb") as file:
        for _ in range(size // (1 << 20)):
            file.write(bytes(1 << 20))
        file.write(bytes(size % (1 << 20)))
    return filler


# Out of room downloading, or converting. (Later, with jobs side by side, Snakemake itself may
# find no room to record a finished job: it then asks for --rerun-incomplete.)
@pytest.mark.parametrize("share", [0.1, 0.4])
def test_a_full_disk_names_the_file_keeps_nothing_partial_and_a_rerun_finishes(
    small_disk, mirror, data, weights, reference, share
):
    expected, written = reference
    project = project_in(small_disk / "project", mirror, data, weights)
    filler = fill(small_disk, leave=int(written * share))

    result = snakemake(project, check=False)
    assert result.returncode != 0
    message = re.search(r"NoSpaceError: (results/\S+): no space left to write it", result.stderr)
    assert message, result.stderr
    assert (
        f"the file system that holds {os.path.dirname(message[1])} is full (or over quota). "
        "Free some space there and rerun." in result.stderr
    )
    assert not [path for path in files_under(project) if path.endswith(".part")]
    # What was made is what a run with room makes (the shards, temporary, are not kept there).
    made = outputs(project)
    assert message[1].removeprefix("results/") not in made
    kept = {path: data for path, data in made.items() if "/shards/" not in path}
    assert kept == {path: expected[path] for path in kept}

    filler.unlink()
    snakemake(project)
    assert outputs(project) == expected
