from pathlib import Path

from mnist_pipeline.config import (
    BOOK_WEIGHTS,
    ConfigError,
    given_as_text,
    load_schema,
    validate_config,
)
from mnist_pipeline.digest import sha256_of

# Checked before any job is planned: the config, and --set-scatter counts, which Snakemake
# keeps apart from the config and would otherwise take as given (0 makes empty predictions).
config.update(
    validate_config(
        config,
        load_schema(workflow.source_path("../schemas/config.schema.yaml")),
        set_scatter=workflow.resource_settings.overwrite_scatter,
    )
)

if (
    config["model"]["weights"] not in (None, BOOK_WEIGHTS)
    and not Path(config["model"]["weights"]).is_file()
):
    # 'null' from snakemake --config 'model={weights: null}' is text, not null
    weights_as_text = given_as_text(config["model"]["weights"], ["null"])
    raise ConfigError(
        f"config key 'model.weights': {config['model']['weights']} is not a file"
        + (f"; {config['model']['weights']!r} is {weights_as_text}" if weights_as_text else "")
        + f". Give the path of a .pkl or an .npz with W1 b1 W2 b2 W3 b3, {BOOK_WEIGHTS} to "
        "download the book's weights (models.book), or null to train a model here."
    )

SPLITS = ["train", "test"]
ARCHIVE_KINDS = ["images", "labels"]


wildcard_constraints:
    dataset="|".join(config["datasets"]),
    split="|".join(SPLITS),


scattergather:
    predict=config["predict"]["shards"],


def archive(dataset, split, kind):
    """The config entry {name, size, sha256} of one archive."""
    return config["datasets"][dataset]["files"][f"{split}_{kind}"]


def archive_entry(wildcards):
    """The config entry of the archive a download_archive job fetches, found by its file name."""
    files = config["datasets"][wildcards.dataset]["files"]
    for entry in files.values():
        if entry["name"] == wildcards.archive:
            return entry
    raise ValueError(
        f"results/downloads/{wildcards.dataset}/{wildcards.archive}: no archive of that name in "
        f"datasets.{wildcards.dataset}.files (it has {', '.join(e['name'] for e in files.values())})"
    )


# How a download is fetched: from where, and how patiently. Each of these params takes `output`,
# so Snakemake counts it as derived from the output and leaves it out of its params trigger: a
# file verified against its pins (the entry param, which does trigger) is the same file from any
# mirror, and fetching it again would rerun everything made from it.
def archive_mirrors(wildcards, output):
    return config["datasets"][wildcards.dataset]["mirrors"]


def archive_note(wildcards, output):
    return config["datasets"][wildcards.dataset]["mirrors_note"]


def download_setting(key):
    """The param giving download.<key> to a download job."""

    def setting(wildcards, output):
        return config["download"][key]

    return setting


def archive_keys(wildcards):
    """The config keys a download_archive job's messages name."""
    dataset = f"datasets.{wildcards.dataset}"
    return {"config_key": dataset, "pins_key": f"{dataset}.files"}


def split_archives(wildcards):
    """What convert_to_parquet reads: the split's two archives, or the zip that holds them."""
    bundle = config["datasets"][wildcards.dataset].get("bundle")
    if bundle:
        return {"bundle": f"results/downloads/bundles/{bundle['name']}"}
    return {
        kind: f"results/downloads/{wildcards.dataset}/{archive(wildcards.dataset, wildcards.split, kind)['name']}"
        for kind in ARCHIVE_KINDS
    }


def archive_pins(dataset, split):
    """The pins of a split's archives (a member of a bundle may have none)."""
    return {
        kind: archive(dataset, split, kind)["sha256"]
        for kind in ARCHIVE_KINDS
        if "sha256" in archive(dataset, split, kind)
    }


def split_sha256(wildcards):
    """The pins of the split's archives, which its table records."""
    return archive_pins(wildcards.dataset, wildcards.split)


def tables_sha256(wildcards):
    """The pins of the archives of each split's table, by split (what train_model reads)."""
    return {split: archive_pins(wildcards.dataset, split) for split in SPLITS}


def split_bundle(wildcards):
    """For a dataset with a bundle: the zip's pins and the members the split reads, each with
    its config key (for messages); None for a dataset whose archives are downloaded."""
    key = f"datasets.{wildcards.dataset}"
    bundle = config["datasets"][wildcards.dataset].get("bundle")
    if not bundle:
        return None
    members = {}
    for kind in ARCHIVE_KINDS:
        entry = archive(wildcards.dataset, wildcards.split, kind)
        members[kind] = {
            "key": f"{key}.files.{wildcards.split}_{kind}",
            **{field: entry[field] for field in ("name", "size") if field in entry},
        }
    return {**bundle, "key": f"{key}.bundle", "members": members}


def archive_layout(wildcards):
    """How the dataset's archives hold images and labels: transposed or upright, and the label
    of each of its K classes (first_label..first_label+K-1)."""
    dataset = config["datasets"][wildcards.dataset]
    return {
        "transposed": dataset["transposed"],
        "classes": len(dataset["classes"]),
        "first_label": dataset["first_label"],
    }


def class_count(wildcards):
    """K, the dataset's number of classes: the network's outputs."""
    return len(config["datasets"][wildcards.dataset]["classes"])


def bundle_datasets(wildcards):
    """The datasets naming the bundle file a download_bundle job fetches, in config order."""
    names = [
        name
        for name, dataset in config["datasets"].items()
        if dataset.get("bundle", {}).get("name") == wildcards.bundle
    ]
    if not names:
        raise ValueError(
            f"results/downloads/bundles/{wildcards.bundle}: no dataset names a bundle of that name"
        )
    return names


def bundle_keys(wildcards):
    """The config keys a download_bundle job's messages name: every dataset naming the zip."""
    datasets = [f"datasets.{name}" for name in bundle_datasets(wildcards)]
    return {"config_key": datasets, "pins_key": [f"{key}.bundle" for key in datasets]}


def bundle_entry(wildcards):
    """The bundle's {name, size, sha256} (the datasets naming it agree, checked at load)."""
    return config["datasets"][bundle_datasets(wildcards)[0]]["bundle"]


def bundle_mirrors(wildcards, output):
    """The mirrors of every dataset naming the bundle, in config order, each once."""
    mirrors = [
        url for name in bundle_datasets(wildcards) for url in config["datasets"][name]["mirrors"]
    ]
    return list(dict.fromkeys(mirrors))


def trains_model():
    return config["model"]["weights"] is None


def given_weights_sha256():
    """The SHA-256 of the user's weights file, None for the book's or trained weights (made
    here, pinned or from the tables). A param of predict: another file put in its place with an
    older modification time (cp -p, tar, rsync -a) reruns it, which the time alone would not."""
    if config["model"]["weights"] in (None, BOOK_WEIGHTS):
        return None
    return sha256_of(config["model"]["weights"])


def model_weights(wildcards):
    """The user's weights file, the book's as download_weights writes it, or the one
    train_model writes for this dataset."""
    if trains_model():
        return f"results/model/{wildcards.dataset}/weights.npz"
    if config["model"]["weights"] == BOOK_WEIGHTS:
        return f"results/model/book/{book_model()['file']['name']}"
    return local(config["model"]["weights"])  # the user's own file: no module prefix


BOOK_KEYS = {"config_key": f"models.{BOOK_WEIGHTS}", "pins_key": f"models.{BOOK_WEIGHTS}.file"}


def book_model():
    """models.book: the mirrors and pins of the book's weights (there when model.weights is
    book: validate_config checks that)."""
    return config["models"][BOOK_WEIGHTS]


def book_weights_entry(wildcards):
    """models.book.file, the pins of the file a download_weights job writes."""
    entry = book_model()["file"]
    if entry["name"] != wildcards.file:
        raise ValueError(
            f"results/model/book/{wildcards.file}: the book's weights are {entry['name']} "
            "(models.book.file.name), not this file"
        )
    return entry


def book_weights_mirrors(wildcards, output):
    return book_model()["mirrors"]


REPORT_FILES = [
    "accuracy.json",
    "per_class.csv",
    "confusion_matrix.csv",
    "confusion_matrix.png",
    "samples.png",
    "misclassified.png",
]


def final_outputs():
    dataset = config["dataset"]
    outputs = expand(
        "results/reports/{dataset}/{split}/{file}",
        dataset=dataset,
        split=config["splits"],
        file=REPORT_FILES,
    )
    outputs += expand(
        "results/predictions/{dataset}/{split}.{format}",
        dataset=dataset,
        split=config["splits"],
        format=["parquet", "csv"],
    )
    if trains_model():
        outputs.append(f"results/reports/{dataset}/training_curves.png")
    outputs.append(f"results/reports/{dataset}/summary.html")
    outputs += [
        "results/perceptron/gates.csv",
        "results/perceptron/xor_compositions.csv",
    ]
    return outputs


def weights_source():
    """Where the model comes from, as the reports and their labels name it."""
    return config["model"]["weights"] or "trained by train_model"


def report_labels(output, split=True):
    """The labels of one file in the HTML report, by which it can be filtered."""
    labels = {"dataset": "{dataset}", "split": "{split}"} if split else {"dataset": "{dataset}"}
    return {**labels, "model": weights_source(), "output": output}
