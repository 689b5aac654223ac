# `snakemake` at the repository's root runs the workflow of workflow/Snakefile, imported the way
# another workflow imports it (see workflow/Snakefile), with its rules under their own names.
configfile: "config/config.yaml"


module pipeline:
    snakefile:
        "workflow/Snakefile"
    config:
        config


use rule * from pipeline
