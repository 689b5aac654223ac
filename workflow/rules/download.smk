rule download_archive:
    output:
        "results/downloads/{dataset}/{archive}",
    log:
        "results/logs/download_archive/{dataset}/{archive}.log",
    benchmark:
        "results/benchmarks/download_archive/{dataset}/{archive}.tsv"
    wildcard_constraints:
        archive=r"[^/]+\.gz",
    conda:
        "../envs/pipeline.yaml"
    params:
        entry=archive_entry,
        mirrors=lambda wildcards: config["datasets"][wildcards.dataset]["mirrors"],
        timeout=config["download"]["timeout_seconds"],
        retries=config["download"]["retries"],
        backoff=config["download"]["backoff_seconds"],
    script:
        "../scripts/download_archive.py"


rule download_bundle:
    output:
        "results/downloads/bundles/{bundle}",
    log:
        "results/logs/download_bundle/{bundle}.log",
    benchmark:
        "results/benchmarks/download_bundle/{bundle}.tsv"
    wildcard_constraints:
        bundle=r"[^/]+\.zip",
    conda:
        "../envs/pipeline.yaml"
    params:
        entry=bundle_entry,
        mirrors=bundle_mirrors,
        datasets=bundle_datasets,
        timeout=config["download"]["timeout_seconds"],
        retries=config["download"]["retries"],
        backoff=config["download"]["backoff_seconds"],
    script:
        "../scripts/download_bundle.py"
