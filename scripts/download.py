"""Snakemake adapter for rule `download`: fetch one GTEx file, verified, its sha256 beside it."""

import sys

from rnaseq_saliency.download import download_gtex_file
from rnaseq_saliency.logs import rule_log

with rule_log(snakemake) as log:
    download_gtex_file(
        snakemake.config["data"],
        snakemake.wildcards.release,
        snakemake.wildcards.filename,
        snakemake.output.file,
        snakemake.output.checksum,
        # A bar redrawn with carriage returns helps at a terminal and floods a CI log.
        progress=sys.stderr.isatty(),
    )
