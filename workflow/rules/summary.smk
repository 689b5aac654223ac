rule summarize_results:
    input:
        accuracy=expand(
            "results/reports/{{dataset}}/{split}/accuracy.json", split=config["splits"]
        ),
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
    conda:
        "../envs/pipeline.yaml"
    script:
        "../scripts/summarize_results.py"


onsuccess:
    # Not after --touch: it ran nothing, so there is nothing new to announce.
    if not workflow.touch:
        import sys
        from mnist_pipeline.summary import run_summary, show_at_exit

        show_at_exit(
            run_summary(
                [
                    job.output.accuracy
                    for job in workflow.dag.jobs
                    if job.rule.name == "evaluate"
                ],
                sys.argv,
            )
        )
