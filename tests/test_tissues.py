from __future__ import annotations

from datetime import datetime

import pytest

from rnaseq_saliency.gtex import donor_id
from rnaseq_saliency.naming import run_name
from rnaseq_saliency.settings import TrainingSettings
from rnaseq_saliency.tissues import all_labels, resolve_tissues, smtsd_to_label, tissue_table


def test_table_has_the_54_v8_tissues_with_their_counts() -> None:
    table = tissue_table()
    assert len(table) == 54
    counts = {t.label: t.n_samples_v8 for t in table}
    assert sum(counts.values()) == 17382
    assert counts["kidney_medulla"] == 4 and counts["muscle_skeletal"] == 803


@pytest.mark.parametrize(
    ("smtsd", "label"),
    [
        ("Brain - Spinal cord (cervical c-1)", "brain_spinal_cord_cervical_c-1"),
        ("Whole Blood", "whole_blood"),
        ("Cells - EBV-transformed lymphocytes", "cells_ebv-transformed_lymphocytes"),
        ("Brain - Frontal Cortex (BA9)", "brain_frontal_cortex_ba9"),
    ],
)
def test_smtsd_to_label(smtsd: str, label: str) -> None:
    assert smtsd_to_label(smtsd) == label


def test_every_table_label_is_its_smtsd_mapped() -> None:
    assert all(smtsd_to_label(t.smtsd) == t.label for t in tissue_table())


def test_resolve_tissues_all_and_list() -> None:
    assert resolve_tissues("all") == all_labels()
    assert resolve_tissues(["liver", "pancreas"]) == ["liver", "pancreas"]


def test_unknown_tissue_lists_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="unknown tissue label") as error:
        resolve_tissues(["liver", "livr"])
    assert "livr" in str(error.value) and "whole_blood" in str(error.value)


def test_donor_id() -> None:
    assert donor_id("GTEX-1117F-0226-SM-5GZZ7") == "GTEX-1117F"
    with pytest.raises(ValueError, match="not GTEx-shaped"):
        donor_id("sample7")


def test_run_name_is_readable_and_unique_per_start() -> None:
    config = {
        "model": {
            "preset": "default", "hidden": [512, 256, 128], "dropout": 0.2, "activation": "relu",
        },
        "train": {
            "device": "auto", "epochs": 20, "batch_size": 256, "lr": 0.001, "weight_decay": 0.0001,
            "patience": 5, "min_delta": 0.0, "class_balance": "none", "seed": 0,
            "select_on": "macro_f1", "label_smoothing": 0.1, "input_dropout": 0.2,
        },
        "data": {"measure": "tpm"},
    }  # fmt: skip
    settings = TrainingSettings.from_config(config)
    started = datetime(2026, 12, 2, 17, 30, 5)
    name = run_name(settings, started)
    assert name == "20261202-173005_h512-256-128_relu_do0.2_lr0.001_bs256_wd0.0001_seed0"
    assert run_name(settings, datetime(2026, 12, 2, 17, 30, 6)) != name
    original = settings._replace(preset="original")
    assert run_name(original, started).startswith("20261202-173005_original_lr0.001")
