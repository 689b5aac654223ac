import json

from mnist_pipeline.evaluation import evaluate, write_report
from mnist_pipeline.rulelog import rule_log

with rule_log(snakemake.log[0]) as log:
    params = snakemake.params
    classes = json.loads(params.classes)
    evaluation = evaluate(snakemake.input.predictions, snakemake.input.table, classes)
    write_report(
        evaluation,
        snakemake.output,
        about={
            "dataset": params.dataset,
            "split": params.split,
            "weights": json.loads(params.weights_source),
            "batch_size": params.batch_size,
        },
        weights=snakemake.input.weights,
    )
    log.info("%s: accuracy %.4f", snakemake.output.accuracy, evaluation.summary["accuracy"])
