rule tabulate_perceptron_gates:
    output:
        gates=report(
            "results/perceptron/gates.csv",
            caption="../report/gates.rst",
            category="Perceptron",
            labels={"table": "gates"},
        ),
        compositions=report(
            "results/perceptron/xor_compositions.csv",
            caption="../report/xor_compositions.rst",
            category="Perceptron",
            labels={"table": "XOR compositions"},
        ),
    log:
        "results/logs/tabulate_perceptron_gates.log",
    benchmark:
        "results/benchmarks/tabulate_perceptron_gates.tsv"
    localrule: True
    conda:
        "../envs/pipeline.yaml"
    resources:
        runtime=5,
    script:
        "../scripts/tabulate_perceptron_gates.py"
