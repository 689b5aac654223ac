rule train_model:
    input:
        train="results/parquet/{dataset}/train.parquet",
        test="results/parquet/{dataset}/test.parquet",
    output:
        weights="results/model/{dataset}/weights.npz",
        history=report(
            "results/model/{dataset}/history.csv",
            caption="../report/history.rst",
            category="Training",
            labels=report_labels("history", split=False),
        ),
    log:
        "results/logs/train_model/{dataset}.log",
    benchmark:
        "results/benchmarks/train_model/{dataset}.tsv"
    conda:
        "../envs/pipeline.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=60,
    params:
        settings=config["model"]["train"],
        classes=class_count,
        sha256=tables_sha256,
    script:
        "../scripts/train_model.py"


rule plot_training_curves:
    input:
        "results/model/{dataset}/history.csv",
    output:
        report(
            "results/reports/{dataset}/training_curves.png",
            caption="../report/training_curves.rst",
            category="Training",
            labels=report_labels("training curves", split=False),
        ),
    log:
        "results/logs/plot_training_curves/{dataset}.log",
    benchmark:
        "results/benchmarks/plot_training_curves/{dataset}.tsv"
    localrule: True
    conda:
        "../envs/pipeline.yaml"
    resources:
        runtime=5,
    script:
        "../scripts/plot_training_curves.py"
