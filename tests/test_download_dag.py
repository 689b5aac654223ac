"""The whole DAG against a mirror that drips its bytes: the run moves on to the next mirror."""

import time

import numpy as np
import pyarrow.parquet as pq

from idxgen import random_split
from mirror import LoopbackMirror
from project import ARCHIVE_NAMES, archives, make_project, pins, snakemake, write_overlay


def test_a_dripping_first_mirror_is_abandoned_at_its_deadline_for_the_second(tmp_path):
    data = {"train": random_split(20, seed=5), "test": random_split(30, seed=6)}
    files = archives(data)
    test_archives = [ARCHIVE_NAMES["test_images"], ARCHIVE_NAMES["test_labels"]]
    project = make_project(tmp_path / "project")
    with LoopbackMirror({**files, **{f"slow/{n}": b for n, b in files.items()}}) as mirror:
        for name in test_archives:
            mirror.script(f"slow/{name}", "drip:0.2")  # ~5 bytes/s: hours for one archive
        # download.timeout_seconds is 2: each deadline is 2 s + the archive's size at 100 kB/s.
        write_overlay(project, [mirror.url + "slow/", mirror.url], pins(files))
        start = time.monotonic()
        snakemake(project, "results/parquet/mnist/test.parquet")
        elapsed = time.monotonic() - start
    assert elapsed < 60, f"the run took {elapsed:.0f} s"
    for name in test_archives:
        assert (project / "results/downloads/mnist" / name).read_bytes() == files[name]
        log = (project / "results/logs/download_archive/mnist" / f"{name}.log").read_text()
        assert (
            f"GET {mirror.url}slow/{name} (attempt 1/2): gave up at the attempt's deadline" in log
        )
        assert f"+ {len(files[name])} bytes at 100,000 bytes/s)" in log
        assert f"GET {mirror.url}{name} (attempt 1/2): ok" in log
        assert len(mirror.requests_for(f"slow/{name}")) == 1
    images, labels = data["test"]
    table = pq.read_table(project / "results/parquet/mnist/test.parquet")
    np.testing.assert_array_equal(table["target"].to_numpy(), labels)
    pixels = np.stack([table[f"pixel{i}"].to_numpy() for i in range(784)], axis=1)
    np.testing.assert_array_equal(pixels, images.reshape(len(images), 784))
