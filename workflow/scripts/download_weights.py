from mnist_pipeline.download import fetch_file
from mnist_pipeline.rulelog import rule_log

with rule_log(snakemake.log[0]) as log:
    entry = snakemake.params.entry
    url = fetch_file(
        entry["name"],
        snakemake.params.mirrors,
        entry["size"],
        entry["sha256"],
        snakemake.output[0],
        config_key="models.book",
        pins_key="models.book.file",
        timeout=snakemake.params.timeout,
        retries=snakemake.params.retries,
        backoff=snakemake.params.backoff,
        log=log.info,
    )
    log.info("%s: verified, from %s", snakemake.output[0], url)
