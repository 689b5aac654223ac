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
    script:
        "../scripts/predict.py"


rule gather_predictions:
    input:
        shards=gather.predict(
            "results/predictions/{{dataset}}/shards/{{split}}/{scatteritem}.parquet"
        ),
        table="results/parquet/{dataset}/{split}.parquet",
    output:
        "results/predictions/{dataset}/{split}.parquet",
    log:
        "results/logs/gather_predictions/{dataset}/{split}.log",
    benchmark:
        "results/benchmarks/gather_predictions/{dataset}/{split}.tsv"
    localrule: True
    conda:
        "../envs/pipeline.yaml"
    resources:
        mem_mb=300,
        runtime=5,
    params:
        classes=class_count,
    script:
        "../scripts/gather_predictions.py"


# Formatting floats as text is the slow part of the CSV: its own job, from the shards, beside
# the gathering and the evaluation.
rule write_predictions_csv:
    input:
        shards=gather.predict(
            "results/predictions/{{dataset}}/shards/{{split}}/{scatteritem}.parquet"
        ),
        table="results/parquet/{dataset}/{split}.parquet",
    output:
        "results/predictions/{dataset}/{split}.csv",
    log:
        "results/logs/write_predictions_csv/{dataset}/{split}.log",
    benchmark:
        "results/benchmarks/write_predictions_csv/{dataset}/{split}.tsv"
    conda:
        "../envs/pipeline.yaml"
    resources:
        mem_mb=300,
        runtime=10,
    params:
        classes=class_count,
    script:
        "../scripts/write_predictions_csv.py"
