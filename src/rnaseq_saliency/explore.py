"""Exploring a finished run's results: the functions behind ``notebooks/Saliency.ipynb``.

Everything here reads the workflow's outputs (never recomputes a map) so that what the notebook
shows is what the workflow wrote:

- ``evaluation/summary.json`` and ``evaluation/predictions.tsv`` (the evaluate rule);
- ``genes/selected_genes.tsv`` (the model's input genes, in input order);
- ``saliency/top_genes.tsv`` and ``saliency/mean_saliency.parquet`` (the top_genes rule), by
  the method of ``saliency/chosen_method.json`` (the choose_method rule);
- ``saliency/maps/{method}/{tissue}.parquet``, that method's per-sample maps, read only for one
  sample's comparison.

Figures are returned, not saved: the tissue heatmap is ``figures_saliency.plot_tissue_heatmap``
(the workflow's own figure, drawn without writing a file); the other two are built on a bare
``matplotlib.figure.Figure``, which needs no pyplot backend, so the notebook keeps its own.
Every lookup by tissue, gene or sample fails with a message that names what exists.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from rnaseq_saliency import figures_saliency
from rnaseq_saliency.evaluate import read_evaluation_summary, read_predictions
from rnaseq_saliency.faithfulness import read_chosen_method
from rnaseq_saliency.genes import read_selected_genes
from rnaseq_saliency.saliency import (
    read_mean_matrix,
    read_tissue_saliency,
    read_top_genes,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

# Inputs of ``load_results``, relative to the results folder.
RESULT_FILES = {
    "summary": "evaluation/summary.json",
    "predictions": "evaluation/predictions.tsv",
    "genes": "genes/selected_genes.tsv",
    "top_genes": "saliency/top_genes.tsv",
    "mean_matrix": "saliency/mean_saliency.parquet",
    "chosen": "saliency/chosen_method.json",
}
SUMMARY_METRICS = ("accuracy", "balanced_accuracy", "macro_f1", "weighted_f1")
_TOP_COLUMNS = ["rank", "gene_id", "gene_name", "mean", "sd"]
_SPLIT_NAMES = {"test": "test", "val": "validation"}


@dataclass
class Results:
    """A results folder's evaluation and saliency outputs, as read by ``load_results``."""

    results_dir: Path
    summary: dict[str, Any]  # evaluation/summary.json
    predictions: pd.DataFrame  # evaluation/predictions.tsv, ``correct`` as bool
    genes: pd.DataFrame  # gene_id, gene_name, in model input order
    top_genes: pd.DataFrame  # every tissue's genes ranked by mean saliency
    mean_matrix: pd.DataFrame  # genes (index gene_id) x tissues, mean saliency
    method: str  # the saliency method of the top genes and maps (chosen_method.json)

    @property
    def tissues(self) -> list[str]:
        """Every configured tissue, in config order (those without maps included)."""
        return [str(column) for column in self.mean_matrix.columns]

    def saliency_path(self, tissue: str) -> Path:
        """The per-sample maps of ``tissue`` (``saliency/maps/{method}/{tissue}.parquet``)."""
        check_tissue(self, tissue)
        return self.results_dir / "saliency" / "maps" / self.method / f"{tissue}.parquet"


def load_results(results_dir: str | os.PathLike[str]) -> Results:
    """Read the files of ``RESULT_FILES`` under ``results_dir`` and check they belong together.

    A relative ``results_dir`` is taken from the current directory, which in Jupyter is the
    notebook's folder (so the repository's results are ``../results`` from ``notebooks/``).
    """
    folder = Path(results_dir)
    where = f"{folder} (from {Path.cwd()})" if not folder.is_absolute() else str(folder)
    if not folder.is_dir():
        raise FileNotFoundError(
            f"results folder {where} does not exist: run the workflow first "
            "(`bash quickstart.sh demo`) or point results_dir at its results/ folder"
        )
    missing = [name for name in RESULT_FILES.values() if not (folder / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"results folder {where} lacks {missing}: run the workflow to the end "
            "(`snakemake --cores N`) before exploring it"
        )
    paths = {key: folder / name for key, name in RESULT_FILES.items()}
    summary = read_evaluation_summary(paths["summary"])
    genes = read_selected_genes(paths["genes"])
    gene_ids, gene_names = genes["gene_id"].tolist(), genes["gene_name"].tolist()
    mean_matrix = read_mean_matrix(paths["mean_matrix"])
    if mean_matrix.index.tolist() != gene_ids:
        raise ValueError(
            f"{paths['mean_matrix']}: its genes differ from {paths['genes']} "
            f"({len(mean_matrix)} vs {len(gene_ids)} genes, or another order); "
            "are both from the same run?"
        )
    top_genes = read_top_genes(paths["top_genes"])
    unknown = sorted(set(top_genes["tissue"]) - {str(c) for c in mean_matrix.columns})
    if unknown:
        raise ValueError(
            f"{paths['top_genes']}: tissue(s) {unknown} are not columns of {paths['mean_matrix']}"
        )
    method = read_chosen_method(paths["chosen"])
    other = sorted(set(top_genes["method"]) - {method})
    if other:
        raise ValueError(
            f"{paths['top_genes']}: ranked by {other[0]}, but {paths['chosen']} names {method}; "
            "are both from the same run?"
        )
    return Results(
        results_dir=folder,
        summary=summary,
        predictions=read_predictions(paths["predictions"]),
        genes=pd.DataFrame({"gene_id": gene_ids, "gene_name": gene_names}),
        top_genes=top_genes,
        mean_matrix=mean_matrix,
        method=method,
    )


def check_tissue(results: Results, tissue: str) -> str:
    """``tissue`` if the run has it, else a ValueError listing the run's tissues."""
    if tissue not in results.tissues:
        raise ValueError(
            f"tissue {tissue!r} is not in these results; choose one of {results.tissues}"
        )
    return tissue


# --------------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------------


def evaluation_caption(results: Results) -> str:
    """One line: which held-out samples the evaluation scored."""
    summary = results.summary
    split = _SPLIT_NAMES.get(summary.get("evaluated_split", ""), summary.get("evaluated_split"))
    return (
        f"{summary.get('n_samples')} {split} samples of {summary.get('n_donors')} donors, "
        f"{summary.get('n_tissues')} tissues; model of {summary.get('n_model_parameters')} "
        "parameters against a logistic-regression baseline"
    )


def evaluation_summary(results: Results) -> pd.DataFrame:
    """Headline metrics (rows) of the model and of the baseline (columns), from summary.json."""
    columns = {"model": "model", "baseline": "baseline (logistic regression)"}
    absent = [key for key in columns if key not in results.summary]
    if absent:
        raise ValueError(f"{results.results_dir / RESULT_FILES['summary']}: no key(s) {absent}")
    table = pd.DataFrame(
        {
            label: [results.summary[key].get(metric, np.nan) for metric in SUMMARY_METRICS]
            for key, label in columns.items()
        },
        index=pd.Index(list(SUMMARY_METRICS), name="metric"),
    )
    return table


# --------------------------------------------------------------------------------------------
# A tissue's top genes
# --------------------------------------------------------------------------------------------


def tissue_top_genes(results: Results, tissue: str, top_n: int) -> pd.DataFrame:
    """``tissue``'s ``top_n`` genes by mean saliency: rank, gene_id, gene_name, mean, sd.

    Empty for a tissue without maps (no correctly classified held-out samples).
    """
    check_tissue(results, tissue)
    rows = figures_saliency.tissue_top_genes(results.top_genes, tissue, top_n)
    return rows[_TOP_COLUMNS].reset_index(drop=True)


def plot_tissue_top_genes(
    results: Results, tissue: str, top_n: int
) -> figures_saliency.HeatmapFigure:
    """The workflow's heatmap of ``tissue``'s top genes across all tissues, its column outlined.

    ``.figure`` is the matplotlib figure to show; nothing is written.
    """
    check_tissue(results, tissue)
    return figures_saliency.plot_tissue_heatmap(
        results.mean_matrix, results.top_genes, tissue, top_n
    )


# --------------------------------------------------------------------------------------------
# One gene across tissues
# --------------------------------------------------------------------------------------------


def find_gene(results: Results, gene: str) -> tuple[str, str]:
    """(gene_id, gene_name) of ``gene``: an Ensembl id (with or without version) or a symbol.

    Symbols match case-insensitively; a symbol shared by several ids is refused, naming them.
    """
    genes = results.genes
    wanted = gene.strip()
    ids = genes["gene_id"].astype(str)
    hits = genes.loc[
        (ids == wanted)
        | (ids.str.split(".").str[0] == wanted.split(".")[0])
        | (genes["gene_name"].astype(str).str.upper() == wanted.upper())
    ]
    if hits.empty:
        examples = genes["gene_name"].head(5).tolist()
        raise ValueError(
            f"gene {gene!r} is not among the model's {len(genes)} input genes "
            f"({results.results_dir / RESULT_FILES['genes']}); e.g. {examples}"
        )
    if len(hits) > 1:
        raise ValueError(
            f"gene {gene!r} matches several genes: {hits['gene_id'].tolist()}; use an id"
        )
    return str(hits["gene_id"].iloc[0]), str(hits["gene_name"].iloc[0])


def gene_across_tissues(results: Results, gene: str) -> pd.DataFrame:
    """One gene's mean saliency, its sd and its rank in every tissue (rows, config order).

    Columns: tissue, mean, sd, rank (1 = the tissue's most salient gene of all the model's
    genes; missing for a tissue without maps). The mean is the matrix's float32 value.
    """
    gene_id, _ = find_gene(results, gene)
    ranked = results.top_genes.loc[results.top_genes["gene_id"] == gene_id]
    table = pd.DataFrame(
        {
            "tissue": results.tissues,
            "mean": results.mean_matrix.loc[gene_id, results.tissues].to_numpy(dtype=np.float64),
        }
    )
    table = table.merge(ranked[["tissue", "sd", "rank"]], on="tissue", how="left")
    table["rank"] = table["rank"].astype("Int64")  # integers, missing without maps
    return table


def plot_gene_across_tissues(results: Results, gene: str, highlight: str | None = None) -> Figure:
    """Bars of one gene's mean saliency per tissue (sd as error bars); ``highlight`` in blue.

    Tissues without maps get no bar and say so in their label.
    """
    from matplotlib.figure import Figure

    gene_id, gene_name = find_gene(results, gene)
    if highlight is not None:
        check_tissue(results, highlight)
    table = gene_across_tissues(results, gene)
    labels = [
        tissue if np.isfinite(mean) else f"{tissue} (no maps)"
        for tissue, mean in zip(table["tissue"], table["mean"], strict=True)
    ]
    colours = [
        figures_saliency.OUTLINE_COLOUR if tissue == highlight else "#8c8c8c"
        for tissue in table["tissue"]
    ]
    figure = Figure(figsize=(7.0, 1.5 + 0.25 * len(table)), layout="constrained")
    ax = figure.subplots()
    positions = np.arange(len(table))
    ax.barh(
        positions,
        np.nan_to_num(table["mean"].to_numpy(), nan=0.0),
        xerr=np.nan_to_num(table["sd"].to_numpy(dtype=np.float64), nan=0.0),
        color=colours,
        error_kw={"elinewidth": 0.8, "capsize": 2},
    )
    ax.set_yticks(positions, labels, fontsize=8)
    ax.invert_yaxis()  # config order, top to bottom
    ax.set_xlim(0.0, 1.05)
    ax.set_xlabel("mean saliency over the tissue's maps (± sd)")
    ax.set_title(f"{gene_name} ({gene_id}) across tissues")
    return figure


# --------------------------------------------------------------------------------------------
# Two tissues' top genes
# --------------------------------------------------------------------------------------------


@dataclass
class GeneOverlap:
    """The top ``n`` genes of two tissues and what they share."""

    tissue_a: str
    tissue_b: str
    n: int
    genes_a: list[str]  # gene ids, by rank (fewer than n only if the tissue has fewer genes)
    genes_b: list[str]
    shared: pd.DataFrame  # gene_id, gene_name, rank_a, rank_b; by rank in tissue_a
    jaccard: float  # |A & B| / |A | B|; NaN when neither tissue has maps

    @property
    def summary(self) -> str:
        if not self.genes_a or not self.genes_b:
            pairs = ((self.tissue_a, self.genes_a), (self.tissue_b, self.genes_b))
            empty = [tissue for tissue, genes in pairs if not genes]
            return f"no top genes to compare: {empty} without saliency maps"
        return (
            f"{self.tissue_a} and {self.tissue_b} share {len(self.shared)} of their top "
            f"{self.n} genes (Jaccard index {self.jaccard:.3f})"
        )


def top_genes_overlap(results: Results, tissue_a: str, tissue_b: str, n: int) -> GeneOverlap:
    """The overlap of two tissues' top ``n`` genes by mean saliency, and its Jaccard index."""
    a = tissue_top_genes(results, tissue_a, n)
    b = tissue_top_genes(results, tissue_b, n)
    shared = a[["gene_id", "gene_name", "rank"]].merge(
        b[["gene_id", "rank"]], on="gene_id", suffixes=("_a", "_b")
    )
    union = set(a["gene_id"]) | set(b["gene_id"])
    return GeneOverlap(
        tissue_a=tissue_a,
        tissue_b=tissue_b,
        n=n,
        genes_a=a["gene_id"].tolist(),
        genes_b=b["gene_id"].tolist(),
        shared=shared.sort_values("rank_a", kind="stable").reset_index(drop=True),
        jaccard=len(shared) / len(union) if union else float("nan"),
    )


# --------------------------------------------------------------------------------------------
# One sample against its tissue's mean
# --------------------------------------------------------------------------------------------


def saliency_samples(results: Results, tissue: str) -> list[str]:
    """The samples of ``tissue`` with a map: its correctly classified evaluated samples."""
    return read_tissue_saliency(results.saliency_path(tissue)).sample_ids


def pick_sample(results: Results, tissue: str, index: int) -> str:
    """The ``index``-th (Python indexing) sample of ``saliency_samples(results, tissue)``."""
    samples = saliency_samples(results, tissue)
    if not samples:
        raise ValueError(f"{tissue} has no saliency maps (no correctly classified samples)")
    if not -len(samples) <= index < len(samples):
        raise IndexError(f"sample index {index}: {tissue} has {len(samples)} sample(s) with maps")
    return samples[index]


@dataclass
class SampleComparison:
    """One sample's map beside the mean map of its tissue."""

    sample_id: str
    tissue: str
    n_samples: int  # maps in the tissue's mean (this sample's among them)
    table: pd.DataFrame  # gene_id, gene_name, sample, tissue_mean, difference; by sample desc.
    pearson: float  # correlation of the two maps over genes; NaN if either is constant

    @property
    def summary(self) -> str:
        return (
            f"{self.sample_id} against the mean of {self.n_samples} {self.tissue} sample(s): "
            f"Pearson r = {self.pearson:.3f} over {len(self.table)} genes"
        )


def sample_vs_tissue_mean(results: Results, sample_id: str) -> SampleComparison:
    """Compare one sample's saliency map with its tissue's mean map (``Results.saliency_path``).

    Only correctly classified samples of the evaluated split have maps; any other sample is
    refused with its prediction and the samples that do have maps.
    """
    rows = results.predictions.loc[results.predictions["sample_id"] == sample_id]
    if rows.empty:
        raise ValueError(
            f"sample {sample_id!r} is not in {RESULT_FILES['predictions']}: only held-out "
            "(validation/test) samples are predicted and explained"
        )
    tissue = str(rows["tissue"].iloc[0])
    path = results.saliency_path(tissue)
    maps = read_tissue_saliency(path)
    if sample_id not in maps.sample_ids:
        row = rows.iloc[-1]
        raise ValueError(
            f"sample {sample_id!r} ({tissue}, {row['split']}, predicted {row['predicted']}) has "
            f"no map in {path}: maps are of correctly classified {maps.info.get('split')} "
            f"samples only, e.g. {maps.sample_ids[:3]}"
        )
    if maps.gene_ids != results.genes["gene_id"].tolist():
        raise ValueError(f"{path}: its genes differ from {RESULT_FILES['genes']}")
    values = maps.maps[maps.sample_ids.index(sample_id)].astype(np.float64)
    mean = maps.mean.astype(np.float64)
    table = pd.DataFrame(
        {
            "gene_id": results.genes["gene_id"],
            "gene_name": results.genes["gene_name"],
            "sample": values,
            "tissue_mean": mean,
            "difference": values - mean,
        }
    )
    table = table.sort_values("sample", ascending=False, kind="stable").reset_index(drop=True)
    # np.corrcoef warns and returns NaN for a constant map; say NaN without the warning.
    constant = np.ptp(values) == 0 or np.ptp(mean) == 0
    pearson = float("nan") if constant else float(np.corrcoef(values, mean)[0, 1])
    return SampleComparison(sample_id, tissue, maps.n_samples, table, pearson)


def departing_genes(comparison: SampleComparison, n: int) -> pd.DataFrame:
    """The ``n`` genes whose saliency in the sample differs most from the tissue's mean."""
    table = comparison.table
    order = np.argsort(-table["difference"].abs().to_numpy(), kind="stable")
    return table.iloc[order[: max(n, 0)]].reset_index(drop=True)


def plot_sample_vs_tissue_mean(comparison: SampleComparison, label_top: int = 10) -> Figure:
    """The sample's map against its tissue's mean, one point per gene, in two panels.

    Left: sample (y) against mean (x), with the line y = x. Right: the difference (sample -
    mean) against the mean, which spreads out what the left panel packs along its diagonal;
    the ``label_top`` genes that depart most (``departing_genes``) are labelled in blue.
    """
    from matplotlib.figure import Figure

    table = comparison.table
    departing = departing_genes(comparison, label_top)
    figure = Figure(figsize=(11.0, 5.0), layout="constrained")
    left, right = figure.subplots(1, 2)
    grey = {"s": 6, "color": "#8c8c8c", "linewidths": 0}
    blue = {"s": 14, "color": figures_saliency.OUTLINE_COLOUR, "linewidths": 0}
    left.scatter(table["tissue_mean"], table["sample"], **grey)
    left.scatter(departing["tissue_mean"], departing["sample"], **blue)
    left.plot([0.0, 1.0], [0.0, 1.0], color="black", linewidth=0.8, linestyle="--")
    left.set_xlim(-0.02, 1.02)
    left.set_ylim(-0.02, 1.02)
    left.set_ylabel(f"saliency of {comparison.sample_id}")
    left.set_title(f"Pearson r = {comparison.pearson:.3f}")
    right.scatter(table["tissue_mean"], table["difference"], **grey)
    right.scatter(departing["tissue_mean"], departing["difference"], **blue)
    right.axhline(0.0, color="black", linewidth=0.8, linestyle="--")
    for _, gene in departing.iterrows():
        right.annotate(
            gene["gene_name"] or gene["gene_id"],
            (gene["tissue_mean"], gene["difference"]),
            fontsize=7,
            xytext=(3, 2),
            textcoords="offset points",
        )
    right.set_xlim(-0.02, 1.02)
    right.set_ylabel("sample - tissue mean")
    right.set_title(f"the {len(departing)} genes that depart most, labelled")
    for ax in (left, right):
        ax.set_xlabel(f"mean saliency of {comparison.n_samples} {comparison.tissue} sample(s)")
    figure.suptitle(f"{comparison.sample_id} ({comparison.tissue}) against its tissue's mean map")
    return figure
