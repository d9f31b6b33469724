rule demo:
    output:
        gct=expand(
            "resources/demo/{name}",
            name=[
                gtex.tissue_file_name(RELEASE, MEASURE, t)
                for t in resolve_tissues("all")
            ],
        ),
        attributes=f"resources/demo/{gtex.attributes_file_name(RELEASE)}",
        gtf=f"resources/demo/{gtex.gtf_file_name(RELEASE)}",
        specific_genes="resources/demo/demo_tissue_specific_genes.tsv",
        subjects=f"resources/demo/{gtex.subjects_file_name(RELEASE)}",
    log:
        "logs/demo.log",
    benchmark:
        "benchmarks/demo.tsv"
    conda:
        "../../envs/data.yaml"
    params:
        settings=DemoSettings.from_config(config),
    script:
        "../../scripts/demo.py"


rule demo_matrix:
    input:
        expand(
            "resources/demo/{name}",
            name=[
                gtex.tissue_file_name(RELEASE, MEASURE, t)
                for t in resolve_tissues("all")
            ],
        ),
    output:
        f"resources/demo/{gtex.matrix_file_name(RELEASE, MEASURE)}",
    log:
        "logs/demo_matrix.log",
    benchmark:
        "benchmarks/demo_matrix.tsv"
    conda:
        "../../envs/data.yaml"
    script:
        "../../scripts/demo_matrix.py"


rule download:
    output:
        file="resources/gtex/{release}/{filename}",
        checksum="resources/gtex/{release}/{filename}.sha256",
    log:
        "logs/download/{release}/{filename}.log",
    benchmark:
        "benchmarks/download/{release}/{filename}.tsv"
    wildcard_constraints:
        filename=r"[^/]+(?<!\.sha256)",
    retries: 0
    conda:
        "../../envs/data.yaml"
    script:
        "../../scripts/download.py"


rule select_genes:
    input:
        gtf=raw_gtf_file(),
        id_list=input_filter_files(),
    output:
        "results/genes/selected_genes.tsv",
    log:
        "logs/select_genes.log",
    benchmark:
        "benchmarks/select_genes.tsv"
    conda:
        "../../envs/data.yaml"
    params:
        settings=GeneSelectionSettings.from_config(config),
    script:
        "../../scripts/select_genes.py"


# data.layout decides which rule writes the expression files: one job per tissue file, or one
# job that reads GTEx's whole-matrix file once.
if LAYOUT == "per_tissue":

    rule ingest:
        input:
            gct=raw_tissue_file,
            attributes=raw_attributes_file(),
            genes="results/genes/selected_genes.tsv",
        output:
            "results/expression/{tissue}.parquet",
        log:
            "logs/ingest/{tissue}.log",
        benchmark:
            "benchmarks/ingest/{tissue}.tsv"
        conda:
            "../../envs/data.yaml"
        params:
            tissue=lambda wildcards: wildcards.tissue,
        script:
            "../../scripts/ingest.py"

else:

    rule ingest_matrix:
        input:
            gct=raw_matrix_file(),
            attributes=raw_attributes_file(),
            genes="results/genes/selected_genes.tsv",
        output:
            expression_files(),
        log:
            "logs/ingest_matrix.log",
        benchmark:
            "benchmarks/ingest_matrix.tsv"
        conda:
            "../../envs/data.yaml"
        threads: 2
        params:
            tissues=TissueSelection.from_config(config),
        script:
            "../../scripts/ingest_matrix.py"


rule expression_summary:
    input:
        attributes=raw_attributes_file(),
        expression=expression_files(),
    output:
        report(
            "results/expression/summary.tsv",
            caption="../report/expression_summary.rst",
            category="1. Data",
            labels={"table": "samples kept and attributes rows ignored"},
        ),
    log:
        "logs/expression_summary.log",
    benchmark:
        "benchmarks/expression_summary.tsv"
    conda:
        "../../envs/data.yaml"
    params:
        tissues=TissueSelection.from_config(config),
    script:
        "../../scripts/expression_summary.py"
