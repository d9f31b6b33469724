"""Snakemake adapter for rule ``demo_matrix``: the demo's whole-matrix GCT, from its tissues."""

from rnaseq_saliency.demo import merge_gct_files
from rnaseq_saliency.logs import rule_log

with rule_log(snakemake) as log:
    merge_gct_files(list(snakemake.input), snakemake.output[0])
