"""``results/model/history.tsv``: one row per training epoch (rule ``train`` writes it).

Its own light module, so that the training-curves job reads it without importing torch.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from rnaseq_saliency.fileio import atomic_path

HISTORY_COLUMNS = [
    "epoch",
    "train_loss",
    "train_accuracy",
    "val_loss",
    "val_accuracy",
    "val_macro_f1",
    "lr",
    "seconds",
    "best",
]


@dataclass
class EpochRecord:
    """One row of history.tsv. Training figures are running means over the epoch's batches
    (dropout on); validation figures are computed after the epoch in eval mode. NaN where
    there are no validation rows. ``val_macro_f1`` (last, as it was added later) is the
    validation macro-F1."""

    epoch: int
    train_loss: float
    train_accuracy: float
    val_loss: float
    val_accuracy: float
    lr: float
    seconds: float
    best: bool = False
    val_macro_f1: float = math.nan


def write_history(path: str | os.PathLike[str], history: Sequence[EpochRecord]) -> None:
    """history.tsv: one row per epoch; ``best`` marks the epoch whose weights were kept."""
    frame = pd.DataFrame([vars(record) for record in history], columns=HISTORY_COLUMNS)
    frame["best"] = frame["best"].map({True: "true", False: "false"})
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, sep="\t", index=False, na_rep="NA", float_format="%.6g")


_HISTORY_REQUIRED = ["epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy"]


def read_history(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read history.tsv and check its columns."""
    history = pd.read_csv(path, sep="\t")
    missing = [column for column in _HISTORY_REQUIRED if column not in history.columns]
    if missing:
        raise ValueError(
            f"{path}: missing column(s) {missing}; expected at least {_HISTORY_REQUIRED}"
        )
    if history.empty:
        raise ValueError(f"{path}: no epochs recorded")
    return history
