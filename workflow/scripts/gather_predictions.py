from mnist_pipeline.inference import gather_predictions
from mnist_pipeline.rulelog import rule_log

with rule_log(snakemake.log[0]) as log:
    rows = gather_predictions(snakemake.input, snakemake.output.parquet, snakemake.output.csv)
    log.info("%s: %d rows from %d shards", snakemake.output.parquet, rows, len(snakemake.input))
