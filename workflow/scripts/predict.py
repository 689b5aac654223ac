from mnist_pipeline.inference import parse_shard, predict_shard
from mnist_pipeline.rulelog import rule_log
from mnist_pipeline.weights import load_weights

with rule_log(snakemake.log[0]) as log:
    shard, shards = parse_shard(snakemake.params.shard)
    rows = predict_shard(
        snakemake.input.table,
        load_weights(
            snakemake.input.weights,
            snakemake.params.classes,
            classes_key=f"datasets.{snakemake.wildcards.dataset}.classes",
        ),
        snakemake.params.batch_size,
        shard,
        shards,
        snakemake.output[0],
        log=log.info,
    )
    log.info("%s: %d rows in batches of %d", snakemake.output[0], rows, snakemake.params.batch_size)
