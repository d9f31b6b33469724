"""rnaseq-saliency: a GTEx tissue classifier explained with per-tissue saliency maps.

The science lives here as small, pure functions; the Snakemake workflow calls them through
thin adapters in ``scripts/``. Heavy libraries (torch, matplotlib) are imported inside the
functions that need them, so that the many small per-tissue jobs start quickly.
"""

__version__ = "0.1.0"
