localrules:
    download_weights,


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
        mirrors_note=lookup(dpath="datasets/{dataset}/mirrors_note", within=config),
        timeout=config["download"]["timeout_seconds"],
        retries=config["download"]["retries"],
        backoff=config["download"]["backoff_seconds"],
    script:
        "../scripts/download_archive.py"


rule download_weights:
    output:
        "results/model/book/{file}",
    log:
        "results/logs/download_weights/book/{file}.log",
    benchmark:
        "results/benchmarks/download_weights/book/{file}.tsv"
    wildcard_constraints:
        file=r"[^/]+",
    conda:
        "../envs/pipeline.yaml"
    params:
        entry=book_weights_entry,
        mirrors=book_weights_mirrors,
        timeout=config["download"]["timeout_seconds"],
        retries=config["download"]["retries"],
        backoff=config["download"]["backoff_seconds"],
    script:
        "../scripts/download_weights.py"
