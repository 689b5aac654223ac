import csv

from mnist_pipeline.atomic import atomic_path
from mnist_pipeline.perceptron import truth_table, xor_compositions
from mnist_pipeline.rulelog import rule_log

with rule_log(snakemake.log[0]) as log:
    for rows, dest in [
        (truth_table(), snakemake.output.gates),
        (xor_compositions(), snakemake.output.compositions),
    ]:
        with atomic_path(dest) as tmp, open(tmp, "w", newline="") as file:
            writer = csv.DictWriter(file, fieldnames=list(rows[0]), lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
        log.info("%s: %d rows", dest, len(rows))
