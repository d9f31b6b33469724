"""Saliency across replicate models: consensus, retraining stability, the consensus top genes,
the k/N heatmap annotation, and that one model's outputs are what they were."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rnaseq_saliency.consensus import (
    STABILITY_COLUMNS,
    consensus_saliency,
    consensus_top_genes,
    files_by_replicate,
    gene_ranks,
    jaccard,
    read_stability,
    replicate_maps_path,
    retraining_stability,
    run_replicate_stability,
    stability_table,
)
from rnaseq_saliency.faithfulness import write_chosen_method
from rnaseq_saliency.figures_saliency import plot_overview, plot_tissue_heatmap
from rnaseq_saliency.saliency import (
    IN_TOP_N_COLUMN,
    TOP_GENES_COLUMNS,
    make_tissue_saliency,
    read_top_genes,
    run_top_genes,
    run_top_genes_per_tissue,
    top_genes_table,
    write_tissue_saliency,
)

GENES = ["G0.1", "G1.1", "G2.1", "G3.1", "G4.1"]
NAMES = ["A", "B", "C", "D", "E"]


def tissue_maps(tissue: str, maps: np.ndarray, **info: object) -> object:
    ids = [f"{tissue}-{i}" for i in range(len(maps))]
    return make_tissue_saliency(
        tissue, GENES, ids, np.asarray(maps), {"method": "gradient", **info}
    )


# ------------------------------------------------------------------------------ pure functions


def test_consensus_of_identical_replicates_is_that_replicate() -> None:
    maps = np.random.default_rng(0).random((4, len(GENES))).astype(np.float32)
    one = tissue_maps("liver", maps)
    combined = consensus_saliency([one, tissue_maps("liver", maps), tissue_maps("liver", maps)])
    np.testing.assert_array_equal(combined.maps, one.maps)
    np.testing.assert_array_equal(combined.mean, one.mean)
    np.testing.assert_array_equal(combined.sd, one.sd)
    np.testing.assert_array_equal(gene_ranks(combined.mean), gene_ranks(one.mean))
    assert combined.info["replicates"] == 3 and combined.sample_ids == one.sample_ids
    # One replicate's consensus is that replicate too.
    np.testing.assert_array_equal(consensus_saliency([one]).mean, one.mean)


def test_consensus_is_the_mean_of_normalised_maps_not_the_mean_rank() -> None:
    # Replicate 0 puts G0 far ahead; replicate 1 puts G1 barely ahead of G0.
    first = tissue_maps("liver", [[1.0, 0.0, 0.1, 0.2, 0.3]])
    second = tissue_maps("liver", [[0.9, 1.0, 0.0, 0.1, 0.2]])
    combined = consensus_saliency([first, second])
    np.testing.assert_allclose(combined.mean, [0.95, 0.5, 0.05, 0.15, 0.25], rtol=1e-6)
    # By mean value G0 leads (0.95); by mean rank G0 (1, 2) and G1 (5, 1) would be 1.5 vs 3.
    assert gene_ranks(combined.mean).tolist() == [1, 2, 5, 4, 3]


def test_consensus_refuses_replicates_of_other_samples() -> None:
    first = tissue_maps("liver", [[1.0, 0.0, 0.1, 0.2, 0.3]])
    other = make_tissue_saliency("liver", GENES, ["liver-9"], np.ones((1, 5)), {})
    with pytest.raises(ValueError, match="replicate 1's maps differ from replicate 0's in their"):
        consensus_saliency([first, other])


def test_ranks_follow_the_ranking_order() -> None:
    assert gene_ranks(np.array([0.2, 0.9, np.nan, 0.5])).tolist() == [3, 1, 4, 2]


def test_stability_of_identical_rankings_is_one() -> None:
    ranks = np.tile(gene_ranks(np.random.default_rng(1).random(50)), (3, 1))
    assert retraining_stability(ranks, 20) == pytest.approx((1.0, 1.0))


def test_stability_of_known_rankings_is_the_hand_computed_value() -> None:
    # Three replicates, five genes (1 = top). Top 2: {G0,G1}, {G0,G1}, {G2,G0}.
    ranks = np.array(
        [
            [1, 2, 3, 4, 5],
            [2, 1, 3, 5, 4],
            [2, 3, 1, 4, 5],
        ]
    )
    jaccard_top, rho = retraining_stability(ranks, 2)
    # Pairs: (0,1) J = 2/2; (0,2) and (1,2) J = 1/3.  Mean (1 + 1/3 + 1/3) / 3 = 5/9.
    assert jaccard_top == pytest.approx(5 / 9)
    # rho = 1 - 6 sum d^2 / (n (n^2 - 1)), n = 5: (0,1) d^2 = 1+1+0+1+1 = 4 -> 0.8;
    # (0,2) 1+1+4+0+0 = 6 -> 0.7; (1,2) 0+4+4+1+1 = 10 -> 0.5.  Mean 2.0 / 3.
    assert rho == pytest.approx(2.0 / 3)


def test_stability_needs_two_replicates_and_a_positive_top_n() -> None:
    assert all(np.isnan(retraining_stability(np.array([[1, 2, 3]]), 2)))
    with pytest.raises(ValueError, match=r"saliency\.top_n"):
        retraining_stability(np.array([[1, 2], [2, 1]]), 0)
    assert jaccard(set(), set()) == 1.0 and jaccard({1, 2}, {2, 3}) == pytest.approx(1 / 3)


# ----------------------------------------------------------------------- files and the tables


def replicate_files(tmp_path: Path, maps_by_replicate: list[dict[str, np.ndarray]]) -> list[Path]:
    """Replicate 0 under maps/gradient/ (rule saliency), replicates 1.. as the workflow lays
    them out (rule replicate_saliency)."""
    paths = []
    for replicate, maps in enumerate(maps_by_replicate):
        for tissue, values in maps.items():
            path = (
                tmp_path / "maps" / "gradient" / f"{tissue}.parquet"
                if replicate == 0
                else tmp_path / replicate_maps_path(replicate, tissue, root="replicates")
            )
            write_tissue_saliency(path, tissue_maps(tissue, values))
            paths.append(path)
    return paths


MAPS = [
    {"liver": np.array([[1.0, 0.0, 0.1, 0.2, 0.3]]), "lung": np.empty((0, 5))},
    {"liver": np.array([[0.9, 1.0, 0.0, 0.1, 0.2]]), "lung": np.empty((0, 5))},
    {"liver": np.array([[0.0, 1.0, 0.9, 0.1, 0.2]]), "lung": np.empty((0, 5))},
]
TISSUES = ["liver", "lung"]


def test_replicate_files_are_grouped_by_replicate_in_tissue_order(tmp_path: Path) -> None:
    paths = replicate_files(tmp_path, MAPS)
    grouped = files_by_replicate(list(reversed(paths[2:])), TISSUES)
    assert grouped == [[str(p) for p in paths[2:4]], [str(p) for p in paths[4:6]]]
    with pytest.raises(ValueError, match=r"replicate 2: no maps of tissue\(s\) \['lung'\]"):
        files_by_replicate(paths[2:5], TISSUES)


def test_consensus_top_genes_rank_by_the_consensus_with_each_replicates_rank(
    tmp_path: Path,
) -> None:
    paths = replicate_files(tmp_path, MAPS)
    grouped = [[str(p) for p in paths[i : i + 2]] for i in (0, 2, 4)]
    top, matrix = consensus_top_genes(grouped, TISSUES, GENES, NAMES)
    assert list(top.columns) == [*TOP_GENES_COLUMNS, *(f"rank_replicate_{r}" for r in range(3))]
    # Consensus means: G0 (1.9/3), G1 (2/3), G2 (1/3), G3 (0.4/3), G4 (0.7/3).
    assert top["gene_id"].tolist() == ["G1.1", "G0.1", "G2.1", "G4.1", "G3.1"]
    np.testing.assert_allclose(matrix["liver"], [1.9 / 3, 2 / 3, 1 / 3, 0.4 / 3, 0.7 / 3], 1e-6)
    assert matrix["lung"].isna().all() and set(top["tissue"]) == {"liver"}  # lung: no maps
    # Each replicate's own rank of the consensus order's genes.
    assert top["rank_replicate_0"].tolist() == [5, 1, 4, 2, 3]
    assert top["rank_replicate_1"].tolist() == [1, 2, 5, 3, 4]
    assert top["rank_replicate_2"].tolist() == [1, 5, 2, 3, 4]


def test_one_replicates_consensus_table_is_the_single_model_table(tmp_path: Path) -> None:
    paths = replicate_files(tmp_path, MAPS[:1])
    single, single_matrix = top_genes_table(paths, TISSUES, GENES, NAMES)
    top, matrix = consensus_top_genes([paths], TISSUES, GENES, NAMES)
    pd.testing.assert_frame_equal(top[TOP_GENES_COLUMNS], single)
    pd.testing.assert_frame_equal(matrix, single_matrix)


def genes_and_chosen(tmp_path: Path) -> tuple[Path, Path]:
    genes = tmp_path / "selected_genes.tsv"
    genes.write_text(
        "gene_id\tgene_name\n" + "".join(f"{g}\t{n}\n" for g, n in zip(GENES, NAMES, strict=True))
    )
    chosen = tmp_path / "chosen_method.json"
    write_chosen_method(chosen, {"method": "gradient"})
    return genes, chosen


def test_the_rule_without_replicates_writes_the_single_model_table(tmp_path: Path) -> None:
    """train.replicates: 1: no replicate files, the table of one model, no new column."""
    paths = replicate_files(tmp_path, MAPS)
    genes, chosen = genes_and_chosen(tmp_path)
    top, _ = run_top_genes(paths[:2], TISSUES, chosen, genes, tmp_path / "t.tsv", tmp_path / "m")
    assert list(read_top_genes(tmp_path / "t.tsv").columns) == TOP_GENES_COLUMNS
    assert top["gene_id"].tolist() == ["G0.1", "G4.1", "G3.1", "G2.1", "G1.1"]
    short = run_top_genes_per_tissue(tmp_path / "t.tsv", 2, tmp_path / "s.tsv")
    assert list(short.columns) == TOP_GENES_COLUMNS
    # With the replicates' files the same rule ranks by their consensus.
    consensus, _ = run_top_genes(
        paths[:2], TISSUES, chosen, genes, tmp_path / "c.tsv", tmp_path / "cm", paths[2:]
    )
    assert consensus["gene_id"].tolist() == ["G1.1", "G0.1", "G2.1", "G4.1", "G3.1"]
    short = run_top_genes_per_tissue(tmp_path / "c.tsv", 2, tmp_path / "cs.tsv")
    # Top 2 of the consensus: G1 is in the top 2 of replicates 0 (rank 5: no), 1 and 2.
    assert short[IN_TOP_N_COLUMN].tolist() == [2, 2]
    assert read_top_genes(tmp_path / "cs.tsv")[IN_TOP_N_COLUMN].tolist() == [2, 2]


def test_stability_table_per_tissue_and_its_median(tmp_path: Path) -> None:
    paths = replicate_files(tmp_path, MAPS)
    genes, chosen = genes_and_chosen(tmp_path)
    run_top_genes(paths[:2], TISSUES, chosen, genes, tmp_path / "c.tsv", tmp_path / "m", paths[2:])
    table = run_replicate_stability(
        tmp_path / "c.tsv", TISSUES, 2, tmp_path / "s.tsv", tmp_path / "s.png"
    )
    assert (tmp_path / "s.png").read_bytes()[:4] == b"\x89PNG"
    read = read_stability(tmp_path / "s.tsv")
    assert list(read.columns) == STABILITY_COLUMNS
    assert read["tissue"].tolist() == ["liver", "lung", "all_tissues_median"]
    assert (read["n_replicates"] == 3).all() and (read["top_n"] == 2).all()
    # liver: ranks by replicate (genes G0..G4): r0 [1,5,4,3,2], r1 [2,1,5,4,3], r2 [5,1,2,4,3].
    ranks = np.array([[1, 5, 4, 3, 2], [2, 1, 5, 4, 3], [5, 1, 2, 4, 3]])
    expected = retraining_stability(ranks, 2)
    assert table.loc[0, ["jaccard_top_n", "spearman"]].tolist() == pytest.approx(list(expected))
    assert read.loc[1, ["jaccard_top_n", "spearman"]].isna().all()  # lung has no maps
    assert read.loc[2, "jaccard_top_n"] == pytest.approx(expected[0], abs=1e-4)


def test_stability_of_a_single_model_table_is_refused(tmp_path: Path) -> None:
    paths = replicate_files(tmp_path, MAPS[:1])
    top, _ = top_genes_table(paths, TISSUES, GENES, NAMES)
    with pytest.raises(ValueError, match=r"needs train\.replicates > 1"):
        stability_table(top, TISSUES, 2)


# ---------------------------------------------------------------------------------- figures


def consensus_inputs(tmp_path: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    paths = replicate_files(tmp_path, MAPS)
    genes, chosen = genes_and_chosen(tmp_path)
    run_top_genes(paths[:2], TISSUES, chosen, genes, tmp_path / "c.tsv", tmp_path / "m", paths[2:])
    short = run_top_genes_per_tissue(tmp_path / "c.tsv", 3, tmp_path / "cs.tsv")
    from rnaseq_saliency.saliency import read_mean_matrix

    return read_mean_matrix(tmp_path / "m"), short


def test_heatmap_rows_say_in_how_many_replicates_the_gene_is_in_the_top_n(tmp_path: Path) -> None:
    matrix, top = consensus_inputs(tmp_path)
    drawn = plot_tissue_heatmap(matrix, top, "liver", 3, tmp_path / "h.png")
    # Consensus top 3: B, A, C; in the top 3 of replicates: B 2 (r1, r2), A 2 (r0, r1), C 1 (r2).
    assert drawn.rows == ["B", "A", "C"] and drawn.replicate_counts == ["2/3", "2/3", "1/3"]
    labels = [t.get_text() for t in drawn.ax.get_yticklabels()]
    assert labels == ["B  2/3", "A  2/3", "C  1/3"]
    assert "consensus mean saliency of 3 replicate models" in drawn.ax.get_title()
    assert "k of the N replicates" in drawn.ax.get_ylabel()
    overview = plot_overview(matrix, top, 3, tmp_path / "o.png")
    assert "consensus mean saliency of 3 replicate models" in overview.ax.get_title()


def test_single_model_heatmap_has_no_replicate_annotation(tmp_path: Path) -> None:
    """train.replicates: 1: the labels, title and colour bar of one model's heatmap."""
    paths = replicate_files(tmp_path, MAPS[:1])
    top, matrix = top_genes_table(paths, TISSUES, GENES, NAMES)
    drawn = plot_tissue_heatmap(matrix, top, "liver", 3, tmp_path / "h.png")
    assert drawn.replicate_counts == []
    assert [t.get_text() for t in drawn.ax.get_yticklabels()] == ["A", "E", "D"]
    assert drawn.ax.get_ylabel() == "gene"
    assert (
        drawn.ax.get_title() == "liver: top 3 genes by mean saliency (gradient), across all tissues"
    )
    assert drawn.figure.axes[1].get_ylabel() == "mean saliency (per-sample min-max scaled)"
