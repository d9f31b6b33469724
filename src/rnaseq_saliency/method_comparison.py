"""Every saliency method side by side (rule ``saliency_methods``).

``methods.tsv``: one row per method of ``saliency.methods``, each value a median over tissues:

- ``val_aopc`` / ``test_aopc``: the margin AOPC of deleting the method's top genes
  (``faithfulness``), on the validation split (what ``auto`` chooses by) and the test split;
  higher means the ranking names genes the model actually uses;
- ``val_aopc_ratio`` / ``test_aopc_ratio``: the same over the random genes' AOPC (floored at
  ``faithfulness.RANDOM_AOPC_FLOOR``); 1 is no better than chance;
- ``test_de_aopc``: the AOPC of deleting the top genes by the training split's t statistic,
  the model-free reference (the same for every method);
- ``marker_fraction``, ``de_overlap``, ``stability_overlap``, ``random_spearman``: the
  ``saliency_validation`` columns (higher is better for the first three; near 0 for the last).

``top_genes_by_method.tsv``: each method's top ``saliency.top_n`` genes per tissue, so a list can
be compared across methods; ``methods.png``: the per-tissue faithfulness and marker fraction of
each method.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from rnaseq_saliency.faithfulness import (
    aopc_table,
    median_aopc,
    read_chosen_method,
    read_faithfulness,
)
from rnaseq_saliency.fileio import atomic_path
from rnaseq_saliency.genes import read_selected_genes
from rnaseq_saliency.plotting import pyplot, save_png
from rnaseq_saliency.saliency import (
    TOP_GENES_COLUMNS,
    files_of_method,
    top_genes_per_tissue,
    top_genes_table,
)
from rnaseq_saliency.saliency_validation import SUMMARY_ROW, read_validation

log = logging.getLogger(__name__)

METHODS_COLUMNS = [
    "method",
    "chosen",
    "val_aopc",
    "val_aopc_ratio",
    "test_aopc",
    "test_aopc_ratio",
    "test_de_aopc",
    "marker_fraction",
    "de_overlap",
    "stability_overlap",
    "random_spearman",
]
_VALIDATION_MEASURES = ("marker_fraction", "de_overlap", "stability_overlap", "random_spearman")


def methods_table(
    faithfulness: pd.DataFrame, validation: pd.DataFrame, methods: Sequence[str], chosen: str
) -> pd.DataFrame:
    """One row per method: medians over tissues of every faithfulness and biology check."""
    aopc = aopc_table(faithfulness)
    val, test = median_aopc(aopc, "val"), median_aopc(aopc, "test")
    de = aopc.loc[aopc["split"] == "test"].groupby("method", sort=False)["de_aopc"].median()
    summary = validation.loc[validation["tissue"] == SUMMARY_ROW].set_index("method")
    rows = []
    for method in methods:
        row: dict[str, Any] = {"method": method, "chosen": method == chosen}
        for prefix, medians in (("val", val), ("test", test)):
            for column in ("aopc", "aopc_ratio"):
                value = medians[column].get(method, np.nan) if len(medians) else np.nan
                row[f"{prefix}_{column}"] = value
        row["test_de_aopc"] = de.get(method, np.nan)
        for measure in _VALIDATION_MEASURES:
            row[measure] = summary[measure].get(method, np.nan) if len(summary) else np.nan
        rows.append(row)
    return pd.DataFrame(rows, columns=METHODS_COLUMNS)


def per_tissue(
    faithfulness: pd.DataFrame, validation: pd.DataFrame, methods: Sequence[str]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Methods x tissues tables of the test split's AOPC ratio and of the marker fraction."""
    aopc = aopc_table(faithfulness)
    test = aopc.loc[aopc["split"] == "test"]
    ratio = test.pivot_table(index="method", columns="tissue", values="aopc_ratio", sort=False)
    tissues = list(dict.fromkeys(faithfulness["tissue"]))
    rows = validation.loc[validation["tissue"] != SUMMARY_ROW]
    markers = rows.pivot_table(
        index="method", columns="tissue", values="marker_fraction", sort=False, dropna=False
    )
    return (
        ratio.reindex(index=list(methods), columns=tissues),
        markers.reindex(index=list(methods), columns=tissues),
    )


def plot_methods(
    ratio: pd.DataFrame, markers: pd.DataFrame, chosen: str, out_png: str | os.PathLike[str]
) -> Any:
    """Two heatmaps, methods x tissues: faithfulness (log2 of the test-split AOPC ratio to
    random deletions) and the fraction of the top genes that are known markers."""
    plt = pyplot()
    tissues = [str(t) for t in ratio.columns]
    width = min(5.0 + 0.22 * len(tissues), 30.0)
    figure, axes = plt.subplots(2, 1, figsize=(width, 4.0 + 0.7 * len(ratio)), sharex=True)
    log_ratio = np.log2(ratio.to_numpy(dtype=np.float64).clip(min=2.0**-6))
    panels = (
        (log_ratio, "RdBu_r", "log2 AOPC / random AOPC (test split; > 0: better than chance)"),
        (markers.to_numpy(dtype=np.float64), "viridis", "marker fraction of the top genes"),
    )
    for ax, (values, cmap, label) in zip(axes, panels, strict=True):
        limit = np.nanmax(np.abs(values)) if np.isfinite(values).any() else 1.0
        bounds = {"vmin": -limit, "vmax": limit} if cmap == "RdBu_r" else {"vmin": 0, "vmax": 1}
        image = ax.imshow(
            np.ma.masked_invalid(values),
            aspect="auto",
            interpolation="nearest",
            cmap=plt.get_cmap(cmap).with_extremes(bad="#d9d9d9"),
            **bounds,
        )
        names = [f"{m} (chosen)" if m == chosen else str(m) for m in ratio.index]
        ax.set_yticks(range(len(names)), names, fontsize=8)
        figure.colorbar(image, ax=ax, fraction=0.03, pad=0.01).set_label(label, fontsize=7)
    axes[-1].set_xticks(range(len(tissues)), tissues, rotation=90, fontsize=7)
    axes[0].set_title(f"Saliency methods per tissue (chosen: {chosen})")
    save_png(figure, out_png, dpi=150, bbox_inches="tight", metadata={"Software": None})
    plt.close(figure)
    return figure


def top_genes_by_method(
    maps_files: Sequence[str | os.PathLike[str]],
    tissues: Sequence[str],
    methods: Sequence[str],
    genes: pd.DataFrame,
    top_n: int,
) -> pd.DataFrame:
    """Each method's top ``top_n`` genes per tissue (the ``top_genes`` columns, method last)."""
    ids, names = genes["gene_id"].tolist(), genes["gene_name"].tolist()
    blocks = [
        top_genes_per_tissue(
            top_genes_table(files_of_method(maps_files, method), tissues, ids, names)[0], top_n
        )
        for method in methods
    ]
    return pd.concat(blocks, ignore_index=True)[TOP_GENES_COLUMNS]


def run_saliency_methods(
    faithfulness_path: str | os.PathLike[str],
    validation_path: str | os.PathLike[str],
    chosen_path: str | os.PathLike[str],
    maps_files: Sequence[str | os.PathLike[str]],
    tissues: Sequence[str],
    genes_path: str | os.PathLike[str],
    top_n: int,
    out_tsv: str | os.PathLike[str],
    out_png: str | os.PathLike[str],
    out_top_genes: str | os.PathLike[str],
) -> pd.DataFrame:
    """The ``saliency_methods`` rule: methods.tsv, methods.png, top_genes_by_method.tsv."""
    faithfulness = read_faithfulness(faithfulness_path)
    validation = read_validation(validation_path)
    chosen = read_chosen_method(chosen_path)
    methods = list(dict.fromkeys(faithfulness["method"]))
    table = methods_table(faithfulness, validation, methods, chosen)
    with atomic_path(out_tsv) as tmp:
        table.to_csv(tmp, sep="\t", index=False, float_format="%.4g", na_rep="NA")
    plot_methods(*per_tissue(faithfulness, validation, methods), chosen, out_png)
    genes = read_selected_genes(genes_path)
    by_method = top_genes_by_method(maps_files, tissues, methods, genes, top_n)
    with atomic_path(out_top_genes) as tmp:
        by_method.to_csv(tmp, sep="\t", index=False, float_format="%.6g")
    for row in table.itertuples():
        log.info(
            "%s%s: test margin AOPC %.3g (x%.3g random), marker fraction %.2f",
            row.method,
            " (chosen)" if row.chosen else "",
            row.test_aopc,
            row.test_aopc_ratio,
            row.marker_fraction,
        )
    return table
