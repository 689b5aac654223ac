"""The shipped config, its schema, and the messages a wrong config gets."""

import copy
import csv

import pytest
import yaml

from mnist_pipeline.config import ConfigError, load_schema, validate_config

from project import REPO

SCHEMA = load_schema(REPO / "workflow/schemas/config.schema.yaml")
CONFIG = yaml.safe_load((REPO / "config/config.yaml").read_text())
FACTS = REPO.parent / "shared" / "facts" / "archives.tsv"


def test_the_shipped_config_is_valid_and_already_complete():
    assert validate_config(CONFIG, SCHEMA) == CONFIG


def test_defaults_fill_what_an_overlay_leaves_out():
    minimal = {"dataset": "kmnist", "datasets": {"kmnist": CONFIG["datasets"]["kmnist"]}}
    filled = validate_config(minimal, SCHEMA)
    assert filled["batch_size"] == 100 and filled["splits"] == ["test"]
    assert filled["model"] == {
        "weights": None,
        "train": {"seed": 0, "epochs": 10, "batch_size": 32, "learning_rate": 0.003},
    }
    assert minimal == {"dataset": "kmnist", "datasets": {"kmnist": CONFIG["datasets"]["kmnist"]}}


def test_every_schema_key_is_described():
    def walk(node, path):
        if isinstance(node, dict):
            for name, sub in node.get("properties", {}).items():
                assert "description" in sub, f"{path}.{name} has no description"
                walk(sub, f"{path}.{name}")
            for name, sub in node.get("$defs", {}).items():
                walk(sub, f"$defs.{name}")

    walk(SCHEMA, "config")


@pytest.mark.skipif(not FACTS.exists(), reason=f"{FACTS} is not on this machine")
def test_pins_and_file_names_match_the_published_archives():
    for row in csv.DictReader(FACTS.open(), delimiter="\t"):
        files = CONFIG["datasets"][row["dataset"]]["files"].values()
        entry = next(e for e in files if e["name"] == row["file"])
        assert (entry["size"], entry["sha256"]) == (int(row["bytes"]), row["sha256"]), row["file"]


def test_default_mirrors_are_the_public_ones_in_order():
    mirrors = {name: d["mirrors"] for name, d in CONFIG["datasets"].items()}
    assert mirrors == {
        "mnist": [
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
        ],
        "fashion-mnist": [
            "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
            "https://storage.googleapis.com/tensorflow/tf-keras-datasets/",
        ],
        "kmnist": ["http://codh.rois.ac.jp/kmnist/dataset/kmnist/"],
    }


def with_change(path, value):
    config = copy.deepcopy(CONFIG)
    *parents, last = path.split(".")
    node = config
    for key in parents:
        node = node[key]
    node[last] = value
    return config


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("batch_size", "100", "config key 'batch_size': expected integer; found '100' (str)"),
        ("batch_size", -1, "config key 'batch_size': -1 is less than the minimum of 1"),
        ("splits", ["validation"], "config key 'splits.0': expected one of train, test"),
        ("model.weights", 3, "config key 'model.weights': expected string or null; found 3"),
        (
            "model.train.learning_rate",
            1.5,
            "config key 'model.train.learning_rate': 1.5 is greater than or equal to the "
            "maximum of 1",
        ),
        (
            "datasets.mnist.files.test_labels.sha256",
            "abc",
            "config key 'datasets.mnist.files.test_labels.sha256': 'abc' does not match",
        ),
        (
            "datasets.mnist.files.train_images.extra",
            1,
            "unknown key 'extra' under 'datasets.mnist.files.train_images'; "
            "allowed: name, sha256, size",
        ),
        (
            "datasets.cifar",
            {},
            "unknown key 'cifar' under 'datasets'; allowed: fashion-mnist, kmnist, mnist",
        ),
    ],
)
def test_a_wrong_value_is_named_with_what_was_expected_and_found(path, value, message):
    with pytest.raises(ConfigError) as error:
        validate_config(with_change(path, value), SCHEMA)
    assert message in str(error.value)
    assert "config/config.yaml" in str(error.value)


def test_every_problem_is_listed_at_once():
    config = with_change("batch_size", "x")
    config["dataset"] = "emnist"
    with pytest.raises(ConfigError) as error:
        validate_config(config, SCHEMA)
    assert "'batch_size'" in str(error.value) and "'dataset'" in str(error.value)


def test_the_chosen_dataset_must_have_an_entry():
    config = {"dataset": "kmnist", "datasets": {"mnist": CONFIG["datasets"]["mnist"]}}
    with pytest.raises(ConfigError, match=r"'dataset' is 'kmnist', but 'datasets' has no entry"):
        validate_config(config, SCHEMA)
