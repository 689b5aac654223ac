from mnist_pipeline.inference import write_csv
from mnist_pipeline.rulelog import rule_log

with rule_log(snakemake.log[0]) as log:
    rows = write_csv(
        snakemake.input.predictions, snakemake.input.table, snakemake.output[0], log=log.info
    )
    log.info("%s: %d rows", snakemake.output[0], rows)
