from mnist_pipeline.inference import gather_predictions
from mnist_pipeline.rulelog import rule_log

with rule_log(snakemake.log[0]) as log:
    shards = snakemake.input.shards
    rows = gather_predictions(
        shards,
        snakemake.input.table,
        snakemake.output.parquet,
        snakemake.output.csv,
        classes=snakemake.params.classes,
        log=log.info,
    )
    log.info(
        "%s, %s: %d rows from %d shards",
        snakemake.output.parquet,
        snakemake.output.csv,
        rows,
        len(shards),
    )
