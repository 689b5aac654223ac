from mnist_pipeline.atomic import atomic_path
from mnist_pipeline.perceptron import truth_table, xor_compositions
from mnist_pipeline.rulelog import rule_log

with rule_log(snakemake.log[0]) as log:
    for table, dest in [
        (truth_table(), snakemake.output.gates),
        (xor_compositions(), snakemake.output.compositions),
    ]:
        with atomic_path(dest) as tmp:
            table.to_csv(tmp, index=False)
        log.info("%s: %d rows", dest, len(table))
