"""Saliency maps: the definition against Captum, batching, per-tissue files, ranking, heatmaps."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from captum.attr import InputXGradient, IntegratedGradients, NoiseTunnel, Saliency
from torch import nn

from rnaseq_saliency.evaluate import read_predictions
from rnaseq_saliency.expression import ExpressionTable
from rnaseq_saliency.faithfulness import write_chosen_method
from rnaseq_saliency.figures_saliency import plot_overview, plot_tissue_heatmap
from rnaseq_saliency.saliency import (
    attribute,
    correct_samples,
    make_tissue_saliency,
    method_options,
    minmax_per_sample,
    read_mean_matrix,
    read_tissue_saliency,
    read_top_genes,
    run_top_genes,
    run_top_genes_per_tissue,
    saliency,
    tissue_saliency,
    top_genes_table,
    write_tissue_saliency,
)

torch.set_num_threads(1)
ATOL = 1e-6  # batches of different sizes may round a matmul differently in the last bit


def network(n_in: int = 30, n_out: int = 4, seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Linear(n_in, 16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 8), nn.ReLU(),
        nn.Linear(8, n_out),
    )  # fmt: skip


def inputs(n: int = 12, n_in: int = 30, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, n_in)).astype(np.float32)


def captum_saliency(net: nn.Module, x: np.ndarray, target: torch.Tensor, abs: bool) -> np.ndarray:
    net.eval()
    tensor = torch.from_numpy(x).requires_grad_(True)
    return Saliency(net).attribute(tensor, target=target, abs=abs).detach().numpy()


def predicted(net: nn.Module, x: np.ndarray) -> torch.Tensor:
    net.eval()
    with torch.no_grad():
        return net(torch.from_numpy(x)).argmax(dim=1)


# ---------------------------------------------------------------------------- definition


@pytest.mark.parametrize("use_abs", [False, True])
def test_saliency_equals_captum_for_the_predicted_class(use_abs: bool) -> None:
    net, x = network(), inputs()
    ours = saliency(net, x, abs=use_abs)
    expected = minmax_per_sample(captum_saliency(net, x, predicted(net, x), abs=use_abs))
    np.testing.assert_allclose(ours, expected, atol=ATOL)


def test_signed_and_abs_maps_differ() -> None:
    # Guards the test above: if abs were ignored, both parametrisations would pass trivially.
    net, x = network(), inputs()
    assert not np.allclose(saliency(net, x, abs=False), saliency(net, x, abs=True), atol=1e-3)


def test_saliency_with_given_targets_equals_captum() -> None:
    net, x = network(), inputs()
    targets = np.arange(len(x)) % 4
    ours = saliency(net, x, target=targets)
    expected = minmax_per_sample(captum_saliency(net, x, torch.from_numpy(targets), abs=False))
    np.testing.assert_allclose(ours, expected, atol=ATOL)
    assert not np.allclose(ours, saliency(net, x), atol=1e-3)


def test_linear_network_saliency_is_the_scaled_weight_row() -> None:
    # Independent of Captum: the gradient of logit c of W x + b is W[c] for every sample.
    torch.manual_seed(3)
    linear = nn.Linear(10, 3)
    x = inputs(5, 10)
    maps = saliency(linear, x, target=2)
    weights = linear.weight.detach().numpy()[2]
    expected = (weights - weights.min()) / (weights.max() - weights.min())
    np.testing.assert_allclose(maps, np.tile(expected, (5, 1)), atol=ATOL)


def test_batched_equals_one_pass_per_sample() -> None:
    net, x = network(), inputs(n=23)
    batched = saliency(net, x, batch_size=8)
    per_sample = saliency(net, x, batch_size=1)
    np.testing.assert_allclose(batched, per_sample, atol=ATOL)


def test_values_are_in_unit_interval_with_min_0_and_max_1() -> None:
    maps = saliency(network(), inputs(), abs=True)
    assert maps.dtype == np.float32
    assert maps.min() >= 0.0 and maps.max() <= 1.0
    np.testing.assert_array_equal(maps.min(axis=1), 0.0)
    np.testing.assert_array_equal(maps.max(axis=1), 1.0)


def test_constant_gradient_gives_zeros_not_nan() -> None:
    net = network()
    with torch.no_grad():
        net[0].weight.zero_()  # the logits no longer depend on the input
    maps = saliency(net, inputs())
    np.testing.assert_array_equal(maps, 0.0)


def test_non_finite_maps_are_refused_naming_the_row() -> None:
    with pytest.raises(ValueError, match="row 1"):
        minmax_per_sample(np.array([[0.0, 1.0], [np.nan, 1.0]]))

    class Square(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x * x  # gradient 2x: NaN where the input is NaN

    x = inputs()
    x[4, 7] = np.nan
    with pytest.raises(ValueError, match="row 4 has non-finite"):  # counted across batches
        saliency(nn.Sequential(Square(), nn.Linear(30, 4)), x, batch_size=3, target=0)


def test_network_is_evaluated_frozen_and_restored() -> None:
    net, x = network(), inputs()
    net.train()
    net[0].weight.requires_grad_(True)
    net[3].bias.requires_grad_(False)
    first = saliency(net, x)
    # Dropout was off (two calls agree, and equal the eval-mode maps) ...
    np.testing.assert_array_equal(first, saliency(net, x))
    # ... no weight gradient was accumulated, and modes and flags are as they were.
    assert all(p.grad is None for p in net.parameters())
    assert net.training and all(m.training for m in net.modules())
    assert net[0].weight.requires_grad and not net[3].bias.requires_grad


def test_bad_targets_are_refused() -> None:
    with pytest.raises(ValueError, match=r"\[0, 4\)"):
        saliency(network(), inputs(), target=7)
    with pytest.raises(ValueError, match="12 integer class indices"):
        saliency(network(), inputs(), target=[0, 1])


# ---------------------------------------------------------------------------- Captum methods


def test_integrated_gradients_equals_captum_from_the_training_mean() -> None:
    net, x = network(), inputs()
    ours = attribute(net, x, "integrated_gradients", n_steps=16, batch_size=5)
    raw = IntegratedGradients(net.eval()).attribute(
        torch.from_numpy(x), baselines=0.0, target=predicted(net, x), n_steps=16
    )
    np.testing.assert_allclose(ours, minmax_per_sample(raw.detach().numpy()), atol=1e-5)


def test_input_x_gradient_equals_captum_and_differs_from_gradient() -> None:
    net, x = network(), inputs()
    ours = attribute(net, x, "input_x_gradient", abs=True)
    raw = InputXGradient(net.eval()).attribute(
        torch.from_numpy(x).requires_grad_(True), target=predicted(net, x)
    )
    np.testing.assert_allclose(ours, minmax_per_sample(np.abs(raw.detach().numpy())), atol=ATOL)
    assert not np.allclose(ours, attribute(net, x, "gradient", abs=True), atol=1e-3)


def test_smoothgrad_equals_captum_and_is_seeded() -> None:
    net, x = network(), inputs()
    ours = attribute(net, x, "smoothgrad", nt_samples=6, stdevs=0.5, seed=5, batch_size=100)
    torch.manual_seed(5)
    raw = NoiseTunnel(Saliency(net.eval())).attribute(
        torch.from_numpy(x).requires_grad_(True),
        nt_type="smoothgrad",
        nt_samples=6,
        nt_samples_batch_size=100 // len(x),
        stdevs=0.5,
        target=predicted(net, x),
        abs=False,
    )
    np.testing.assert_allclose(ours, minmax_per_sample(raw.detach().numpy()), atol=1e-5)
    again = attribute(net, x, "smoothgrad", nt_samples=6, stdevs=0.5, seed=5, batch_size=100)
    np.testing.assert_array_equal(ours, again)
    other = attribute(net, x, "smoothgrad", nt_samples=6, stdevs=0.5, seed=6, batch_size=100)
    assert not np.array_equal(ours, other)


def test_unknown_method_or_option_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown saliency method 'lrp'"):
        attribute(network(), inputs(), "lrp")
    with pytest.raises(ValueError, match="takes no option"):
        attribute(network(), inputs(), "gradient", n_steps=3)
    assert method_options("integrated_gradients", ig_steps=7) == {"n_steps": 7, "baseline": 0.0}
    assert method_options("smoothgrad", 1, 9, 0.3) == {"nt_samples": 9, "stdevs": 0.3}


# ---------------------------------------------------------------------------- per tissue

TISSUES = ["liver", "lung", "pancreas"]


@dataclass
class StandInModel:
    """The attributes of rnaseq_saliency.model.TrainedModel that saliency uses."""

    network: nn.Module
    gene_ids: list[str]
    gene_names: list[str]
    tissues: list[str]
    mean: np.ndarray
    std: np.ndarray

    def scale(self, raw: np.ndarray) -> np.ndarray:
        return ((np.log1p(raw) - self.mean) / self.std).astype(np.float32)


def stand_in(n_genes: int = 30) -> StandInModel:
    return StandInModel(
        network=network(n_genes, len(TISSUES)),
        gene_ids=[f"ENSG{i:011d}.1" for i in range(n_genes)],
        gene_names=[f"GENE{i}" for i in range(n_genes)],
        tissues=list(TISSUES),
        mean=np.full(n_genes, 1.0, dtype=np.float32),
        std=np.full(n_genes, 0.5, dtype=np.float32),
    )


def expression_of(model: StandInModel, sample_ids: list[str], seed: int = 2) -> ExpressionTable:
    raw = np.random.default_rng(seed).gamma(2.0, 2.0, size=(len(sample_ids), len(model.gene_ids)))
    return ExpressionTable(
        sample_ids=sample_ids,
        donor_ids=[s.split("-")[0] for s in sample_ids],
        gene_ids=list(model.gene_ids),
        matrix=raw.astype(np.float32),
    )


def prediction_rows(rows: list[tuple[str, str, str, str]]) -> pd.DataFrame:
    table = pd.DataFrame(rows, columns=["sample_id", "tissue", "split", "predicted"])
    table["probability"] = 0.9
    table["correct"] = table["tissue"] == table["predicted"]
    return table


def test_only_correctly_classified_test_samples_are_used() -> None:
    model = stand_in()
    predictions = prediction_rows(
        [
            ("A-1", "lung", "test", "lung"),
            ("A-2", "lung", "test", "liver"),  # wrong
            ("A-3", "lung", "val", "lung"),  # other split
            ("A-4", "liver", "test", "liver"),  # other tissue
            ("A-5", "lung", "test", "lung"),
        ]
    )
    table = expression_of(model, ["A-0", "A-1", "A-2", "A-3", "A-4", "A-5"])
    result = tissue_saliency(model, table, predictions, "lung")
    assert result.sample_ids == ["A-1", "A-5"]
    assert result.info["split"] == "test" and result.info["n_evaluated"] == 3
    # Target is the tissue's class, on those samples' scaled expression.
    expected = saliency(model.network, model.scale(table.matrix[[1, 5]]), target=1)
    np.testing.assert_allclose(result.maps, expected, atol=ATOL)


def test_validation_split_is_used_when_predictions_hold_no_test_rows() -> None:
    predictions = prediction_rows([("A-1", "lung", "val", "lung"), ("A-2", "lung", "val", "liver")])
    assert correct_samples(predictions, "lung") == (["A-1"], "val", 2)


def test_predictions_file_correct_column_is_parsed(tmp_path: Path) -> None:
    path = tmp_path / "predictions.tsv"
    path.write_text(
        "sample_id\ttissue\tsplit\tpredicted\tprobability\tcorrect\n"
        "A-1\tlung\ttest\tlung\t0.9\tTrue\nA-2\tlung\ttest\tliver\t0.6\tfalse\n"
    )
    assert read_predictions(path)["correct"].tolist() == [True, False]
    path.write_text("sample_id\ttissue\tsplit\tpredicted\tcorrect\nA-1\tlung\ttest\tlung\tyes\n")
    with pytest.raises(ValueError, match=r"predictions.tsv: column 'correct'"):
        read_predictions(path)


def test_tissue_file_round_trips_with_aggregates(tmp_path: Path) -> None:
    model = stand_in()
    ids = [f"S-{i}" for i in range(5)]
    predictions = prediction_rows([(s, "pancreas", "test", "pancreas") for s in ids])
    result = tissue_saliency(model, expression_of(model, ids), predictions, "pancreas")
    path = tmp_path / "pancreas.parquet"
    write_tissue_saliency(path, result)
    back = read_tissue_saliency(path)
    assert back.tissue == "pancreas" and back.sample_ids == ids
    assert back.gene_ids == model.gene_ids
    np.testing.assert_array_equal(back.maps, result.maps)
    np.testing.assert_allclose(back.mean, result.maps.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(back.median, np.median(result.maps, axis=0), rtol=1e-6)
    np.testing.assert_allclose(back.sd, result.maps.std(axis=0, ddof=1), rtol=1e-5)
    assert back.info["method"] == "gradient" and back.info["class_index"] == 2
    assert back.info["n_samples"] == 5
    table = pd.read_parquet(path)  # readable without the package
    assert table["row"].tolist() == ["mean", "median", "sd", "n", *["sample"] * 5]
    assert set(table.loc[table["row"] == "n", "saliency"].iloc[0]) == {5.0}


def test_same_inputs_give_byte_identical_files(tmp_path: Path) -> None:
    model = stand_in()
    ids = ["S-1", "S-2"]
    predictions = prediction_rows([(s, "liver", "test", "liver") for s in ids])
    for name in ("a.parquet", "b.parquet"):
        write_tissue_saliency(
            tmp_path / name, tissue_saliency(model, expression_of(model, ids), predictions, "liver")
        )
    assert (tmp_path / "a.parquet").read_bytes() == (tmp_path / "b.parquet").read_bytes()


@pytest.mark.parametrize("tissue", ["lung", "bladder"])
def test_tissue_without_maps_writes_a_valid_empty_file(tmp_path: Path, tissue: str) -> None:
    # lung: known to the model, no correct test sample; bladder: dropped by the split.
    model = stand_in()
    predictions = prediction_rows([("A-1", "lung", "test", "liver")])
    result = tissue_saliency(model, expression_of(model, ["A-1"]), predictions, tissue)
    path = tmp_path / f"{tissue}.parquet"
    write_tissue_saliency(path, result)
    back = read_tissue_saliency(path)
    assert back.n_samples == 0 and back.maps.shape == (0, 30)
    assert np.isnan(back.mean).all() and np.isnan(back.sd).all()
    assert back.info["n_samples"] == 0


def test_missing_expression_sample_is_an_error() -> None:
    model = stand_in()
    predictions = prediction_rows([("A-9", "lung", "test", "lung")])
    with pytest.raises(ValueError, match="A-9"):
        tissue_saliency(model, expression_of(model, ["A-1"]), predictions, "lung")


# ---------------------------------------------------------------------------- ranking, figures


def fake_file(path: Path, tissue: str, maps: np.ndarray, gene_ids: list[str]) -> Path:
    ids = [f"{tissue}-{i}" for i in range(len(maps))]
    info = {"method": path.parent.name}  # laid out as the workflow's maps/{method}/{tissue}
    write_tissue_saliency(path, make_tissue_saliency(tissue, gene_ids, ids, maps, info))
    return path


def ranked_inputs(tmp_path: Path) -> tuple[list[Path], list[str], list[str]]:
    gene_ids = ["G0.1", "G1.1", "G2.1", "G3.1"]
    maps = {
        "liver": np.array([[0.1, 0.9, 0.5, 0.0], [0.3, 0.7, 0.5, 0.2]]),
        "lung": np.array([[1.0, 0.0, 0.2, 0.4]]),
        "pancreas": np.empty((0, 4)),
    }
    (tmp_path / "gradient").mkdir(exist_ok=True)
    files = [
        fake_file(tmp_path / "gradient" / f"{t}.parquet", t, m, gene_ids) for t, m in maps.items()
    ]
    return files, list(maps), gene_ids


def chosen_file(tmp_path: Path, method: str = "gradient") -> Path:
    path = tmp_path / f"chosen_{method}.json"
    write_chosen_method(path, {"method": method})
    return path


def test_top_genes_rank_every_gene_by_mean(tmp_path: Path) -> None:
    files, tissues, gene_ids = ranked_inputs(tmp_path)
    top, matrix = top_genes_table(files, tissues, gene_ids, ["A", "B", "", "D"])
    liver = top.loc[top["tissue"] == "liver"]
    assert liver["gene_id"].tolist() == ["G1.1", "G2.1", "G0.1", "G3.1"]
    assert liver["rank"].tolist() == [1, 2, 3, 4]
    assert liver["gene_name"].tolist() == ["B", "", "A", "D"]
    np.testing.assert_allclose(liver["mean"], [0.8, 0.5, 0.2, 0.1], rtol=1e-6)
    np.testing.assert_allclose(liver["sd"].iloc[0], np.std([0.9, 0.7], ddof=1), rtol=1e-5)
    assert set(top["tissue"]) == {"liver", "lung"}  # pancreas has no maps
    assert matrix.shape == (4, 3) and list(matrix.columns) == tissues
    assert matrix["pancreas"].isna().all()
    assert matrix.loc["G0.1", "lung"] == pytest.approx(1.0)


def test_top_genes_rule_outputs_read_back(tmp_path: Path) -> None:
    files, tissues, gene_ids = ranked_inputs(tmp_path)
    genes = tmp_path / "selected_genes.tsv"
    genes.write_text("gene_id\tgene_name\n" + "".join(f"{g}\tN{g}\n" for g in gene_ids))
    chosen = chosen_file(tmp_path)
    top, matrix = run_top_genes(
        files, tissues, chosen, genes, tmp_path / "t.tsv", tmp_path / "m.parquet"
    )
    pd.testing.assert_frame_equal(read_top_genes(tmp_path / "t.tsv"), top, check_dtype=False)
    pd.testing.assert_frame_equal(read_mean_matrix(tmp_path / "m.parquet"), matrix)
    with pytest.raises(ValueError, match="expected 'lung'"):
        top_genes_table(files[:2], ["liver", "lung"][::-1], gene_ids, gene_ids)


def test_top_genes_use_the_chosen_methods_maps_only(tmp_path: Path) -> None:
    files, tissues, gene_ids = ranked_inputs(tmp_path)
    genes = tmp_path / "selected_genes.tsv"
    genes.write_text("gene_id\tgene_name\n" + "".join(f"{g}\tN{g}\n" for g in gene_ids))
    (tmp_path / "input_x_gradient").mkdir()
    reversed_maps = [
        fake_file(tmp_path / "input_x_gradient" / f"{t}.parquet", t, m, gene_ids)
        for t, m in zip(
            tissues,
            [np.array([[0.9, 0.1, 0.0, 0.5]]), np.ones((1, 4)), np.empty((0, 4))],
            strict=True,
        )
    ]
    both = [*files, *reversed_maps]
    chosen = chosen_file(tmp_path, "input_x_gradient")
    top, _ = run_top_genes(both, tissues, chosen, genes, tmp_path / "t.tsv", tmp_path / "m.pq")
    assert top.loc[top["tissue"] == "liver", "gene_id"].iloc[0] == "G0.1"
    assert set(top["method"]) == {"input_x_gradient"}
    gradient, _ = run_top_genes(
        both, tissues, chosen_file(tmp_path), genes, tmp_path / "t.tsv", tmp_path / "m.pq"
    )
    assert gradient.loc[gradient["tissue"] == "liver", "gene_id"].iloc[0] == "G1.1"
    with pytest.raises(ValueError, match="no saliency maps of method 'smoothgrad'"):
        run_top_genes(
            both, tissues, chosen_file(tmp_path, "smoothgrad"), genes, tmp_path / "t.tsv",
            tmp_path / "m.pq",
        )  # fmt: skip


def test_top_genes_per_tissue_keeps_each_tissues_best_ranks_in_order(tmp_path: Path) -> None:
    files, tissues, gene_ids = ranked_inputs(tmp_path)
    genes = tmp_path / "selected_genes.tsv"
    genes.write_text("gene_id\tgene_name\n" + "".join(f"{g}\tN{g}\n" for g in gene_ids))
    full, _ = run_top_genes(
        files, tissues, chosen_file(tmp_path), genes, tmp_path / "t.tsv", tmp_path / "m.parquet"
    )
    short = run_top_genes_per_tissue(tmp_path / "t.tsv", 2, tmp_path / "short.tsv")
    assert short["tissue"].tolist() == ["liver", "liver", "lung", "lung"]
    assert short["rank"].tolist() == [1, 2, 1, 2]
    for tissue in ("liver", "lung"):
        expected = full.loc[full["tissue"] == tissue].head(2)
        assert (
            short.loc[short["tissue"] == tissue, "gene_id"].tolist() == expected["gene_id"].tolist()
        )
    pd.testing.assert_frame_equal(read_top_genes(tmp_path / "short.tsv"), short, check_dtype=False)
    everything = run_top_genes_per_tissue(tmp_path / "t.tsv", 100, tmp_path / "all.tsv")
    assert len(everything) == len(full)
    with pytest.raises(ValueError, match=r"saliency\.top_n: expected >= 1"):
        run_top_genes_per_tissue(tmp_path / "t.tsv", 0, tmp_path / "none.tsv")
    assert not (tmp_path / "none.tsv").exists()


def heatmap_inputs(n_genes: int = 30) -> tuple[pd.DataFrame, pd.DataFrame]:
    tissues = [f"tissue_{i}" for i in range(6)]
    gene_ids = [f"G{i}" for i in range(n_genes)]
    matrix = pd.DataFrame(
        np.random.default_rng(0).random((n_genes, len(tissues))),
        index=pd.Index(gene_ids, name="gene_id"),
        columns=tissues,
        dtype=np.float32,
    )
    blocks = []
    for tissue in tissues:
        order = np.argsort(-matrix[tissue].to_numpy(), kind="stable")
        blocks.append(
            pd.DataFrame(
                {
                    "tissue": tissue,
                    "rank": np.arange(1, n_genes + 1),
                    "gene_id": np.array(gene_ids)[order],
                    "gene_name": [f"SYM{i}" for i in order],
                    "mean": matrix[tissue].to_numpy()[order],
                    "sd": 0.1,
                }
            )
        )
    return matrix, pd.concat(blocks, ignore_index=True)


def test_heatmap_outlines_the_tissue_column(tmp_path: Path) -> None:
    matrix, top = heatmap_inputs()
    drawn = plot_tissue_heatmap(matrix, top, "tissue_4", 5, tmp_path / "h.png")
    assert (tmp_path / "h.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert drawn.columns == list(matrix.columns)
    (outline,) = drawn.outlines
    assert outline in drawn.ax.patches
    assert outline.get_x() + outline.get_width() / 2 == drawn.columns.index("tissue_4")
    assert outline.get_height() == 5 and outline.get_edgecolor()[:3] == (0.0, 0.0, 1.0)
    # Rows: the tissue's top 5 by mean, labelled with symbols, in rank order.
    expected = top.loc[top["tissue"] == "tissue_4"].head(5)
    assert drawn.gene_ids == expected["gene_id"].tolist()
    assert [t.get_text() for t in drawn.ax.get_yticklabels()] == expected["gene_name"].tolist()
    assert drawn.ax.get_title().startswith("tissue_4")
    assert len(drawn.figure.axes) == 2  # heatmap and colour bar


def test_heatmap_of_a_tissue_without_maps_says_so(tmp_path: Path) -> None:
    matrix, top = heatmap_inputs()
    top = top.loc[top["tissue"] != "tissue_2"]
    drawn = plot_tissue_heatmap(matrix, top, "tissue_2", 5, tmp_path / "h.png")
    assert drawn.outlines == [] and (tmp_path / "h.png").stat().st_size > 0
    assert "No saliency maps" in drawn.ax.texts[0].get_text()


def test_overview_groups_each_tissues_top_genes(tmp_path: Path) -> None:
    matrix, top = heatmap_inputs()
    drawn = plot_overview(matrix, top, 20, tmp_path / "o.png", per_tissue=3)
    assert (tmp_path / "o.png").stat().st_size > 0
    assert len(drawn.outlines) == 6 and len(drawn.gene_ids) == len(set(drawn.gene_ids))
    for outline, tissue in zip(drawn.outlines, matrix.columns, strict=True):
        assert outline.get_x() + 0.5 == list(matrix.columns).index(tissue)
    assert drawn.rows[0].endswith("(tissue_0)")
