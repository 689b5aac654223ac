"""A failing job: the full traceback in its log file, one line on the console, exit status 1."""

import logging
import os

import pytest

from mnist_pipeline.rulelog import rule_log
from mnist_pipeline.weights import WeightsError

from idxgen import random_split
from mirror import LoopbackMirror
from project import archives, files_under, make_project, pins, snakemake, write_overlay


def test_messages_go_to_the_file_and_the_console(tmp_path, capsys):
    log = tmp_path / "job.log"
    with rule_log(str(log)) as logger:
        logger.info("%d rows", 40)
        logging.getLogger("mnist_pipeline.tables").info("from a module of the package")
    assert log.read_text().count(" INFO ") == 2
    assert "INFO 40 rows" in log.read_text() and "from a module" in log.read_text()
    assert capsys.readouterr().err == log.read_text()
    assert not logging.getLogger("mnist_pipeline").handlers


def fail_inside_rule_log(log):
    def inner():
        raise WeightsError("w.npz: key 'W1' has shape (1,), expected (784, 50)")

    with rule_log(str(log)):
        inner()


def test_an_error_is_one_line_on_the_console_and_a_traceback_in_the_file(tmp_path, capsys):
    log = tmp_path / "job.log"
    with pytest.raises(SystemExit) as exit_:
        fail_inside_rule_log(log)
    assert exit_.value.code == 1
    assert isinstance(exit_.value.__cause__, WeightsError)
    short = "ERROR WeightsError: w.npz: key 'W1' has shape (1,), expected (784, 50)"
    [line] = capsys.readouterr().err.splitlines()
    assert line.endswith(short)
    text = log.read_text()
    assert short in text.splitlines()[0]
    assert "Traceback (most recent call last):" in text
    assert "in inner" in text and "in fail_inside_rule_log" in text
    assert not logging.getLogger("mnist_pipeline").handlers


def test_a_failing_rule_logs_its_traceback_and_shows_one_line(tmp_path):
    project = make_project(tmp_path / "project")
    weights = project / "weights.npz"
    weights.write_bytes(b"PK\x03\x04 a zip cut short")
    files = archives({"train": random_split(30, seed=7), "test": random_split(20, seed=8)})
    with LoopbackMirror(files) as mirror:
        write_overlay(project, [mirror.url], pins(files), model={"weights": str(weights)})
        result = snakemake(project, "results/predictions/mnist/test.parquet", check=False)
    assert result.returncode != 0

    short = f"ERROR WeightsError: cannot read {weights} as an .npz archive of numeric arrays"
    [console] = [line for line in result.stderr.splitlines() if "WeightsError" in line]
    assert short in console and "BadZipFile: File is not a zip file" in console
    assert "Traceback" not in result.stderr

    log = (project / "results/logs/predict/mnist/test/1-of-1.log").read_text()
    assert short in log
    assert "Traceback (most recent call last):" in log
    assert 'raise BadZipFile("File is not a zip file")' in log  # the cause's traceback too
    assert "in load_weights" in log
    assert not [f for f in files_under(project / "results") if f.startswith("predictions/")]


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full on this system")
def test_a_log_file_that_cannot_be_written_ends_the_job_with_one_line(capsys):
    """/dev/full answers every write as a full disk does."""
    with pytest.raises(SystemExit) as exit_, rule_log("/dev/full") as log:
        log.info("a line the log file cannot take")
    assert exit_.value.code == 1
    err = capsys.readouterr().err
    assert "Logging error" not in err and "Traceback" not in err
    assert err.splitlines()[-1].endswith(
        "ERROR NoSpaceError: /dev/full: no space left to write it ([Errno 28] No space left on "
        "device): the file system that holds /dev is full (or over quota). Free some space "
        "there and rerun."
    )
    assert not logging.getLogger("mnist_pipeline").handlers
