from mnist_pipeline.rulelog import rule_log
from mnist_pipeline.tables import check_source, read_arrays
from mnist_pipeline.train import TrainSettings, train, write_history
from mnist_pipeline.weights import save_weights

with rule_log(snakemake.log[0]) as log:
    for split, pins in snakemake.params.sha256.items():
        check_source(snakemake.input[split], snakemake.wildcards.dataset, split, pins)
    settings = TrainSettings(**snakemake.params.settings)
    weights, history = train(
        *read_arrays(snakemake.input.train),
        *read_arrays(snakemake.input.test),
        settings,
        log=log.info,
        classes=snakemake.params.classes,
    )
    save_weights(snakemake.output.weights, weights)
    write_history(snakemake.output.history, history)
    log.info("%s: test accuracy %.4f", snakemake.output.weights, history[-1]["test_accuracy"])
