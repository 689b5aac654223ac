# The scores and the pictures read the prediction shards, as gathering them into the prediction
# files does: that job gates neither. The scores decode three columns and write text, without pandas or
# matplotlib; every picture, the confusion matrix's too, is drawn by the pictures' job.
rule evaluate_metrics:
    input:
        shards=gather.predict(
            "results/predictions/{{dataset}}/shards/{{split}}/{scatteritem}.parquet"
        ),
        table="results/parquet/{dataset}/{split}.parquet",
        weights=model_weights,
    output:
        accuracy=report(
            "results/reports/{dataset}/{split}/accuracy.json",
            caption="../report/accuracy.rst",
            category="Evaluation",
            subcategory="{dataset} {split}",
            labels=report_labels("accuracy"),
        ),
        per_class=report(
            "results/reports/{dataset}/{split}/per_class.csv",
            caption="../report/per_class.rst",
            category="Evaluation",
            subcategory="{dataset} {split}",
            labels=report_labels("per-class metrics"),
        ),
        confusion_csv=report(
            "results/reports/{dataset}/{split}/confusion_matrix.csv",
            caption="../report/confusion_matrix_csv.rst",
            category="Evaluation",
            subcategory="{dataset} {split}",
            labels=report_labels("confusion matrix (table)"),
        ),
    log:
        "results/logs/evaluate_metrics/{dataset}/{split}.log",
    benchmark:
        "results/benchmarks/evaluate_metrics/{dataset}/{split}.tsv"
    conda:
        "../envs/pipeline.yaml"
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        dataset="{dataset}",
        split="{split}",
        classes=lookup(dpath="datasets/{dataset}/classes", within=config),
        weights_source=weights_source(),
        batch_size=config["batch_size"],
    script:
        "../scripts/evaluate_metrics.py"


# The pictures read the predictions and the table only as far as the images they show (but the
# three scored columns, read whole for the confusion matrix): a job of their own, beside the
# metrics.
rule evaluate_pictures:
    input:
        shards=gather.predict(
            "results/predictions/{{dataset}}/shards/{{split}}/{scatteritem}.parquet"
        ),
        table="results/parquet/{dataset}/{split}.parquet",
    output:
        samples=report(
            "results/reports/{dataset}/{split}/samples.png",
            caption="../report/samples.rst",
            category="Pictures",
            subcategory="{dataset} {split}",
            labels=report_labels("samples"),
        ),
        misclassified=report(
            "results/reports/{dataset}/{split}/misclassified.png",
            caption="../report/misclassified.rst",
            category="Pictures",
            subcategory="{dataset} {split}",
            labels=report_labels("misclassified"),
        ),
        confusion_png=report(
            "results/reports/{dataset}/{split}/confusion_matrix.png",
            caption="../report/confusion_matrix.rst",
            category="Evaluation",
            subcategory="{dataset} {split}",
            labels=report_labels("confusion matrix"),
        ),
    log:
        "results/logs/evaluate_pictures/{dataset}/{split}.log",
    benchmark:
        "results/benchmarks/evaluate_pictures/{dataset}/{split}.tsv"
    conda:
        "../envs/pipeline.yaml"
    resources:
        mem_mb=500,
        runtime=10,
    params:
        dataset="{dataset}",
        split="{split}",
        classes=lookup(dpath="datasets/{dataset}/classes", within=config),
    script:
        "../scripts/evaluate_pictures.py"
