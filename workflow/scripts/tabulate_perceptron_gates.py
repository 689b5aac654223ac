from mnist_pipeline.atomic import atomic_path
from mnist_pipeline.metrics import csv_text
from mnist_pipeline.perceptron import truth_table, xor_compositions
from mnist_pipeline.rulelog import rule_log

with rule_log(snakemake.log[0]) as log:
    for rows, dest in [
        (truth_table(), snakemake.output.gates),
        (xor_compositions(), snakemake.output.compositions),
    ]:
        with atomic_path(dest) as tmp:
            tmp.write_text(csv_text(rows[0], (row.values() for row in rows)), encoding="utf-8")
        log.info("%s: %d rows", dest, len(rows))
