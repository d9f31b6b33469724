"""Logging set-up shared by the Snakemake script adapters."""

from __future__ import annotations

import logging
import os
import sys


def setup_logging(log_path: str | os.PathLike[str] | None = None) -> logging.Logger:
    """Send the package's log records to ``log_path`` (the rule's log file) and to stderr."""
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_path:
        os.makedirs(os.path.dirname(os.fspath(log_path)) or ".", exist_ok=True)
        handlers.append(logging.FileHandler(log_path, mode="w"))
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        handlers=handlers,
        force=True,
    )
    return logging.getLogger("rnaseq_saliency")
