rule saliency:
    input:
        weights="results/model/model.safetensors",
        model_json="results/model/model.json",
        predictions="results/evaluation/predictions.tsv",
        expression="results/expression/{tissue}.parquet",
    output:
        "results/saliency/{tissue}.parquet",
    log:
        "logs/saliency/{tissue}.log",
    benchmark:
        "benchmarks/saliency/{tissue}.tsv"
    conda:
        "../../envs/torch.yaml"
    params:
        tissue=lambda wildcards: wildcards.tissue,
        settings=SaliencySettings.from_config(config),
    script:
        "../../scripts/saliency.py"


rule top_genes:
    input:
        saliency=expand("results/saliency/{tissue}.parquet", tissue=TISSUES),
        genes="results/genes/selected_genes.tsv",
    output:
        # Every gene of every tissue: kept out of the report (about 70 MB at GTEx size).
        top_genes="results/saliency/top_genes.tsv",
        mean_matrix="results/saliency/mean_saliency.parquet",
    log:
        "logs/top_genes.log",
    benchmark:
        "benchmarks/top_genes.tsv"
    conda:
        "../../envs/data.yaml"
    params:
        tissues=TissueSelection.from_config(config),
    script:
        "../../scripts/top_genes.py"


rule top_genes_per_tissue:
    input:
        "results/saliency/top_genes.tsv",
    output:
        report(
            "results/saliency/top_genes_per_tissue.tsv",
            caption="../report/top_genes.rst",
            category="5. Saliency",
        ),
    log:
        "logs/top_genes_per_tissue.log",
    benchmark:
        "benchmarks/top_genes_per_tissue.tsv"
    conda:
        "../../envs/data.yaml"
    params:
        settings=TopGenesSettings.from_config(config),
    script:
        "../../scripts/top_genes_per_tissue.py"


rule saliency_heatmap:
    input:
        top_genes="results/saliency/top_genes_per_tissue.tsv",
        mean_matrix="results/saliency/mean_saliency.parquet",
    output:
        report(
            "results/saliency/heatmaps/{tissue}.png",
            caption="../report/saliency_heatmap.rst",
            category="5. Saliency",
            subcategory="Per tissue",
            labels={"tissue": "{tissue}"},
        ),
    log:
        "logs/saliency_heatmap/{tissue}.log",
    benchmark:
        "benchmarks/saliency_heatmap/{tissue}.tsv"
    conda:
        "../../envs/data.yaml"
    params:
        tissue=lambda wildcards: wildcards.tissue,
        settings=TopGenesSettings.from_config(config),
    script:
        "../../scripts/saliency_heatmap.py"


rule saliency_overview:
    input:
        top_genes="results/saliency/top_genes_per_tissue.tsv",
        mean_matrix="results/saliency/mean_saliency.parquet",
    output:
        report(
            "results/saliency/overview.png",
            caption="../report/saliency_overview.rst",
            category="5. Saliency",
        ),
    log:
        "logs/saliency_overview.log",
    benchmark:
        "benchmarks/saliency_overview.tsv"
    conda:
        "../../envs/data.yaml"
    params:
        settings=TopGenesSettings.from_config(config),
    script:
        "../../scripts/saliency_overview.py"


rule saliency_validation:
    input:
        saliency=expand("results/saliency/{tissue}.parquet", tissue=TISSUES),
        weights="results/model/model.safetensors",
        model_json="results/model/model.json",
        predictions="results/evaluation/predictions.tsv",
        expression=expression_files(),
        samples="results/split/samples.tsv",
        genes="results/genes/selected_genes.tsv",
        marker_sets=marker_sets_file(),
    output:
        report(
            "results/saliency/validation.tsv",
            caption="../report/saliency_validation.rst",
            category="5. Saliency",
        ),
    log:
        "logs/saliency_validation.log",
    benchmark:
        "benchmarks/saliency_validation.tsv"
    conda:
        "../../envs/torch.yaml"
    params:
        settings=ValidationSettings.from_config(config),
    script:
        "../../scripts/saliency_validation.py"
