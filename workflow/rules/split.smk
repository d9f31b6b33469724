rule split:
    input:
        expression=expression_files(),
    output:
        samples="results/split/samples.tsv",
        summary=report(
            "results/split/summary.tsv",
            caption="../report/split_summary.rst",
            category="1. Data",
            labels={"table": "split per tissue"},
        ),
    log:
        "logs/split.log",
    benchmark:
        "benchmarks/split.tsv"
    conda:
        "../../envs/data.yaml"
    params:
        tissues=TissueSelection.from_config(config),
        settings=SplitSettings.from_config(config),
    script:
        "../../scripts/split.py"
