rule predict:
    input:
        table="results/parquet/{dataset}/{split}.parquet",
        weights=model_weights,
    output:
        temp("results/predictions/{dataset}/shards/{split}/{scatteritem}.parquet"),
    log:
        "results/logs/predict/{dataset}/{split}/{scatteritem}.log",
    benchmark:
        "results/benchmarks/predict/{dataset}/{split}/{scatteritem}.tsv"
    conda:
        "../envs/pipeline.yaml"
    threads: 2
    resources:
        mem_mb=600,
        runtime=10,
    params:
        batch_size=config["batch_size"],
        shard="{scatteritem}",
        classes=class_count,
        sha256=split_sha256,
        weights_sha256=given_weights_sha256(),
    script:
        "../scripts/predict.py"


# The prediction files, Parquet and CSV, from one checked pass over the shards: a job of its own
# beside the evaluation, which reads the shards too. Formatting floats as text is its main cost.
rule gather_predictions:
    input:
        shards=gather.predict(
            "results/predictions/{{dataset}}/shards/{{split}}/{scatteritem}.parquet"
        ),
        table="results/parquet/{dataset}/{split}.parquet",
    output:
        parquet="results/predictions/{dataset}/{split}.parquet",
        csv="results/predictions/{dataset}/{split}.csv",
    log:
        "results/logs/gather_predictions/{dataset}/{split}.log",
    benchmark:
        "results/benchmarks/gather_predictions/{dataset}/{split}.tsv"
    conda:
        "../envs/pipeline.yaml"
    resources:
        mem_mb=300,
        runtime=10,
    params:
        classes=class_count,
    script:
        "../scripts/gather_predictions.py"
