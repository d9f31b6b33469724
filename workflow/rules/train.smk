rule train:
    input:
        augmented=augmented_files(),
        expression=expression_files(),
        samples="results/split/samples.tsv",
        genes="results/genes/selected_genes.tsv",
    output:
        weights="results/model/model.safetensors",
        model_json="results/model/model.json",
        history="results/model/history.tsv",
    log:
        "logs/train.log",
    benchmark:
        "benchmarks/train.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: workflow.cores
    resources:
        gpu=1,
    params:
        settings=TrainingSettings.from_config(config),
    script:
        "../../scripts/train.py"


rule training_curves:
    input:
        "results/model/history.tsv",
    output:
        report(
            "results/figures/training_curves.png",
            caption="../report/training_curves.rst",
            category="3. Training",
        ),
    log:
        "logs/training_curves.log",
    benchmark:
        "benchmarks/training_curves.tsv"
    conda:
        "../../envs/data.yaml"
    script:
        "../../scripts/training_curves.py"


rule sample_checks:
    input:
        weights="results/model/model.safetensors",
        model_json="results/model/model.json",
        expression=expression_files(),
        samples="results/split/samples.tsv",
    output:
        checks="results/model/sample_checks.json",
        arrays="results/model/sample_checks.safetensors",
    log:
        "logs/sample_checks.log",
    benchmark:
        "benchmarks/sample_checks.tsv"
    conda:
        "../../envs/torch.yaml"
    params:
        settings=SampleCheckSettings.from_config(config),
    script:
        "../../scripts/sample_checks.py"
