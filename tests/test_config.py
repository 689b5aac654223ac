"""The shipped config, its schema, and the messages a wrong config gets."""

import copy
import csv

import pytest
import yaml

from mnist_pipeline.config import (
    ConfigError,
    check_setting,
    load_schema,
    schema_defaults,
    validate_config,
)

from emnist import SPLITS, member
from project import REPO

SCHEMA = load_schema(REPO / "workflow/schemas/config.schema.yaml")
CONFIG = yaml.safe_load((REPO / "config/config.yaml").read_text())
FACTS = REPO.parent / "shared" / "facts" / "archives.tsv"
EMNIST = [f"emnist-{split}" for split in SPLITS]


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
        **{name: ["https://biometrics.nist.gov/cs_links/EMNIST/"] for name in EMNIST},
    }


def with_change(path, value):
    config = copy.deepcopy(CONFIG)
    *parents, last = path.split(".")
    node = config
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    node[int(last) if isinstance(node, list) else last] = value
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
            "unknown key 'cifar' under 'datasets'; allowed: emnist-balanced, emnist-byclass, "
            "emnist-bymerge, emnist-digits, emnist-letters, emnist-mnist, fashion-mnist, kmnist, "
            "mnist",
        ),
    ],
)
def test_a_wrong_value_is_named_with_what_was_expected_and_found(path, value, message):
    with pytest.raises(ConfigError) as error:
        validate_config(with_change(path, value), SCHEMA)
    assert message in str(error.value)
    assert "config/config.yaml" in str(error.value)


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        ("predict.shards", "2", "integer"),
        ("model.train.learning_rate", "0.01", "number"),
        ("batch_size", "100", "integer"),
    ],
)
def test_a_number_given_as_text_says_how_to_give_it(path, value, expected):
    # snakemake --config 'predict={shards: 2}' gives the text '2': the user did write a number.
    with pytest.raises(ConfigError) as error:
        validate_config(with_change(path, value), SCHEMA)
    message = str(error.value)
    assert f"'{path}': expected {expected}; found {value!r} (str): text, not a number" in message
    assert "--config reads values nested in {...} as text" in message


@pytest.mark.parametrize(
    ("classes", "found", "hint"),
    [
        (list(range(10)), "0 (int)", "YAML reads 0 unquoted as a number: write '0', in quotes"),
        (
            ["yes", False, *"abcdefgh"],
            "False (bool)",
            "YAML reads yes, no, on, off, true and false",
        ),
    ],
)
def test_a_class_name_yaml_read_as_a_number_or_boolean_says_to_quote_it(classes, found, hint):
    # classes: [0, 1, ..., 9], or a class named no, written without quotes
    with pytest.raises(ConfigError) as error:
        validate_config(with_change("datasets.mnist.classes", classes), SCHEMA)
    assert f"expected string; found {found}: {hint}" in str(error.value)


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


# --- numbers: whole, finite, bounded ----------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (
            "batch_size",
            100.0,
            "config key 'batch_size': expected integer; found 100.0 (float): write 100, without "
            "a decimal point",
        ),
        ("predict.shards", 2.0, "config key 'predict.shards': expected integer; found 2.0"),
        ("model.train.epochs", 3.0, "config key 'model.train.epochs': expected integer; found"),
        ("download.retries", 2.0, "config key 'download.retries': expected integer; found 2.0"),
        (
            "datasets.mnist.files.test_labels.size",
            4542.0,
            "config key 'datasets.mnist.files.test_labels.size': expected integer; found 4542.0",
        ),
        ("batch_size", float("inf"), "config key 'batch_size': expected integer; found inf"),
        (
            "download.timeout_seconds",
            float("inf"),
            "config key 'download.timeout_seconds': expected a finite number; found inf",
        ),
        (
            "download.backoff_seconds",
            float("inf"),
            "config key 'download.backoff_seconds': expected a finite number; found inf",
        ),
        (
            "download.timeout_seconds",
            float("nan"),
            "config key 'download.timeout_seconds': expected a finite number; found nan",
        ),
        (
            "download.backoff_seconds",
            float("nan"),
            "config key 'download.backoff_seconds': expected a finite number; found nan",
        ),
        (
            "model.train.learning_rate",
            float("nan"),
            "config key 'model.train.learning_rate': expected a finite number; found nan",
        ),
        (
            "model.train.learning_rate",
            float("-inf"),
            "config key 'model.train.learning_rate': expected a finite number; found -inf",
        ),
        (
            "download.timeout_seconds",
            3600.5,
            "config key 'download.timeout_seconds': 3600.5 is greater than the maximum of 3600",
        ),
        (
            "download.backoff_seconds",
            601,
            "config key 'download.backoff_seconds': 601 is greater than the maximum of 600",
        ),
        (
            "download.retries",
            11,
            "config key 'download.retries': 11 is greater than the maximum of 10",
        ),
        (
            "download.timeout_seconds",
            10**400,
            "config key 'download.timeout_seconds': 1000",
        ),
        # Each shard is a job Snakemake plans: 10**6 shards took minutes and gigabytes before
        # any job ran.
        ("predict.shards", 1001, "config key 'predict.shards': 1001 is greater than the maximum"),
        # A batch is held whole, as floats: a job's memory grows with it, to the table's size.
        ("batch_size", 10_001, "config key 'batch_size': 10001 is greater than the maximum of"),
        ("batch_size", 10**30, "config key 'batch_size': 1000000000000000000000000000000 is gre"),
    ],
)
def test_numbers_must_be_whole_finite_and_bounded(path, value, message):
    with pytest.raises(ConfigError) as error:
        validate_config(with_change(path, value), SCHEMA)
    assert message in str(error.value)
    # one line per key: a value of the wrong type gets no further complaints
    assert str(error.value).count(f"'{path}'") == 1, str(error.value)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("download.timeout_seconds", 3600),
        ("download.timeout_seconds", 0.5),
        ("download.backoff_seconds", 600.0),
        ("download.backoff_seconds", 0),
        ("download.retries", 10),
        ("model.train.learning_rate", 1),
        ("batch_size", 10_000),
        ("predict.shards", 1000),
    ],
)
def test_numbers_at_the_bounds_pass_and_keep_their_type(path, value):
    if path == "model.train.learning_rate":
        value = 0.999  # the bound is exclusive
    filled = validate_config(with_change(path, value), SCHEMA)
    *parents, last = path.split(".")
    node = filled
    for key in parents:
        node = node[key]
    assert node[last] == value and type(node[last]) is type(value)


# --- archives of one dataset ------------------------------------------------------------------


def test_two_archives_with_one_name_are_refused_naming_both_keys():
    # the training images under the test images' key, with the test pins: the "test" report
    # would be computed on the training split
    config = with_change(
        "datasets.mnist.files.test_images.name",
        CONFIG["datasets"]["mnist"]["files"]["train_images"]["name"],  # fmt: skip
    )
    with pytest.raises(ConfigError) as error:
        validate_config(config, SCHEMA)
    message = str(error.value)
    assert (
        "config keys 'datasets.mnist.files.train_images.name' and "
        "'datasets.mnist.files.test_images.name' are both 'train-images-idx3-ubyte.gz'"
    ) in message
    assert "Give train_images and test_images their own file names and pins" in message


def test_two_archives_with_one_sha256_are_refused_naming_both_keys():
    files = CONFIG["datasets"]["fashion-mnist"]["files"]
    config = with_change("datasets.fashion-mnist.files.test_labels.sha256", files["train_labels"]
                         ["sha256"])  # fmt: skip
    with pytest.raises(ConfigError) as error:
        validate_config(config, SCHEMA)
    assert (
        "config keys 'datasets.fashion-mnist.files.train_labels.sha256' and "
        "'datasets.fashion-mnist.files.test_labels.sha256' are the same"
    ) in str(error.value)
    assert "Pin each archive with its own SHA-256" in str(error.value)


def test_datasets_may_share_file_names():
    # every shipped dataset names its archives alike; only names within a dataset must differ
    names = {
        d: [f["name"] for f in CONFIG["datasets"][d]["files"].values()] for d in CONFIG["datasets"]
    }
    assert names["mnist"] == names["kmnist"]
    validate_config(CONFIG, SCHEMA)


@pytest.mark.parametrize(
    "name",
    ["..", ".", ".gz", ".hidden.gz", "train-images-idx3-ubyte", "a.tar", "a b.gz", "../x.gz",
     "sub/x.gz", "x.gz/", "x\\y.gz", "", "-x.gz", "x.gz\n"],
)  # fmt: skip
def test_archive_names_the_download_rule_cannot_write_are_refused(name):
    with pytest.raises(ConfigError) as error:
        validate_config(with_change("datasets.kmnist.files.train_labels.name", name), SCHEMA)
    message = str(error.value)
    assert "config key 'datasets.kmnist.files.train_labels.name'" in message
    assert "ending in .gz" in message and "not starting with a dot" in message


# --- free text that reaches params, pictures and the report -----------------------------------

SCRIPT = "</script><script>alert(1)</script>"


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("datasets.mnist.classes.0", SCRIPT),
        ("datasets.mnist.classes.0", "<b>"),
        ("datasets.mnist.classes.0", "$x^2$"),
        ("datasets.mnist.classes.0", "a & b"),
        ("datasets.mnist.classes.0", 'say "hi"'),
        ("datasets.mnist.classes.0", " zero"),
        ("datasets.mnist.classes.0", "zero "),
        ("datasets.mnist.classes.0", ""),
        ("datasets.mnist.classes.0", "x" * 33),
        ("datasets.mnist.mirrors.0", f"https://example.org/{SCRIPT}/"),
        ("datasets.mnist.mirrors.0", 'https://example.org/"onload="x/'),
        ("datasets.mnist.mirrors.0", "https://example.org/a b/"),
        ("datasets.mnist.mirrors.0", "https://example.org/a\\b/"),
        ("model.weights", f"{SCRIPT}.npz"),
        ("model.weights", "it's.npz"),
        ("model.weights", "w{x}.npz"),
        ("model.weights", "w\n.npz"),
    ],
)
def test_markup_in_free_text_is_refused_naming_the_key(path, value):
    with pytest.raises(ConfigError) as error:
        validate_config(with_change(path, value), SCHEMA)
    assert f"config key '{path}'" in str(error.value)
    assert "expected " in str(error.value)


def test_class_names_must_differ():
    config = with_change("datasets.kmnist.classes", ["o"] * 10)
    with pytest.raises(ConfigError, match=r"'datasets\.kmnist\.classes': .* non-unique"):
        validate_config(config, SCHEMA)


def test_class_names_admit_the_shipped_ones_and_letters():
    for name, dataset in CONFIG["datasets"].items():
        validate_config(with_change(f"datasets.{name}.classes", dataset["classes"]), SCHEMA)
    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)] + [
        chr(c) for c in range(ord("A"), ord("Z") + 1)
    ]
    for i in range(0, len(letters), 10):
        chunk = (letters[i : i + 10] + ["x1", "x2", "x3", "x4", "x5", "x6", "x7", "x8"])[:10]
        validate_config(with_change("datasets.mnist.classes", chunk), SCHEMA)


@pytest.mark.parametrize(
    "path",
    ["/data/models/sample_weight.pkl", "weights/my model (2)/w.npz", "/home/josé/w$1#%.npz"],
)
def test_ordinary_weight_paths_pass(path):
    assert validate_config(with_change("model.weights", path), SCHEMA)["model"]["weights"] == path


# --- --set-scatter ----------------------------------------------------------------------------


def test_a_scatter_count_below_one_is_refused_naming_both_ways_to_set_it():
    with pytest.raises(ConfigError) as error:
        validate_config(CONFIG, SCHEMA, set_scatter={"predict": 0})
    message = str(error.value)
    assert "--set-scatter predict=0" in message
    assert "config key 'predict.shards': 0 is less than the minimum of 1" in message


def test_a_scatter_count_above_the_bound_is_refused():
    with pytest.raises(
        ConfigError, match=r"--set-scatter predict=1001 \(which overrides config key "
    ):
        validate_config(CONFIG, SCHEMA, set_scatter={"predict": 1001})


def test_an_unknown_scatter_name_is_refused():
    with pytest.raises(ConfigError, match=r"--set-scatter predcit=3: .* has: predict"):
        validate_config(CONFIG, SCHEMA, set_scatter={"predcit": 3})


def test_a_good_scatter_count_passes():
    assert validate_config(CONFIG, SCHEMA, set_scatter={"predict": 4}) == CONFIG


# --- checking one section outside the workflow ------------------------------------------------


def test_check_setting_names_the_full_key():
    check_setting("model.train", {"seed": 1, "epochs": 2, "batch_size": 3, "learning_rate": 0.1})
    with pytest.raises(ConfigError, match=r"config key 'model\.train\.epochs': 0 is less"):
        check_setting("model.train", {"epochs": 0})
    with pytest.raises(ConfigError, match=r"config key 'predict\.shards': expected integer"):
        check_setting("predict.shards", 2.0)
    with pytest.raises(KeyError, match="no key 'model.tarin'"):
        check_setting("model.tarin", {})


def test_schema_defaults_are_the_declared_ones():
    assert schema_defaults("model.train") == validate_config(CONFIG, SCHEMA)["model"]["train"]
    assert schema_defaults("download") == {
        "timeout_seconds": 30,
        "retries": 3,
        "backoff_seconds": 1.0,
    }


# --- EMNIST: datasets read from one zip -------------------------------------------------------

# The zip NIST publishes, as TensorFlow Datasets pins it (torchvision pins its MD5,
# 58c8d27c78d21e728a6bc7b3cc06412e); it is not on this machine, so the pins are checked here.
EMNIST_ZIP = {
    "name": "gzip.zip",
    "size": 561_753_746,
    "sha256": "fb9bb67e33772a9cc0b895e4ecf36d2cf35be8b709693c3564cea2a019fcda8e",
}
DIGITS = [str(d) for d in range(10)]
UPPER = [chr(c) for c in range(ord("A"), ord("Z") + 1)]
LOWER = [chr(c) for c in range(ord("a"), ord("z") + 1)]
# The paper's emnist-<split>-mapping.txt, as names; bymerge and balanced merge the letters
# whose upper and lower case look alike, keeping a b d e f g h n q r t.
EMNIST_CLASSES = {
    "emnist-balanced": DIGITS + UPPER + list("abdefghnqrt"),
    "emnist-byclass": DIGITS + UPPER + LOWER,
    "emnist-bymerge": DIGITS + UPPER + list("abdefghnqrt"),
    "emnist-digits": DIGITS,
    "emnist-letters": LOWER,
    "emnist-mnist": DIGITS,
}


@pytest.mark.parametrize("name", EMNIST)
def test_emnist_datasets_name_nists_zip_with_its_published_pins(name):
    dataset = CONFIG["datasets"][name]
    split = name.removeprefix("emnist-")
    assert dataset["bundle"] == EMNIST_ZIP
    assert dataset["transposed"] is True
    assert dataset["first_label"] == (1 if split == "letters" else 0)
    assert dataset["classes"] == EMNIST_CLASSES[name]
    assert {key: entry["name"] for key, entry in dataset["files"].items()} == {
        f"{part}_{kind}": member(split, part, kind)
        for part in ("train", "test")
        for kind in ("images", "labels")
    }
    assert len(dataset["classes"]) == SPLITS[split][0]


def test_the_classic_datasets_are_upright_and_labelled_from_0():
    for name in ("mnist", "fashion-mnist", "kmnist"):
        dataset = CONFIG["datasets"][name]
        assert (dataset["transposed"], dataset["first_label"], "bundle" in dataset) == (
            False,
            0,
            False,
        )


def test_defaults_leave_a_dataset_upright_labelled_from_0_without_a_bundle():
    kmnist = dict(CONFIG["datasets"]["kmnist"])
    del kmnist["transposed"], kmnist["first_label"]
    filled = validate_config({"dataset": "kmnist", "datasets": {"kmnist": kmnist}}, SCHEMA)
    assert filled["datasets"]["kmnist"] == CONFIG["datasets"]["kmnist"]


@pytest.mark.parametrize("field", ["size", "sha256"])
def test_datasets_naming_one_bundle_must_pin_it_alike_naming_both_keys(field):
    config = with_change(
        f"datasets.emnist-letters.bundle.{field}", 1 if field == "size" else "0" * 64
    )
    with pytest.raises(ConfigError) as error:
        validate_config(config, SCHEMA)
    message = str(error.value)
    assert (
        "config keys 'datasets.emnist-balanced.bundle' and 'datasets.emnist-letters.bundle' "
        f"both name 'gzip.zip' but pin it with different {field}"
    ) in message
    assert "Give both the same size and sha256" in message
    assert message.count("both name 'gzip.zip'") == 1  # only the dataset that differs


def test_datasets_may_name_different_bundles():
    letters = {**EMNIST_ZIP, "name": "letters.zip", "size": 5}
    validate_config(with_change("datasets.emnist-letters.bundle", letters), SCHEMA)


def test_members_of_a_bundle_need_no_pins_but_may_have_them():
    entry = {"name": member("letters", "test", "labels"), "size": 9, "sha256": "a" * 64}
    validate_config(with_change("datasets.emnist-letters.files.test_labels", entry), SCHEMA)


@pytest.mark.parametrize("field", ["size", "sha256"])
def test_a_download_without_its_pins_is_refused(field):
    entry = dict(CONFIG["datasets"]["kmnist"]["files"]["test_images"])
    del entry[field]
    with pytest.raises(ConfigError) as error:
        validate_config(with_change("datasets.kmnist.files.test_images", entry), SCHEMA)
    assert (
        f"config key 'datasets.kmnist.files.test_images': '{field}' is a required property"
    ) in str(error.value)


@pytest.mark.parametrize(
    "name",
    ["../x.gz", "/gzip/x.gz", "gzip/../x.gz", "gzip/.x.gz", "gzip//x.gz", "gzip/x.zip",
     "gzip/x.gz/", "gzip\\x.gz", "gzip/x y.gz", "gzip/x.gz\n", ""],
)  # fmt: skip
def test_member_paths_that_leave_the_zip_or_are_odd_are_refused(name):
    with pytest.raises(ConfigError) as error:
        validate_config(with_change("datasets.emnist-digits.files.train_labels.name", name), SCHEMA)
    message = str(error.value)
    assert "config key 'datasets.emnist-digits.files.train_labels.name'" in message
    assert "the member's path inside the bundle's zip" in message
    assert message.count("train_labels.name") == 1  # one message, not one per rule


def test_member_paths_are_admitted_for_datasets_with_a_bundle_only():
    path = "gzip/sub.dir/emnist_x+1.gz"
    validate_config(with_change("datasets.emnist-digits.files.train_labels.name", path), SCHEMA)
    with pytest.raises(ConfigError, match="ending in .gz, made of letters"):
        validate_config(with_change("datasets.mnist.files.train_labels.name", path), SCHEMA)


@pytest.mark.parametrize("name", ["gzip.gz", "../gzip.zip", "sub/gzip.zip", ".zip", "g z.zip"])
def test_bundle_names_the_download_rule_cannot_write_are_refused(name):
    with pytest.raises(ConfigError) as error:
        validate_config(with_change("datasets.emnist-mnist.bundle.name", name), SCHEMA)
    assert "config key 'datasets.emnist-mnist.bundle.name'" in str(error.value)
    assert "ending in .zip" in str(error.value)


@pytest.mark.parametrize(
    ("count", "message"),
    [(1, "is too short"), (63, "is too long")],
)
def test_class_counts_outside_2_to_62_are_refused(count, message):
    names = [f"c{i}" for i in range(count)]
    with pytest.raises(ConfigError, match=rf"'datasets\.kmnist\.classes': .* {message}"):
        validate_config(with_change("datasets.kmnist.classes", names), SCHEMA)


def test_2_and_62_classes_pass():
    for count in (2, 62):
        names = [f"c{i}" for i in range(count)]
        validate_config(with_change("datasets.kmnist.classes", names), SCHEMA)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("first_label", -1, "-1 is less than the minimum of 0"),
        ("first_label", 256, "256 is greater than the maximum of 255"),
        ("first_label", 1.0, "expected integer; found 1.0"),
        ("transposed", "yes", "expected boolean; found 'yes'"),
    ],
)
def test_label_numbering_and_orientation_are_checked(key, value, message):
    with pytest.raises(ConfigError) as error:
        validate_config(with_change(f"datasets.emnist-letters.{key}", value), SCHEMA)
    assert f"config key 'datasets.emnist-letters.{key}': {message}" in str(error.value)
