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
    threads: TRAIN_THREADS
    resources:
        gpu=TRAIN_GPUS,
    params:
        settings=TrainingSettings.from_config(config),
    script:
        "../../scripts/train.py"


wildcard_constraints:
    replicate="[1-9][0-9]*",


# Replicates 1.. of train.replicates: the same settings, rows and split, seed train.seed + r
# (rnaseq_saliency.ensemble). Replicate 0 is rule train's model.
rule train_replicate:
    input:
        augmented=augmented_files(),
        expression=expression_files(),
        samples="results/split/samples.tsv",
        genes="results/genes/selected_genes.tsv",
    output:
        weights="results/model/replicates/{replicate}/model.safetensors",
        model_json="results/model/replicates/{replicate}/model.json",
        history="results/model/replicates/{replicate}/history.tsv",
    log:
        "logs/train_replicate/{replicate}.log",
    benchmark:
        "benchmarks/train_replicate/{replicate}.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: TRAIN_THREADS
    resources:
        gpu=TRAIN_GPUS,
    params:
        settings=TrainingSettings.from_config(config),
        replicate=lambda wildcards: wildcards.replicate,
    script:
        "../../scripts/train.py"


# Written for any replicate count (one member: the model itself), so that evaluate and predict
# always read the same description and a count change never leaves a stale one.
rule ensemble:
    input:
        members=replicate_model_files(),
        expression=expression_files(),
        samples="results/split/samples.tsv",
    output:
        "results/model/ensemble.json",
    log:
        "logs/ensemble.log",
    benchmark:
        "benchmarks/ensemble.tsv"
    conda:
        "../../envs/torch.yaml"
    script:
        "../../scripts/ensemble.py"


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
