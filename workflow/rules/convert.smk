rule convert_to_parquet:
    input:
        unpack(split_archives),
    output:
        "results/parquet/{dataset}/{split}.parquet",
    log:
        "results/logs/convert_to_parquet/{dataset}/{split}.log",
    benchmark:
        "results/benchmarks/convert_to_parquet/{dataset}/{split}.tsv"
    conda:
        "../envs/pipeline.yaml"
    threads: 2
    resources:
        mem_mb=600,
        runtime=10,
    params:
        sha256=split_sha256,
        bundle=split_bundle,
        layout=archive_layout,
    script:
        "../scripts/convert_to_parquet.py"
