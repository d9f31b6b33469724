# Replicate models (train.replicates > 1): their maps by the chosen method, the consensus that
# rule top_genes ranks by, and the retraining stability (rnaseq_saliency.consensus).
REPLICATE_TARGETS = (
    [
        "results/saliency/replicate_stability.tsv",
        "results/saliency/replicate_stability.png",
    ]
    if len(REPLICATES) > 1
    else []
)


rule de_statistic:
    input:
        expression=expression_files(),
        samples="results/split/samples.tsv",
        genes="results/genes/selected_genes.tsv",
    output:
        "results/saliency/de_statistic.parquet",
    log:
        "logs/de_statistic.log",
    benchmark:
        "benchmarks/de_statistic.tsv"
    conda:
        "../../envs/data.yaml"
    params:
        tissues=TissueSelection.from_config(config),
    script:
        "../../scripts/de_statistic.py"


rule saliency:
    input:
        weights="results/model/model.safetensors",
        model_json="results/model/model.json",
        predictions="results/evaluation/predictions.tsv",
        expression="results/expression/{tissue}.parquet",
        de_statistic="results/saliency/de_statistic.parquet",
    output:
        # One file per method of saliency.methods, then the deletion curves of all of them.
        maps=expand(
            "results/saliency/maps/{method}/{{tissue}}.parquet",
            method=SALIENCY_METHODS,
        ),
        faithfulness="results/saliency/faithfulness/{tissue}.tsv",
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


rule choose_method:
    input:
        expand("results/saliency/faithfulness/{tissue}.tsv", tissue=TISSUES),
    output:
        faithfulness="results/saliency/faithfulness.tsv",
        chosen="results/saliency/chosen_method.json",
    log:
        "logs/choose_method.log",
    benchmark:
        "benchmarks/choose_method.tsv"
    conda:
        "../../envs/data.yaml"
    params:
        settings=MethodChoice.from_config(config),
    script:
        "../../scripts/choose_method.py"


rule top_genes:
    input:
        maps=all_maps_files(),
        chosen="results/saliency/chosen_method.json",
        genes="results/genes/selected_genes.tsv",
        # Replicates 1.. (none with train.replicates: 1): the ranking is then their consensus.
        replicates=replicate_maps_files(),
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
        maps=all_maps_files(),
        weights="results/model/model.safetensors",
        model_json="results/model/model.json",
        predictions="results/evaluation/predictions.tsv",
        expression=expression_files(),
        de_statistic="results/saliency/de_statistic.parquet",
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
        tissues=TissueSelection.from_config(config),
        settings=ValidationSettings.from_config(config),
    script:
        "../../scripts/saliency_validation.py"


rule saliency_methods:
    input:
        faithfulness="results/saliency/faithfulness.tsv",
        validation="results/saliency/validation.tsv",
        chosen="results/saliency/chosen_method.json",
        maps=all_maps_files(),
        genes="results/genes/selected_genes.tsv",
    output:
        table=report(
            "results/saliency/methods.tsv",
            caption="../report/saliency_methods.rst",
            category="5. Saliency",
        ),
        figure=report(
            "results/saliency/methods.png",
            caption="../report/saliency_methods.rst",
            category="5. Saliency",
        ),
        top_genes="results/saliency/top_genes_by_method.tsv",
    log:
        "logs/saliency_methods.log",
    benchmark:
        "benchmarks/saliency_methods.tsv"
    conda:
        "../../envs/data.yaml"
    params:
        tissues=TissueSelection.from_config(config),
        settings=TopGenesSettings.from_config(config),
    script:
        "../../scripts/saliency_methods.py"


rule replicate_saliency:
    input:
        weights="results/model/replicates/{replicate}/model.safetensors",
        model_json="results/model/replicates/{replicate}/model.json",
        predictions="results/evaluation/predictions.tsv",
        expression="results/expression/{tissue}.parquet",
        # The method chosen once, on replicate 0's validation evidence.
        chosen="results/saliency/chosen_method.json",
    output:
        "results/saliency/replicates/{replicate}/{tissue}.parquet",
    log:
        "logs/replicate_saliency/{replicate}/{tissue}.log",
    benchmark:
        "benchmarks/replicate_saliency/{replicate}/{tissue}.tsv"
    conda:
        "../../envs/torch.yaml"
    params:
        tissue=lambda wildcards: wildcards.tissue,
        replicate=lambda wildcards: wildcards.replicate,
        settings=SaliencySettings.from_config(config),
    script:
        "../../scripts/replicate_saliency.py"


rule replicate_stability:
    input:
        "results/saliency/top_genes.tsv",
    output:
        table=report(
            "results/saliency/replicate_stability.tsv",
            caption="../report/replicate_stability.rst",
            category="5. Saliency",
        ),
        figure=report(
            "results/saliency/replicate_stability.png",
            caption="../report/replicate_stability.rst",
            category="5. Saliency",
        ),
    log:
        "logs/replicate_stability.log",
    benchmark:
        "benchmarks/replicate_stability.tsv"
    conda:
        "../../envs/data.yaml"
    params:
        tissues=TissueSelection.from_config(config),
        settings=TopGenesSettings.from_config(config),
    script:
        "../../scripts/replicate_stability.py"
