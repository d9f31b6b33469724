# Issue 21: what the salient genes mean (preranked gene-set enrichment) and whether they are
# shortcuts (sex, chrM, ribosomal, histone genes; sample covariates).


rule enrichment:
    input:
        mean_matrix="results/saliency/mean_saliency.parquet",
        genes="results/genes/selected_genes.tsv",
        gene_sets=gene_set_files(),
    output:
        expand("results/enrichment/{tissue}.tsv", tissue=TISSUES),
    log:
        "logs/enrichment.log",
    benchmark:
        "benchmarks/enrichment.tsv"
    conda:
        "../../envs/data.yaml"
    threads: 2
    params:
        tissues=TissueSelection.from_config(config),
        settings=EnrichmentSettings.from_config(config),
    script:
        "../../scripts/enrichment.py"


rule enrichment_summary:
    input:
        expand("results/enrichment/{tissue}.tsv", tissue=TISSUES),
    output:
        report(
            "results/enrichment/summary.png",
            caption="../report/enrichment.rst",
            category="5. Saliency",
        ),
    log:
        "logs/enrichment_summary.log",
    benchmark:
        "benchmarks/enrichment_summary.tsv"
    conda:
        "../../envs/data.yaml"
    params:
        tissues=TissueSelection.from_config(config),
    script:
        "../../scripts/enrichment_summary.py"


rule shortcuts:
    input:
        mean_matrix="results/saliency/mean_saliency.parquet",
        genes="results/genes/selected_genes.tsv",
        gtf=raw_gtf_file(),
        samples="results/split/samples.tsv",
        expression=expression_files(),
        attributes=raw_attributes_file(),
        subjects=raw_subjects_file(),
    output:
        table=report(
            "results/saliency/shortcuts.tsv",
            caption="../report/shortcuts.rst",
            category="5. Saliency",
        ),
        figure=report(
            "results/saliency/shortcuts.png",
            caption="../report/shortcuts.rst",
            category="5. Saliency",
        ),
    log:
        "logs/shortcuts.log",
    benchmark:
        "benchmarks/shortcuts.tsv"
    conda:
        "../../envs/data.yaml"
    params:
        tissues=TissueSelection.from_config(config),
        settings=ShortcutSettings.from_config(config),
    script:
        "../../scripts/shortcuts.py"
