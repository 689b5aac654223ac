from mnist_pipeline.rulelog import rule_log
from mnist_pipeline.tables import convert_idx_to_parquet

with rule_log(snakemake.log[0]) as log:
    rows = convert_idx_to_parquet(
        snakemake.input.images,
        snakemake.input.labels,
        snakemake.output[0],
        metadata={"dataset": snakemake.wildcards.dataset, "split": snakemake.wildcards.split},
        sha256=snakemake.params.sha256,
        log=log.info,
    )
    log.info("%s: %d rows, archives verified against their SHA-256 pins", snakemake.output[0], rows)
