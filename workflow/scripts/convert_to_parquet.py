import os

# Conversion uses no BLAS: OpenBLAS's threads would only start (and spin) for nothing. Set
# before numpy loads it.
os.environ["OPENBLAS_NUM_THREADS"] = "1"

from mnist_pipeline.bundle import bundle_members  # noqa: E402
from mnist_pipeline.rulelog import rule_log  # noqa: E402
from mnist_pipeline.tables import convert_idx_to_parquet  # noqa: E402

with rule_log(snakemake.log[0]) as log:
    params = snakemake.params
    if params.bundle:
        # Read in place from the zip, which is checked against its pin first.
        archives = bundle_members(snakemake.input.bundle, params.bundle)
    else:
        archives = {"images": snakemake.input.images, "labels": snakemake.input.labels}
    layout = params.layout
    rows = convert_idx_to_parquet(
        archives["images"],
        archives["labels"],
        snakemake.output[0],
        metadata={
            "dataset": snakemake.wildcards.dataset,
            "split": snakemake.wildcards.split,
            "classes": str(layout["classes"]),
        },
        sha256=params.sha256,
        log=log.info,
        **layout,
    )
    source = f"{snakemake.input.bundle} (its SHA-256 pin)" if params.bundle else "their pins"
    log.info("%s: %d rows, archives verified against %s", snakemake.output[0], rows, source)
