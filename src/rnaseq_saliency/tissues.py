"""GTEx tissues: labels, the SMTSD strings they come from, and v8 sample counts."""

from __future__ import annotations

import csv
import hashlib
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources


@dataclass(frozen=True)
class Tissue:
    label: str
    smtsd: str
    n_samples_v8: int
    uberon: str


def smtsd_to_label(smtsd: str) -> str:
    """Map a GTEx SMTSD string to its snake_case tissue label, as GTEx names its files.

    Drop parentheses, turn `` - `` and spaces into ``_``, lowercase:
    ``Brain - Spinal cord (cervical c-1)`` -> ``brain_spinal_cord_cervical_c-1``.
    """
    text = smtsd.strip().replace("(", "").replace(")", "")
    text = text.replace(" - ", "_")
    text = re.sub(r"\s+", "_", text)
    return text.lower()


@cache
def tissue_table() -> tuple[Tissue, ...]:
    """The 54 GTEx v8 tissues that have per-tissue expression files, in GTEx's table order."""
    text = resources.files(__package__).joinpath("data/gtex_v8_tissues.tsv").read_text()
    rows = csv.DictReader(text.splitlines(), delimiter="\t")
    return tuple(
        Tissue(
            label=row["label"],
            smtsd=row["SMTSD"],
            n_samples_v8=int(row["n_rnaseq_samples_v8"]),
            uberon=row["UBERON"],
        )
        for row in rows
    )


def all_labels() -> list[str]:
    return [tissue.label for tissue in tissue_table()]


def resolve_tissues(requested: str | list[str]) -> list[str]:
    """Turn the config's ``data.tissues`` (``all`` or a list of labels) into a list of labels.

    Raises ValueError naming every unknown label and listing the valid ones.
    """
    valid = all_labels()
    if requested == "all":
        return valid
    if isinstance(requested, str):
        requested = [requested]
    unknown = [label for label in requested if label not in valid]
    if unknown:
        raise ValueError(
            f"config key data.tissues: unknown tissue label(s) {unknown}; "
            f"valid labels are 'all' or any of: {', '.join(valid)}"
        )
    if len(set(requested)) != len(requested):
        raise ValueError(f"config key data.tissues: labels repeat in {requested}")
    return list(requested)


def tissue_seed(seed: int, tissue: str) -> list[int]:
    """Entropy for ``numpy.random.default_rng``: the seed and a stable 64-bit hash of the tissue.

    Python's ``hash()`` of a string changes between interpreter runs, so it is not used.
    """
    digest = hashlib.sha256(tissue.encode("utf-8")).digest()
    return [int(seed), int.from_bytes(digest[:8], "little")]


@cache
def _organs() -> dict[str, str]:
    text = resources.files(__package__).joinpath("data/gtex_v8_tissues.tsv").read_text()
    return {row["label"]: row["SMTS"] for row in csv.DictReader(text.splitlines(), delimiter="\t")}


def organ_of(label: str) -> str:
    """The organ of a tissue label: GTEx's SMTS (``brain_cortex`` -> ``Brain``). GTEx files
    cultured fibroblasts under Skin and EBV-transformed lymphocytes under Blood. A label
    outside GTEx's table is its own organ."""
    return _organs().get(label, label)
