"""datasets.<name>.mirrors_note: what the config says when every mirror of a dataset fails (KMNIST's
only host is gone), in the error, with the way to a private mirror."""

import copy
import socket

import pytest
import yaml

from mnist_pipeline.config import ConfigError, load_schema, validate_config
from mnist_pipeline.download import DownloadError, fetch_file

from project import REPO, files_under, make_project, snakemake, write_overlay

SCHEMA = load_schema(REPO / "workflow/schemas/config.schema.yaml")
CONFIG = yaml.safe_load((REPO / "config/config.yaml").read_text())


def under(project, folder):
    path = project / folder
    return files_under(path) if path.exists() else []


@pytest.mark.parametrize(
    "note", ["see <a href=x>here</a>", "a {wildcard}", 'say "hi"', "one\ntwo", "", "x" * 1001]
)
def test_a_note_that_is_not_plain_text_is_refused_naming_the_key(note):
    config = copy.deepcopy(CONFIG)
    config["datasets"]["kmnist"]["mirrors_note"] = note
    with pytest.raises(ConfigError, match="config key 'datasets.kmnist.mirrors_note'"):
        validate_config(config, SCHEMA)


def test_a_dataset_without_a_note_has_none():
    config = copy.deepcopy(CONFIG)
    del config["datasets"]["mnist"]["mirrors_note"]
    assert validate_config(config, SCHEMA)["datasets"]["mnist"]["mirrors_note"] is None


@pytest.mark.parametrize("note", [None, "the host is gone; ask a colleague for the archives"])
def test_the_note_stands_between_the_urls_tried_and_what_to_do(tmp_path, note):
    with socket.socket() as closed:  # bound, never listening: connections are refused
        closed.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{closed.getsockname()[1]}/"
        with pytest.raises(DownloadError) as error:
            fetch_file(
                "a.gz", [url], 10, "0" * 64, tmp_path / "a.gz", config_key="x", note=note, retries=1
            )
    tried, _, what_to_do = str(error.value).partition("\nWhat to do: check x.mirrors")
    assert tried.startswith("Could not download a.gz (10 bytes") and what_to_do
    if note:
        assert tried.endswith(f"\nAbout these mirrors: {note}")
    else:
        assert "About these mirrors" not in tried
    assert list(tmp_path.iterdir()) == []


def test_when_every_kmnist_mirror_fails_the_error_gives_the_configs_note_and_the_way_out(
    tmp_path,
):
    note = CONFIG["datasets"]["kmnist"]["mirrors_note"]
    assert "unreachable" in note and "private mirror" in note
    project = make_project(tmp_path / "project")
    with socket.socket() as closed:  # bound, never listening: connections are refused
        closed.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{closed.getsockname()[1]}/kmnist/"
        files = CONFIG["datasets"]["kmnist"]["files"]
        write_overlay(project, [url], files, for_dataset="kmnist", dataset="kmnist")
        result = snakemake(project, "results/parquet/kmnist/test.parquet", check=False)
    assert result.returncode != 0
    for text in (
        f"{url}t10k-labels-idx1-ubyte.gz: connection failed: connection refused",
        f"About these mirrors: {note}\nWhat to do: check datasets.kmnist.mirrors",
        "snakemake --cores 4 --configfile my-mirror.yaml",
        '"A private mirror"',
    ):
        assert text in result.stderr, result.stderr
    log = project / "results/logs/download_archive/kmnist/t10k-labels-idx1-ubyte.gz.log"
    assert note in log.read_text()
    assert [f for f in under(project, "results") if not f.startswith("logs/")] == []
