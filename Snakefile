# rnaseq-saliency: GTEx tissue classifier explained with per-tissue saliency maps.
# Edit config/config.yaml, then: snakemake --cores N   (report: snakemake --report results/report.html)


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/split.smk"
include: "workflow/rules/augment.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/saliency.smk"
include: "workflow/rules/enrichment.smk"
include: "workflow/rules/predict.smk"
include: "workflow/rules/sweep.smk"


rule all:
    default_target: True
    input:
        final_targets(),
