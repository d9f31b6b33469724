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
        tissues=TISSUES,
        test_fraction=config["split"]["test_fraction"],
        val_fraction=config["split"]["val_fraction"],
        group_by=config["split"]["group_by"],
        seed=config["split"]["seed"],
    script:
        "../../scripts/split.py"
