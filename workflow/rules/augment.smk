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
        method=config["augment"]["method"],
        min_samples=config["augment"]["min_samples"],
        noise_sigma=config["augment"]["noise_sigma"],
        smote_k_neighbors=config["augment"]["smote_k_neighbors"],
        seed=config["augment"]["seed"],
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
        tissues=PCA_TISSUES,
        method=config["augment"]["method"],
    script:
        "../../scripts/pca_augmentation.py"
