from mnist_pipeline.download import fetch_file
from mnist_pipeline.rulelog import rule_log

with rule_log(snakemake.log[0]) as log:
    params = snakemake.params
    entry = params.entry
    url = fetch_file(
        entry["name"],
        params.mirrors,
        entry["size"],
        entry["sha256"],
        snakemake.output[0],
        **params.config_keys,
        note=params.note,
        timeout=params.timeout,
        retries=params.retries,
        backoff=params.backoff,
        log=log.info,
    )
    keys = params.config_keys["config_key"]
    named = keys if isinstance(keys, str) else ", ".join(keys)
    log.info("%s: verified, from %s, for %s", snakemake.output[0], url, named)
