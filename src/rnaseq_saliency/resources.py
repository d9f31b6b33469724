"""What training jobs ask Snakemake for: their threads and the ``gpu`` resource.

With ``train.replicates: N`` the N training jobs (rules ``train`` and ``train_replicate``) are
independent, so Snakemake may run them side by side: each asks for an equal share of the cores
(``training_threads``), and torch uses exactly that many threads while it trains
(``rnaseq_saliency.training``). A job that trains on a GPU also asks for one unit of the ``gpu``
resource, so that a machine with one GPU (``profiles/default``: ``resources: gpu: 1``) trains one
replicate at a time there; a CPU-only job asks for none and is limited by cores alone. This
module imports neither torch nor anything slow: the workflow calls it while it is parsed.
"""

from __future__ import annotations

import os
import platform
import sys

NVIDIA_DRIVER = "/proc/driver/nvidia/version"


def training_threads(cores: int | None, replicates: int) -> int:
    """Each replicate job's threads: an equal share of ``cores`` (all of them for one), >= 1."""
    if replicates < 1:
        raise ValueError(f"config key train.replicates: {replicates} is not >= 1")
    return max(1, int(cores or 1) // replicates)


def gpu_present() -> bool:
    """Whether ``train.device: auto`` would find a GPU here: an NVIDIA driver is loaded, or
    this is Apple silicon (MPS). A cheap guess, without importing torch."""
    apple_silicon = sys.platform == "darwin" and platform.machine() == "arm64"
    return os.path.exists(NVIDIA_DRIVER) or apple_silicon


def training_gpus(device: str) -> int:
    """The ``gpu`` resource a training job asks for with ``train.device`` ``device``."""
    if device == "cpu":
        return 0
    if device in ("cuda", "mps"):
        return 1
    return int(gpu_present())
