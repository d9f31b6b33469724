"""Replicate models and their ensemble: ``results/model/ensemble.json`` and the ensemble call.

With ``train.replicates: N`` the workflow trains N models on the same split and the same
augmented rows, differing only in the seed (replicate ``r`` uses ``train.seed + r``): replicate 0
is ``results/model/`` itself, replicates 1.. live in ``results/model/replicates/<r>/``, each a
model directory that ``rnaseq_saliency.model.load_model`` reads.

The ensemble's logits are the mean of its members' **raw** (uncalibrated) logits, and its call
is their argmax. Its probabilities are calibrated once, on the validation split, by one
temperature fitted to those mean logits (``rnaseq_saliency.calibration.fit_temperature``; the
members' own temperatures play no part), so that the ECE and NLL that evaluation reports are the
ensemble's. Averaging logits rather than probabilities keeps the ensemble a network (an
``nn.Module`` whose forward gives the mean logits), so that evaluation, prediction and Captum
attributions run on it unchanged, and the temperature fitted afterwards decides how sharp the
averaged call is. An ensemble of one member is that model, bit for bit: its temperature is the
one fitted in rule ``train`` (copied, not refitted), and ``load_classifier`` returns the member
itself.

``ensemble.json`` (written by rule ``ensemble`` for any replicate count, so that changing the
count never leaves a stale file) lists the members as paths relative to the model directory,
each with its seed and the SHA-256 of its weights, and the ensemble's calibration fit.
``load_classifier(results/model)`` returns the ensemble when the file is there, and refuses
members whose weights have changed since it was written.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from rnaseq_saliency.fileio import atomic_path
from rnaseq_saliency.model import JSON_FILE, TrainedModel, load_model

log = logging.getLogger(__name__)

ENSEMBLE_FILE = "ensemble.json"
FORMAT = "rnaseq-saliency-ensemble"
FORMAT_VERSION = 1
REPLICATES_DIR = "replicates"
COMBINE = "mean of the members' raw logits; call = argmax; one temperature fitted on validation"


def replicate_dir(model_dir: str | os.PathLike[str], replicate: int) -> Path:
    """Where replicate ``replicate`` lives: ``model_dir`` itself for 0, else
    ``model_dir/replicates/<replicate>``."""
    if replicate < 0:
        raise ValueError(f"replicate {replicate}: must be >= 0")
    base = Path(model_dir)
    return base if replicate == 0 else base / REPLICATES_DIR / str(replicate)


class MeanLogits(nn.Module):
    """The ensemble's network: the mean of its members' logits (same input, same output)."""

    def __init__(self, members: Sequence[nn.Module]) -> None:
        super().__init__()
        if not members:
            raise ValueError("an ensemble needs at least one member")
        self.members = nn.ModuleList(members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([member(x) for member in self.members]).mean(dim=0)


@dataclass
class Ensemble(TrainedModel):
    """A ``TrainedModel`` whose network is ``MeanLogits`` of ``members`` and whose temperature is
    the ensemble's (``metadata["calibration"]``). ``member_paths`` are the members' directories
    relative to the model directory, in replicate order."""

    members: list[TrainedModel] = field(default_factory=list)
    member_paths: list[str] = field(default_factory=list)

    @property
    def member_seeds(self) -> list[int]:
        return [member_seed(member) for member in self.members]


def member_seed(model: TrainedModel) -> int:
    """The training seed that model.json records (``config.train.seed``)."""
    return int(model.metadata["config"]["train"]["seed"])


def _check_alike(members: Sequence[TrainedModel], names: Sequence[str]) -> None:
    """Members must share genes, tissues and input scaling (same rows, same split)."""
    first = members[0]
    for member, name in zip(members[1:], names[1:], strict=True):
        if member.gene_ids != first.gene_ids or member.tissues != first.tissues:
            raise ValueError(
                f"ensemble member {name}: its genes or tissues differ from {names[0]}'s; "
                "replicates must be trained on the same split and rows"
            )
        if not (np.array_equal(member.mean, first.mean) and np.array_equal(member.std, first.std)):
            raise ValueError(
                f"ensemble member {name}: its input scaling differs from {names[0]}'s; "
                "replicates must be trained on the same training rows"
            )


def assemble(
    members: Sequence[TrainedModel],
    member_paths: Sequence[str],
    calibration: dict[str, Any] | None = None,
) -> Ensemble:
    """The ensemble of ``members`` (checked alike); ``calibration`` (``temperature`` ...)
    becomes its temperature, T = 1 without one. Its metadata is the first member's (genes,
    measure, ...) with the ensemble's calibration and an ``ensemble`` section."""
    if len(members) != len(member_paths) or not members:
        raise ValueError("an ensemble needs one path per member and at least one member")
    _check_alike(members, member_paths)
    first = members[0]
    metadata = dict(first.metadata)
    metadata["calibration"] = dict(calibration or {"method": "none", "temperature": 1.0})
    metadata["ensemble"] = {"members": list(member_paths), "combine": COMBINE}
    return Ensemble(
        network=MeanLogits([member.network for member in members]).eval(),
        gene_ids=list(first.gene_ids),
        gene_names=list(first.gene_names),
        tissues=list(first.tissues),
        mean=first.mean,
        std=first.std,
        metadata=metadata,
        members=list(members),
        member_paths=list(member_paths),
    )


def ensemble_calibration(
    members: Sequence[TrainedModel],
    member_paths: Sequence[str],
    val_matrix: np.ndarray,
    val_tissues: Sequence[str],
) -> dict[str, Any]:
    """The ensemble's calibration: one temperature fitted to the mean raw logits of the
    validation rows (raw expression ``val_matrix``, their tissues ``val_tissues``).

    One member: its own calibration from model.json, unchanged (its temperature was fitted in
    rule ``train`` on the same validation rows), so that ``replicates: 1`` changes nothing.
    """
    from rnaseq_saliency.calibration import fit_temperature

    if len(members) == 1:
        return dict(members[0].metadata["calibration"])
    ensemble = assemble(members, member_paths)
    position = {tissue: i for i, tissue in enumerate(ensemble.tissues)}
    unknown = sorted(set(val_tissues) - set(position))
    if unknown:
        raise ValueError(f"validation rows: tissue(s) {unknown} are not among the model's")
    true_index = np.asarray([position[t] for t in val_tissues], dtype=np.int64)
    logits = ensemble.logits(val_matrix) if len(true_index) else np.empty((0, len(position)))
    return fit_temperature(logits, true_index).to_json()


def ensemble_description(
    members: Sequence[TrainedModel],
    member_paths: Sequence[str],
    calibration: dict[str, Any],
) -> dict[str, Any]:
    """The content of ensemble.json."""
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "combine": COMBINE,
        "members": [
            {
                "path": path,
                "seed": member_seed(member),
                "weights_sha256": member.metadata["weights"]["sha256"],
            }
            for member, path in zip(members, member_paths, strict=True)
        ],
        "calibration": calibration,
    }


def write_ensemble(description: dict[str, Any], path: str | os.PathLike[str]) -> None:
    """Write ``ensemble.json`` atomically (``read_ensemble`` reads it back)."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(description, indent=2) + "\n", encoding="utf-8")


def read_ensemble(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read ``ensemble.json``, checking its format and that it lists members."""
    description = json.loads(Path(path).read_text(encoding="utf-8"))
    if description.get("format") != FORMAT:
        raise ValueError(f"{path}: not an rnaseq-saliency ensemble description")
    if description.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"{path}: format_version {description.get('format_version')!r} is not supported "
            f"(expects {FORMAT_VERSION})"
        )
    members = description.get("members")
    if not isinstance(members, list) or not members:
        raise ValueError(f"{path}: key 'members' must list at least one model directory")
    for member in members:
        if not isinstance(member, dict) or not {"path", "weights_sha256"} <= member.keys():
            raise ValueError(f"{path}: each member needs 'path' and 'weights_sha256'")
    if "temperature" not in (description.get("calibration") or {}):
        raise ValueError(f"{path}: key 'calibration.temperature' is missing")
    return description


def load_classifier(model_dir: str | os.PathLike[str]) -> TrainedModel:
    """What evaluation and prediction apply: the ensemble that ``model_dir/ensemble.json``
    describes, or without that file the model of ``model_dir`` (``load_model``).

    An ensemble of one member is returned as that member's ``TrainedModel``, unchanged. A member
    whose weights differ from the SHA-256 that ensemble.json records is refused: the ensemble
    (and its temperature) was made from other models.
    """
    directory = Path(model_dir)
    path = directory / ENSEMBLE_FILE
    if not path.is_file():
        return load_model(directory)
    description = read_ensemble(path)
    members, paths = [], []
    for entry in description["members"]:
        member = load_model(directory / entry["path"])
        if member.metadata["weights"]["sha256"] != entry["weights_sha256"]:
            raise ValueError(
                f"{path}: member {entry['path']} has other weights than when the ensemble was "
                f"made ({directory / entry['path'] / JSON_FILE}); rerun the workflow"
            )
        members.append(member)
        paths.append(str(entry["path"]))
    if len(members) == 1:
        return members[0]
    return assemble(members, paths, description["calibration"])


def ensemble_rule(
    member_jsons: Sequence[str | os.PathLike[str]],
    expression: Sequence[str | os.PathLike[str]],
    samples_path: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    threads: int | None = None,
) -> dict[str, Any]:
    """Rule ``ensemble``: load the replicates (their model.json paths, replicate order), fit
    the ensemble's temperature on the validation rows, write ensemble.json beside them."""
    from rnaseq_saliency.datasets import load_split_rows, read_samples

    if threads:
        torch.set_num_threads(int(threads))
    root = Path(out_path).parent
    member_dirs = [Path(p).parent for p in member_jsons]
    paths = [os.path.relpath(d, root) for d in member_dirs]
    members = [load_model(d) for d in member_dirs]
    if len(members) == 1:
        calibration = ensemble_calibration(members, paths, np.empty((0, 0)), [])
    else:
        val_rows = load_split_rows(expression, read_samples(samples_path), "val")
        if val_rows.sample_ids and list(val_rows.gene_ids) != list(members[0].gene_ids):
            raise ValueError(
                "the expression files' genes differ from the replicates' gene_ids (model.json); "
                "the models were trained on another gene selection"
            )
        calibration = ensemble_calibration(members, paths, val_rows.matrix, val_rows.tissues)
    description = ensemble_description(members, paths, calibration)
    write_ensemble(description, out_path)
    log.info(
        "ensemble of %d member(s) (%s): temperature %.4g",
        len(members),
        ", ".join(paths),
        float(calibration["temperature"]),
    )
    return description
