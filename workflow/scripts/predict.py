import os

# The job's threads each run whole batches through the network; BLAS threads of their own, on
# blocks of 100 rows, would only contend with them. Set before numpy loads BLAS.
for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[name] = "1"

from mnist_pipeline.inference import parse_shard, predict_shard  # noqa: E402
from mnist_pipeline.rulelog import rule_log  # noqa: E402
from mnist_pipeline.tables import check_source  # noqa: E402
from mnist_pipeline.weights import load_weights  # noqa: E402

with rule_log(snakemake.log[0]) as log:
    wildcards = snakemake.wildcards
    check_source(snakemake.input.table, wildcards.dataset, wildcards.split, snakemake.params.sha256)
    shard, shards = parse_shard(snakemake.params.shard)
    rows = predict_shard(
        snakemake.input.table,
        load_weights(
            snakemake.input.weights,
            snakemake.params.classes,
            classes_key=f"datasets.{snakemake.wildcards.dataset}.classes",
        ),
        snakemake.params.batch_size,
        shard,
        shards,
        snakemake.output[0],
        threads=snakemake.threads,
        log=log.info,
    )
    log.info("%s: %d rows in batches of %d", snakemake.output[0], rows, snakemake.params.batch_size)
    if snakemake.params.weights_sha256:
        log.info("weights %s: SHA-256 %s", snakemake.input.weights, snakemake.params.weights_sha256)
