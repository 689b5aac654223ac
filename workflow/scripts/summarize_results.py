from mnist_pipeline.rulelog import rule_log
from mnist_pipeline.summary import read_results, write_summary_html

with rule_log(snakemake.log[0]) as log:
    results = read_results(snakemake.input.accuracy)
    write_summary_html(snakemake.output[0], results, snakemake.input.confusion)
    log.info("%s: %d splits", snakemake.output[0], len(results))
