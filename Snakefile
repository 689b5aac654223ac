# `snakemake` at the repository's root runs the workflow of workflow/Snakefile, imported the way
# another workflow imports it (see workflow/Snakefile), with its rules under their own names.
configfile: "config/config.yaml"


module pipeline:
    snakefile:
        "workflow/Snakefile"
    config:
        config


use rule * from pipeline


# The answer of a run, after Snakemake's own summary (a module's handlers are not run, so it lives
# here, where users run the pipeline; a host workflow prints its own).
onsuccess:
    from mnist_pipeline.ending import end_promptly

    # Not after --touch: it ran nothing, so there is nothing new to announce.
    if not workflow.touch:
        import sys
        from mnist_pipeline.summary import run_summary, show_at_exit

        show_at_exit(
            run_summary(
                [
                    job.output.accuracy
                    for job in workflow.dag.jobs
                    if job.rule.name == "evaluate_metrics"
                ],
                sys.argv,
            )
        )
    end_promptly()
