from mnist_pipeline.evaluation import evaluate, write_report
from mnist_pipeline.rulelog import rule_log

with rule_log(snakemake.log[0]) as log:
    params = snakemake.params
    evaluation = evaluate(snakemake.input.predictions, snakemake.input.table, params.classes)
    write_report(
        evaluation,
        snakemake.output,
        about={
            "dataset": params.dataset,
            "split": params.split,
            "weights": params.weights_source,
            "batch_size": params.batch_size,
        },
        weights=snakemake.input.weights,
    )
    log.info("%s: accuracy %.4f", snakemake.output.accuracy, evaluation.summary["accuracy"])
