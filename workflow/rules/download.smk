# Runs on the submitting host (localrule): cluster nodes often have no internet. No benchmark:
# Snakemake refuses it on a rule whose output `--cache` may take from the cache instead of a run.
rule download_archive:
    output:
        "results/downloads/{dataset}/{archive}",
    log:
        "results/logs/download_archive/{dataset}/{archive}.log",
    wildcard_constraints:
        archive=r"[^/]+\.gz",
    cache: "omit-software"
    localrule: True
    conda:
        "../envs/pipeline.yaml"
    resources:
        runtime=10,
    params:
        entry=archive_entry,
        mirrors=archive_mirrors,
        config_keys=archive_keys,
        note=archive_note,
        timeout=download_setting("timeout_seconds"),
        retries=download_setting("retries"),
        backoff=download_setting("backoff_seconds"),
    script:
        "../scripts/download.py"


rule download_weights:
    output:
        "results/model/book/{file}",
    log:
        "results/logs/download_weights/book/{file}.log",
    benchmark:
        "results/benchmarks/download_weights/book/{file}.tsv"
    wildcard_constraints:
        file=r"[^/]+",
    localrule: True
    conda:
        "../envs/pipeline.yaml"
    resources:
        runtime=5,
    params:
        entry=book_weights_entry,
        mirrors=book_weights_mirrors,
        config_keys=BOOK_KEYS,
        note=None,
        timeout=download_setting("timeout_seconds"),
        retries=download_setting("retries"),
        backoff=download_setting("backoff_seconds"),
    script:
        "../scripts/download.py"


# Like download_archive: on the submitting host, cached, so no benchmark.
rule download_bundle:
    output:
        "results/downloads/bundles/{bundle}",
    log:
        "results/logs/download_bundle/{bundle}.log",
    wildcard_constraints:
        bundle=r"[^/]+\.zip",
    cache: "omit-software"
    localrule: True
    conda:
        "../envs/pipeline.yaml"
    resources:
        runtime=60,
    params:
        entry=bundle_entry,
        mirrors=bundle_mirrors,
        config_keys=bundle_keys,
        note=None,
        timeout=download_setting("timeout_seconds"),
        retries=download_setting("retries"),
        backoff=download_setting("backoff_seconds"),
    script:
        "../scripts/download.py"
