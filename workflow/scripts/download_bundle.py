from mnist_pipeline.download import fetch_file
from mnist_pipeline.rulelog import rule_log

with rule_log(snakemake.log[0]) as log:
    entry = snakemake.params.entry
    datasets = [f"datasets.{name}" for name in snakemake.params.datasets]
    url = fetch_file(
        entry["name"],
        snakemake.params.mirrors,
        entry["size"],
        entry["sha256"],
        snakemake.output[0],
        config_key=datasets,
        pins_key=[f"{key}.bundle" for key in datasets],
        timeout=snakemake.params.timeout,
        retries=snakemake.params.retries,
        backoff=snakemake.params.backoff,
        log=log.info,
    )
    log.info("%s: verified, from %s, for %s", snakemake.output[0], url, ", ".join(datasets))
