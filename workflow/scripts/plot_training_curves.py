import pandas as pd

from mnist_pipeline.plots import plot_training_curves
from mnist_pipeline.rulelog import rule_log

with rule_log(snakemake.log[0]) as log:
    plot_training_curves(pd.read_csv(snakemake.input[0]), snakemake.output[0])
    log.info("%s: written", snakemake.output[0])
