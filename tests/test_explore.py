"""The notebook's functions (rnaseq_saliency.explore) on a small, hand-made results folder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rnaseq_saliency import explore
from rnaseq_saliency.evaluate import write_predictions
from rnaseq_saliency.faithfulness import write_chosen_method
from rnaseq_saliency.figures_saliency import OUTLINE_COLOUR
from rnaseq_saliency.saliency import (
    make_tissue_saliency,
    run_top_genes,
    write_mean_matrix,
    write_tissue_saliency,
)

GENE_IDS = ["ENSG01.1", "ENSG02.3", "ENSG03.1", "ENSG04.2", "ENSG05.1", "ENSG06.1"]
GENE_NAMES = ["ALB", "PRSS1", "CPA1", "APOA1", "DUP", "DUP"]
# Hand-picked maps with known means and no ties where the tests look:
# liver mean    [0.9, 0.1, 0.1, 0.85, 0.4, 0.5] -> ALB, APOA1, ENSG06, ENSG05, PRSS1, CPA1
# pancreas mean [0.117, 0.9, 0.8, 0.2, 0.5, 0.1] -> PRSS1, CPA1, ENSG05, APOA1, ALB, ENSG06
MAPS = {
    "liver": {
        "L1": [1.0, 0.0, 0.2, 0.8, 0.5, 0.6],
        "L2": [0.8, 0.2, 0.0, 0.9, 0.3, 0.4],
    },
    "pancreas": {
        "P1": [0.0, 1.0, 0.9, 0.3, 0.5, 0.2],
        "P2": [0.1, 0.9, 1.0, 0.2, 0.4, 0.0],
        "P3": [0.25, 0.8, 0.5, 0.1, 0.6, 0.1],
    },
    "lung": {},  # no correctly classified sample: a file without maps
}
TISSUES = list(MAPS)
SUMMARY = {
    "evaluated_split": "test",
    "n_samples": 8,
    "n_donors": 5,
    "n_tissues": 3,
    "n_model_parameters": 1234,
    "model": {"accuracy": 0.75, "macro_f1": 0.5, "weighted_f1": 0.7, "balanced_accuracy": 0.6},
    "baseline": {"accuracy": 0.5, "macro_f1": 0.4, "weighted_f1": 0.45, "balanced_accuracy": 0.3},
}
PREDICTIONS = [  # sample_id, tissue, split, predicted
    ("L1", "liver", "test", "liver"),
    ("L2", "liver", "test", "liver"),
    ("L3", "liver", "test", "pancreas"),
    ("P1", "pancreas", "test", "pancreas"),
    ("P2", "pancreas", "test", "pancreas"),
    ("P3", "pancreas", "test", "pancreas"),
    ("X1", "lung", "test", "liver"),
    ("V1", "liver", "val", "liver"),
]


def write_results(folder: Path) -> Path:
    """A results folder laid out as the workflow writes it, with the package's own writers."""
    (folder / "evaluation").mkdir(parents=True)
    (folder / "evaluation/summary.json").write_text(json.dumps(SUMMARY))
    predictions = pd.DataFrame(PREDICTIONS, columns=["sample_id", "tissue", "split", "predicted"])
    predictions["probability"] = 0.9
    predictions["correct"] = predictions["tissue"] == predictions["predicted"]
    write_predictions(predictions, folder / "evaluation/predictions.tsv")
    (folder / "genes").mkdir()
    genes = pd.DataFrame({"gene_id": GENE_IDS, "gene_name": GENE_NAMES})
    genes.to_csv(folder / "genes/selected_genes.tsv", sep="\t", index=False)
    files = []
    for tissue, maps in MAPS.items():
        matrix = np.array(list(maps.values()), dtype=np.float32).reshape(len(maps), len(GENE_IDS))
        info = {"split": "test", "method": "input_x_gradient"}
        result = make_tissue_saliency(tissue, GENE_IDS, list(maps), matrix, info)
        files.append(folder / "saliency/maps/input_x_gradient" / f"{tissue}.parquet")
        files[-1].parent.mkdir(parents=True, exist_ok=True)
        write_tissue_saliency(files[-1], result)
    write_chosen_method(folder / "saliency/chosen_method.json", {"method": "input_x_gradient"})
    run_top_genes(
        files,
        TISSUES,
        folder / "saliency/chosen_method.json",
        folder / "genes/selected_genes.tsv",
        folder / "saliency/top_genes.tsv",
        folder / "saliency/mean_saliency.parquet",
    )
    return folder


@pytest.fixture
def results(tmp_path: Path) -> explore.Results:
    return explore.load_results(write_results(tmp_path / "results"))


def test_load_results_reads_every_file(results: explore.Results) -> None:
    assert results.tissues == TISSUES
    assert results.genes["gene_id"].tolist() == GENE_IDS
    assert results.summary["n_samples"] == 8
    assert results.predictions["correct"].dtype == bool
    assert results.mean_matrix.loc["ENSG02.3", "pancreas"] == pytest.approx(0.9)
    assert set(results.top_genes["tissue"]) == {"liver", "pancreas"}
    assert results.method == "input_x_gradient"
    assert results.saliency_path("liver").parent.name == "input_x_gradient"


def test_load_results_names_what_is_missing(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist: run the workflow"):
        explore.load_results(tmp_path / "nowhere")
    folder = write_results(tmp_path / "results")
    (folder / "saliency/top_genes.tsv").unlink()
    with pytest.raises(FileNotFoundError, match=r"lacks \['saliency/top_genes.tsv'\]"):
        explore.load_results(folder)


def test_load_results_refuses_files_of_different_runs(tmp_path: Path) -> None:
    folder = write_results(tmp_path / "results")
    matrix = pd.read_parquet(folder / "saliency/mean_saliency.parquet")
    write_mean_matrix(folder / "saliency/mean_saliency.parquet", matrix.iloc[::-1])
    with pytest.raises(ValueError, match=r"its genes differ from .*selected_genes\.tsv"):
        explore.load_results(folder)
    folder = write_results(tmp_path / "other")
    write_chosen_method(folder / "saliency/chosen_method.json", {"method": "gradient"})
    with pytest.raises(ValueError, match=r"ranked by input_x_gradient, but .* names gradient"):
        explore.load_results(folder)


def test_evaluation_summary_puts_model_beside_baseline(results: explore.Results) -> None:
    table = explore.evaluation_summary(results)
    assert list(table.index) == list(explore.SUMMARY_METRICS)
    assert table.loc["accuracy"].tolist() == [0.75, 0.5]
    assert table.loc["balanced_accuracy"].tolist() == [0.6, 0.3]
    assert explore.evaluation_caption(results).startswith("8 test samples of 5 donors, 3 tissues")


def test_tissue_top_genes_in_rank_order(results: explore.Results) -> None:
    top = explore.tissue_top_genes(results, "pancreas", 3)
    assert top.columns.tolist() == ["rank", "gene_id", "gene_name", "mean", "sd"]
    assert top["gene_name"].tolist() == ["PRSS1", "CPA1", "DUP"]
    assert top["rank"].tolist() == [1, 2, 3]
    assert top["mean"].tolist() == pytest.approx([0.9, 0.8, 0.5])
    assert explore.tissue_top_genes(results, "lung", 3).empty
    with pytest.raises(ValueError, match=r"'kidney' is not in these results; choose one of"):
        explore.tissue_top_genes(results, "kidney", 3)


def test_tissue_heatmap_is_the_workflows_figure_and_writes_nothing(
    results: explore.Results,
) -> None:
    before = sorted(results.results_dir.rglob("*"))
    drawn = explore.plot_tissue_top_genes(results, "pancreas", 4)
    assert sorted(results.results_dir.rglob("*")) == before
    assert drawn.columns == TISSUES and drawn.rows == ["PRSS1", "CPA1", "DUP", "APOA1"]
    (outline,) = drawn.outlines
    assert outline.get_x() + outline.get_width() / 2 == TISSUES.index("pancreas")
    assert outline in drawn.figure.axes[0].patches
    empty = explore.plot_tissue_top_genes(results, "lung", 4)
    assert empty.outlines == [] and "No saliency maps" in empty.ax.texts[0].get_text()
    assert sorted(results.results_dir.rglob("*")) == before


def test_tissue_heatmap_keeps_a_loaded_pyplots_backend(results: explore.Results) -> None:
    # A notebook has pyplot loaded with its inline backend; the figure must not switch it.
    import matplotlib
    import matplotlib.pyplot as plt

    before = matplotlib.get_backend()
    plt.switch_backend("svg")
    try:
        explore.plot_tissue_top_genes(results, "liver", 2)
        assert matplotlib.get_backend() == "svg"
    finally:
        plt.switch_backend(before)


def test_find_gene_by_symbol_or_id(results: explore.Results) -> None:
    assert explore.find_gene(results, "prss1") == ("ENSG02.3", "PRSS1")
    assert explore.find_gene(results, "ENSG02.3") == ("ENSG02.3", "PRSS1")
    assert explore.find_gene(results, "ENSG02") == ("ENSG02.3", "PRSS1")  # without version
    assert explore.find_gene(results, "ENSG02.7") == ("ENSG02.3", "PRSS1")  # another version
    with pytest.raises(ValueError, match=r"matches several genes: \['ENSG05.1', 'ENSG06.1'\]"):
        explore.find_gene(results, "DUP")
    with pytest.raises(ValueError, match="'INS' is not among the model's 6 input genes"):
        explore.find_gene(results, "INS")


def test_gene_across_tissues(results: explore.Results) -> None:
    table = explore.gene_across_tissues(results, "PRSS1")
    assert table["tissue"].tolist() == TISSUES
    assert table["mean"].tolist()[:2] == pytest.approx([0.1, 0.9])
    assert np.isnan(table["mean"].iloc[2])
    assert table["rank"].tolist()[:2] == [5, 1] and table["rank"].isna().tolist()[2]
    sd = np.std([0.0, 0.2], ddof=1)
    assert table["sd"].iloc[0] == pytest.approx(sd, rel=1e-5)


def test_gene_plot_highlights_the_tissue(results: explore.Results) -> None:
    from matplotlib.colors import to_rgba

    figure = explore.plot_gene_across_tissues(results, "CPA1", highlight="pancreas")
    ax = figure.axes[0]
    labels = [label.get_text() for label in ax.get_yticklabels()]
    assert labels == ["liver", "pancreas", "lung (no maps)"]
    colours = [bar.get_facecolor() for bar in ax.patches]
    assert colours[1] == to_rgba(OUTLINE_COLOUR) and colours[0] != colours[1]
    assert [bar.get_width() for bar in ax.patches] == pytest.approx([0.1, 0.8, 0.0])
    with pytest.raises(ValueError, match="'kidney' is not in these results"):
        explore.plot_gene_across_tissues(results, "CPA1", highlight="kidney")


def test_top_genes_overlap_and_jaccard(results: explore.Results) -> None:
    overlap = explore.top_genes_overlap(results, "liver", "pancreas", 4)
    assert overlap.shared["gene_id"].tolist() == ["ENSG04.2", "ENSG05.1"]  # by rank in liver
    assert overlap.shared["rank_a"].tolist() == [2, 4]
    assert overlap.shared["rank_b"].tolist() == [4, 3]
    assert overlap.jaccard == pytest.approx(2 / 6)
    assert overlap.summary == (
        "liver and pancreas share 2 of their top 4 genes (Jaccard index 0.333)"
    )
    disjoint = explore.top_genes_overlap(results, "liver", "pancreas", 2)
    assert disjoint.shared.empty and disjoint.jaccard == 0.0
    assert explore.top_genes_overlap(results, "pancreas", "pancreas", 3).jaccard == 1.0


def test_overlap_with_a_tissue_without_maps(results: explore.Results) -> None:
    overlap = explore.top_genes_overlap(results, "liver", "lung", 3)
    assert overlap.genes_b == [] and overlap.shared.empty and overlap.jaccard == 0.0
    assert "['lung'] without saliency maps" in overlap.summary
    both = explore.top_genes_overlap(results, "lung", "lung", 3)
    assert np.isnan(both.jaccard)


def test_pick_sample(results: explore.Results) -> None:
    assert explore.saliency_samples(results, "pancreas") == ["P1", "P2", "P3"]
    assert explore.pick_sample(results, "pancreas", 0) == "P1"
    assert explore.pick_sample(results, "pancreas", -1) == "P3"
    with pytest.raises(IndexError, match="sample index 3: pancreas has 3 sample"):
        explore.pick_sample(results, "pancreas", 3)
    with pytest.raises(ValueError, match="lung has no saliency maps"):
        explore.pick_sample(results, "lung", 0)


def test_sample_vs_tissue_mean(results: explore.Results) -> None:
    comparison = explore.sample_vs_tissue_mean(results, "P2")
    assert (comparison.tissue, comparison.n_samples) == ("pancreas", 3)
    table = comparison.table
    # Sorted by the sample's saliency: CPA1 (1.0), PRSS1 (0.9), DUP (0.4), ...
    assert table["gene_name"].tolist()[:3] == ["CPA1", "PRSS1", "DUP"]
    by_gene = table.set_index("gene_id")
    sample = np.array(MAPS["pancreas"]["P2"])
    mean = np.mean(list(MAPS["pancreas"].values()), axis=0)
    assert by_gene.loc[GENE_IDS, "sample"].to_numpy() == pytest.approx(sample, abs=1e-6)
    assert by_gene.loc[GENE_IDS, "tissue_mean"].to_numpy() == pytest.approx(mean, abs=1e-6)
    assert by_gene.loc[GENE_IDS, "difference"].to_numpy() == pytest.approx(sample - mean, abs=1e-6)
    assert comparison.pearson == pytest.approx(np.corrcoef(sample, mean)[0, 1], abs=1e-6)
    assert comparison.summary.startswith("P2 against the mean of 3 pancreas sample(s)")


def test_sample_without_a_map_is_refused_with_the_reason(results: explore.Results) -> None:
    with pytest.raises(ValueError, match=r"'L3' \(liver, test, predicted pancreas\) has no map"):
        explore.sample_vs_tissue_mean(results, "L3")
    with pytest.raises(ValueError, match=r"'V1' .* correctly classified test samples only"):
        explore.sample_vs_tissue_mean(results, "V1")
    with pytest.raises(ValueError, match=r"'GTEX-NONE' is not in evaluation/predictions\.tsv"):
        explore.sample_vs_tissue_mean(results, "GTEX-NONE")


def test_departing_genes_and_the_sample_plot(results: explore.Results) -> None:
    comparison = explore.sample_vs_tissue_mean(results, "P3")
    departing = explore.departing_genes(comparison, 2)
    # P3 - mean: CPA1 0.5 - 0.8 = -0.3 and ALB 0.25 - 0.117 = +0.133 are the largest in size.
    assert departing["gene_name"].tolist() == ["CPA1", "ALB"]
    figure = explore.plot_sample_vs_tissue_mean(comparison, label_top=2)
    left, right = figure.axes
    assert [text.get_text() for text in right.texts] == ["CPA1", "ALB"]
    assert left.get_title() == f"Pearson r = {comparison.pearson:.3f}"
