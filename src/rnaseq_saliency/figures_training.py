"""The training-curves figure (rule ``training_curves``) from ``results/model/history.tsv``."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from rnaseq_saliency.history import read_history


def best_epoch(history: pd.DataFrame) -> int:
    """The epoch whose weights were kept: the ``best`` column, else the lowest monitored loss."""
    if "best" in history.columns:
        flagged = history.loc[history["best"].astype(str).str.lower() == "true", "epoch"]
        if len(flagged):
            return int(flagged.iloc[0])
    monitored = history["val_loss"] if history["val_loss"].notna().any() else history["train_loss"]
    return int(history["epoch"].iloc[int(np.nanargmin(monitored.to_numpy()))])


def plot_training_curves(
    history_tsv: str | os.PathLike[str], out_png: str | os.PathLike[str]
) -> None:
    """Loss and accuracy per epoch, training vs validation, with the kept epoch marked."""
    from matplotlib.ticker import MaxNLocator

    from rnaseq_saliency.plotting import pyplot, save_png

    plt = pyplot()

    history = read_history(history_tsv)
    kept = best_epoch(history)
    figure, axes = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    for axis, metric, label in (
        (axes[0], "loss", "cross-entropy loss"),
        (axes[1], "accuracy", "accuracy"),
    ):
        axis.plot(history["epoch"], history[f"train_{metric}"], marker="o", label="training")
        if history[f"val_{metric}"].notna().any():
            axis.plot(history["epoch"], history[f"val_{metric}"], marker="o", label="validation")
        axis.axvline(kept, color="grey", linestyle="--", linewidth=1, label=f"kept epoch {kept}")
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.set_xlabel("epoch")
        axis.set_ylabel(label)
        axis.grid(alpha=0.3)
        axis.legend()
    axes[1].set_ylim(top=1.02)  # room for markers at accuracy 1
    figure.suptitle("Training curves (training: running mean over the epoch, dropout on)")
    # metadata without the matplotlib version keeps the PNG byte-identical across versions.
    save_png(figure, out_png, dpi=150, metadata={"Software": None})
    plt.close(figure)
