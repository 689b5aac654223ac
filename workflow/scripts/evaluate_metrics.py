from mnist_pipeline.evaluation import score, write_scores
from mnist_pipeline.rulelog import rule_log

with rule_log(snakemake.log[0]) as log:
    params = snakemake.params
    scores = score(snakemake.input.shards, snakemake.input.table, params.classes)
    write_scores(
        scores,
        snakemake.output,
        about={
            "dataset": params.dataset,
            "split": params.split,
            "weights": params.weights_source,
            "batch_size": params.batch_size,
        },
        weights=snakemake.input.weights,
    )
    log.info("%s: accuracy %.4f", snakemake.output.accuracy, scores.summary["accuracy"])
