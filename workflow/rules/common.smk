from pathlib import Path

from mnist_pipeline.config import load_schema, validate_config

# Checked before any job is planned: the config, and --set-scatter counts, which Snakemake
# keeps apart from the config and would otherwise take as given (0 makes empty predictions).
config.update(
    validate_config(
        config,
        load_schema(workflow.source_path("../schemas/config.schema.yaml")),
        set_scatter=workflow.resource_settings.overwrite_scatter,
    )
)

if config["model"]["weights"] and not Path(config["model"]["weights"]).is_file():
    raise ValueError(
        f"config key 'model.weights': {config['model']['weights']} is not a file. Give the path "
        "of the book's sample_weight.pkl or of an .npz with W1 b1 W2 b2 W3 b3, or null to train "
        "a model here."
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


def split_archives(wildcards):
    return {
        kind: f"results/downloads/{wildcards.dataset}/{archive(wildcards.dataset, wildcards.split, kind)['name']}"
        for kind in ARCHIVE_KINDS
    }


def split_sha256(wildcards):
    return {
        kind: archive(wildcards.dataset, wildcards.split, kind)["sha256"]
        for kind in ARCHIVE_KINDS
    }


def trains_model():
    return config["model"]["weights"] is None


def model_weights(wildcards):
    """The user's weights file, or the one train_model writes for this dataset."""
    if trains_model():
        return f"results/model/{wildcards.dataset}/weights.npz"
    return config["model"]["weights"]


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
        "results/predictions/{dataset}/{split}.csv",
        dataset=dataset,
        split=config["splits"],
    )
    if trains_model():
        outputs.append(f"results/reports/{dataset}/training_curves.png")
    outputs += [
        "results/perceptron/gates.csv",
        "results/perceptron/xor_compositions.csv",
    ]
    return outputs
