rule augment:
    input:
        expression="results/expression/{tissue}.parquet",
        samples="results/split/samples.tsv",
    output:
        "results/augmented/{tissue}.parquet",
    log:
        "logs/augment/{tissue}.log",
    benchmark:
        "benchmarks/augment/{tissue}.tsv"
    conda:
        "../../envs/data.yaml"
    params:
        tissue=lambda wildcards: wildcards.tissue,
        settings=AugmentSettings.from_config(config),
    script:
        "../../scripts/augment.py"


rule pca_augmentation:
    input:
        augmented=expand(
            "results/augmented/{tissue}.parquet",
            tissue=PCA_TISSUES,
        ),
    output:
        report(
            "results/figures/pca_augmentation.png",
            caption="../report/pca_augmentation.rst",
            category="2. Augmentation",
        ),
    log:
        "logs/pca_augmentation.log",
    benchmark:
        "benchmarks/pca_augmentation.tsv"
    conda:
        "../../envs/data.yaml"
    params:
        settings=PcaFigureSettings.from_config(config),
    script:
        "../../scripts/pca_augmentation.py"
