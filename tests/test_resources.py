"""Tests for rnaseq_saliency.resources: what replicate training jobs ask Snakemake for."""

from __future__ import annotations

import pytest

from rnaseq_saliency import resources


def test_replicates_share_the_cores() -> None:
    assert resources.training_threads(8, 1) == 8  # one replicate: all cores, as before
    assert resources.training_threads(8, 3) == 2
    assert resources.training_threads(2, 3) == 1  # never below one thread
    assert resources.training_threads(None, 2) == 1
    with pytest.raises(ValueError, match=r"train\.replicates"):
        resources.training_threads(4, 0)


def test_only_a_job_that_can_use_a_gpu_asks_for_one(monkeypatch) -> None:
    assert resources.training_gpus("cpu") == 0
    assert resources.training_gpus("cuda") == resources.training_gpus("mps") == 1
    monkeypatch.setattr(resources, "gpu_present", lambda: False)
    assert resources.training_gpus("auto") == 0
    monkeypatch.setattr(resources, "gpu_present", lambda: True)
    assert resources.training_gpus("auto") == 1


def test_gpu_present_looks_for_the_nvidia_driver(monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(resources.sys, "platform", "linux")
    monkeypatch.setattr(resources, "NVIDIA_DRIVER", str(tmp_path / "version"))
    assert not resources.gpu_present()
    (tmp_path / "version").write_text("NVRM version: 550\n")
    assert resources.gpu_present()
