from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/download.smk"
include: "workflow/rules/convert.smk"
include: "workflow/rules/model.smk"
include: "workflow/rules/predict.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/perceptron.smk"
include: "workflow/rules/summary.smk"


rule all:
    default_target: True
    input:
        final_outputs(),
