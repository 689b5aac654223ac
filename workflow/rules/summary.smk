rule summarize_results:
    input:
        accuracy=expand("results/reports/{{dataset}}/{split}/accuracy.json", split=config["splits"]),
        confusion=expand(
            "results/reports/{{dataset}}/{split}/confusion_matrix.png",
            split=config["splits"],
        ),
    output:
        report(
            "results/reports/{dataset}/summary.html",
            caption="../report/summary.rst",
            category="Summary",
        ),
    log:
        "results/logs/summarize_results/{dataset}.log",
    benchmark:
        "results/benchmarks/summarize_results/{dataset}.tsv"
    localrule: True
    conda:
        "../envs/pipeline.yaml"
    resources:
        runtime=5,
    script:
        "../scripts/summarize_results.py"
