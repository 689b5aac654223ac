import pandas as pd

from mnist_pipeline.atomic import atomic_path
from mnist_pipeline.rulelog import rule_log
from mnist_pipeline.tables import read_arrays
from mnist_pipeline.train import TrainSettings, train
from mnist_pipeline.weights import save_weights

with rule_log(snakemake.log[0]) as log:
    settings = TrainSettings(**snakemake.params.settings)
    weights, history = train(
        *read_arrays(snakemake.input.train),
        *read_arrays(snakemake.input.test),
        settings,
        log=log.info,
    )
    save_weights(snakemake.output.weights, weights)
    with atomic_path(snakemake.output.history) as tmp:
        pd.DataFrame(history).to_csv(tmp, index=False)
    log.info("%s: test accuracy %.4f", snakemake.output.weights, history[-1]["test_accuracy"])
