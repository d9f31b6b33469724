"""Saliency validation: its statistics, and on a toy problem with known informative genes."""

from __future__ import annotations

from dataclasses import dataclass
from math import comb
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from scipy.stats import ttest_ind
from torch import nn

from rnaseq_saliency.differential import GroupMoments, de_table, one_vs_rest_t
from rnaseq_saliency.expression import ExpressionTable, write_expression
from rnaseq_saliency.genes import read_gmt
from rnaseq_saliency.saliency import (
    make_tissue_saliency,
    read_tissue_saliency,
    saliency,
    tissue_saliency,
    write_tissue_saliency,
)
from rnaseq_saliency.saliency_validation import (
    SUMMARY_ROW,
    VALIDATION_COLUMNS,
    hypergeom_p,
    marker_indices,
    randomised_network,
    read_validation,
    saliency_validation,
    split_half_overlap,
    topk_overlap,
    unversioned,
    validate_tissue,
    write_validation,
)
from rnaseq_saliency.settings import DEFAULT_SALIENCY

torch.set_num_threads(1)

# ---------------------------------------------------------------------------- statistics


def test_one_vs_rest_t_equals_scipy_welch() -> None:
    rng = np.random.default_rng(0)
    groups = {
        "a": rng.normal(1.0, 1.0, (7, 5)),
        "b": rng.normal(0, 2, (9, 5)),
        "c": rng.random((4, 5)),
    }
    moments = GroupMoments(5)
    for name, values in groups.items():
        moments.add(name, values[:3])
        moments.add(name, values[3:])  # accumulated in blocks, as file by file
    rest = np.concatenate([groups["b"], groups["c"]])
    expected = ttest_ind(groups["a"], rest, equal_var=False).statistic
    np.testing.assert_allclose(one_vs_rest_t(moments, "a"), expected, rtol=1e-8)
    assert np.isnan(one_vs_rest_t(moments, "absent")).all()


def test_constant_genes_get_zero_or_infinite_t() -> None:
    moments = GroupMoments(2)
    moments.add("a", np.array([[1.0, 5.0], [1.0, 5.0]]))
    moments.add("b", np.array([[1.0, 2.0], [1.0, 2.0]]))
    assert one_vs_rest_t(moments, "a").tolist() == [0.0, np.inf]


def test_hypergeometric_p_is_the_upper_tail() -> None:
    universe, markers, k, hits = 50, 6, 10, 3
    tail = sum(comb(markers, i) * comb(universe - markers, k - i) for i in range(hits, markers + 1))
    assert hypergeom_p(hits, universe, markers, k) == pytest.approx(tail / comb(universe, k))
    assert hypergeom_p(0, universe, markers, k) == pytest.approx(1.0)


def test_topk_overlap_and_split_halves() -> None:
    assert topk_overlap(np.array([5, 4, 3, 2, 1.0]), np.array([1, 4, 3, 2, 5.0]), 2) == 0.5
    maps = np.random.default_rng(1).random((10, 30))
    assert split_half_overlap(maps, 5, seed=3) == split_half_overlap(maps, 5, seed=3)
    assert np.isnan(split_half_overlap(maps[:1], 5, seed=3))
    maps[:, :5] += 5.0  # the same five genes on top in every sample
    assert split_half_overlap(maps, 5, seed=3) == 1.0


def test_gmt_is_parsed_and_errors_name_the_line(tmp_path: Path) -> None:
    gmt = tmp_path / "markers.gmt"
    gmt.write_text("# comment\nliver\tHPA\tENSG00000000001\tENSG00000000002.7\n\nlung\t\tSFTPC\n")
    assert read_gmt(gmt) == {
        "liver": ["ENSG00000000001", "ENSG00000000002.7"],
        "lung": ["SFTPC"],
    }
    gmt.write_text("liver\tHPA\tA\nliver\tHPA\tB\n")
    with pytest.raises(ValueError, match=r"markers.gmt:2: gene set 'liver' appears twice"):
        read_gmt(gmt)
    gmt.write_text("liver\tHPA\n")
    with pytest.raises(ValueError, match=r"markers.gmt:1:"):
        read_gmt(gmt)


def test_markers_match_on_unversioned_ids_or_symbols() -> None:
    gene_ids = ["ENSG00000000001.3", "ENSG00000000002.1", "ENSG00000000002.1_PAR_Y", "ENSG3.1"]
    names = ["ALB", "SFTPC", "SFTPC", "INS"]
    assert unversioned("ENSG00000000002.1_PAR_Y") == "ENSG00000000002_PAR_Y"
    found = marker_indices(["ENSG00000000001", "ENSG00000000002.9", "INS", "NOPE"], gene_ids, names)
    assert found.tolist() == [0, 1, 3]


def test_randomised_network_is_new_seeded_and_leaves_the_original() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    before = [p.detach().clone() for p in net.parameters()]
    state = torch.get_rng_state()
    first, second = randomised_network(net, 1), randomised_network(net, 1)
    assert torch.equal(torch.get_rng_state(), state)
    for original, p, q in zip(before, first.parameters(), second.parameters(), strict=True):
        assert not torch.equal(original, p) and torch.equal(p, q)
    for original, p in zip(before, net.parameters(), strict=True):
        assert torch.equal(original, p)


# ---------------------------------------------------------------------------- toy problem

TISSUES = ["tissue_a", "tissue_b", "tissue_c"]
N_GENES = 200
INFORMATIVE = {t: list(range(5 * i, 5 * i + 5)) for i, t in enumerate(TISSUES)}


@dataclass
class ToyModel:
    network: nn.Module
    gene_ids: list[str]
    gene_names: list[str]
    tissues: list[str]
    mean: np.ndarray
    std: np.ndarray

    def scale(self, raw: np.ndarray) -> np.ndarray:
        return ((np.log1p(raw) - self.mean) / self.std).astype(np.float32)


@dataclass
class Toy:
    model: ToyModel
    saliency_files: list[Path]
    expression_files: list[Path]
    samples: pd.DataFrame
    predictions: pd.DataFrame
    markers: dict[str, list[str]]
    raw: dict[str, np.ndarray]


@pytest.fixture(scope="module")
def toy(tmp_path_factory: pytest.TempPathFactory) -> Toy:
    """Three tissues; genes 5i..5i+4 are raised in tissue i, the other 195 are noise."""
    root = tmp_path_factory.mktemp("toy")
    rng = np.random.default_rng(0)
    gene_ids = [f"ENSG{i:011d}.{i % 3 + 1}" for i in range(N_GENES)]
    gene_names = [f"SYM{i}" for i in range(N_GENES)]
    rows = []
    raw: dict[str, np.ndarray] = {}
    expression_files = []
    for t, tissue in enumerate(TISSUES):
        log_values = rng.normal(2.0, 0.6, (40, N_GENES))
        log_values[:, INFORMATIVE[tissue]] += 2.5
        raw[tissue] = np.expm1(np.clip(log_values, 0, None)).astype(np.float32)
        ids = [f"D{t}{i:02d}-{tissue}" for i in range(40)]
        for i, sample in enumerate(ids):
            split = "train" if i < 25 else "val" if i < 30 else "test"
            rows.append((sample, sample.split("-")[0], tissue, split))
        path = root / f"{tissue}.parquet"
        write_expression(
            path, ExpressionTable(ids, [s.split("-")[0] for s in ids], gene_ids, raw[tissue])
        )
        expression_files.append(path)
    samples = pd.DataFrame(rows, columns=["sample_id", "donor_id", "tissue", "split"])
    train = samples["split"] == "train"
    all_raw = np.concatenate([raw[t] for t in TISSUES])
    logs = np.log1p(all_raw[train.to_numpy()])
    torch.manual_seed(0)  # before the network is built: its initial weights come from torch
    model = ToyModel(
        network=nn.Sequential(nn.Linear(N_GENES, 32), nn.ReLU(), nn.Dropout(0.2), nn.Linear(32, 3)),
        gene_ids=gene_ids,
        gene_names=gene_names,
        tissues=list(TISSUES),
        mean=logs.mean(axis=0).astype(np.float32),
        std=logs.std(axis=0).astype(np.float32),
    )
    x = torch.from_numpy(model.scale(all_raw[train.to_numpy()]))
    y = torch.tensor([TISSUES.index(t) for t in samples.loc[train, "tissue"]])
    optimiser = torch.optim.Adam(model.network.parameters(), lr=0.01, weight_decay=1e-3)
    model.network.train()
    for _ in range(150):
        optimiser.zero_grad()
        nn.functional.cross_entropy(model.network(x), y).backward()
        optimiser.step()
    model.network.eval()
    held_out = samples.loc[~train].reset_index(drop=True)
    with torch.no_grad():
        logits = model.network(torch.from_numpy(model.scale(all_raw[(~train).to_numpy()])))
    predictions = held_out[["sample_id", "tissue", "split"]].assign(
        predicted=[TISSUES[i] for i in logits.argmax(dim=1).tolist()], probability=0.9
    )
    predictions["correct"] = predictions["predicted"] == predictions["tissue"]
    assert predictions["correct"].all(), "the toy classifier should be perfect"
    saliency_files = []
    for tissue, path in zip(TISSUES, expression_files, strict=True):
        from rnaseq_saliency.expression import read_expression

        result = tissue_saliency(model, read_expression(path), predictions, tissue)
        # Laid out as the workflow's maps: the folder names the method.
        saliency_files.append(root / "gradient" / f"{tissue}.parquet")
        saliency_files[-1].parent.mkdir(exist_ok=True)
        write_tissue_saliency(saliency_files[-1], result)
    markers = {
        # By unversioned id (as in the HPA-derived GMT), plus a gene outside the model.
        "tissue_a": [gene_ids[i].split(".")[0] for i in INFORMATIVE["tissue_a"]] + ["ENSG99"],
        # By symbol.
        "tissue_b": [gene_names[i] for i in INFORMATIVE["tissue_b"]],
    }
    return Toy(model, saliency_files, expression_files, samples, predictions, markers, raw)


def de_statistic(toy: Toy) -> pd.DataFrame:
    return de_table(toy.expression_files, toy.samples, toy.model.gene_ids, TISSUES)


def run(toy: Toy, **kwargs) -> pd.DataFrame:
    return saliency_validation(
        toy.saliency_files,
        TISSUES,
        toy.model,
        toy.expression_files,
        de_statistic(toy),
        toy.predictions,
        toy.markers,
        top_k_genes=5,
        seed=0,
        **kwargs,
    ).set_index("tissue")


def test_toy_validation_recovers_the_informative_genes(toy: Toy, tmp_path: Path) -> None:
    table = run(toy)
    assert list(table.index) == [*TISSUES, SUMMARY_ROW]
    for tissue in TISSUES:
        row = table.loc[tissue]
        assert row["n_samples"] == 10 and row["n_evaluated"] == 10
        assert row["method"] == "gradient"
        assert row["de_overlap"] >= 0.8, tissue  # top-5 salient ~ top-5 by t on training rows
        assert row["stability_overlap"] >= 0.8, tissue
        assert abs(row["random_spearman"]) < 0.3, tissue  # randomised model: unrelated maps
    for tissue in ("tissue_a", "tissue_b"):
        row = table.loc[tissue]
        assert row["n_markers"] == 5 and row["marker_overlap"] >= 4
        assert row["marker_p"] < 1e-6
    assert np.isnan(table.loc["tissue_c", "marker_p"])  # no set for it
    summary = table.loc[SUMMARY_ROW]
    assert summary["n_samples"] == 30 and summary["method"] == "gradient"
    assert summary["de_overlap"] == pytest.approx(table.loc[TISSUES, "de_overlap"].median())
    write_validation(tmp_path / "validation.tsv", table.reset_index())
    back = read_validation(tmp_path / "validation.tsv")
    assert list(back.columns) == VALIDATION_COLUMNS and len(back) == 4


def test_toy_validation_fails_maps_of_an_untrained_model(toy: Toy) -> None:
    # The checks can fail: maps of a randomly initialised network miss the informative genes.
    untrained = randomised_network(toy.model.network, 7)
    for tissue, path in zip(TISSUES, toy.saliency_files, strict=True):
        trained = read_tissue_saliency(path)
        scaled = toy.model.scale(toy.raw[tissue][30:])
        maps = saliency(untrained, scaled, target=TISSUES.index(tissue))
        fake = make_tissue_saliency(
            tissue, trained.gene_ids, trained.sample_ids, maps, trained.info
        )
        moments = GroupMoments(N_GENES)
        for name in TISSUES:
            moments.add(name, np.log1p(toy.raw[name][:25].astype(np.float64)))
        markers = np.array(INFORMATIVE[tissue])
        check = (fake.mean, trained.mean)
        row = validate_tissue(fake, one_vs_rest_t(moments, tissue), check, markers, 5, 0)
        assert row["de_overlap"] <= 0.4 and row["marker_p"] > 1e-3, tissue


def test_the_randomised_check_uses_a_seeded_subset_of_large_tissues() -> None:
    from rnaseq_saliency.saliency_validation import RANDOM_CHECK_SAMPLES, random_check_rows

    np.testing.assert_array_equal(random_check_rows(5, 0, "liver"), np.arange(5))
    rows = random_check_rows(100, 0, "liver")
    assert len(rows) == RANDOM_CHECK_SAMPLES and len(set(rows)) == RANDOM_CHECK_SAMPLES
    assert (np.diff(rows) > 0).all() and rows.max() < 100
    np.testing.assert_array_equal(rows, random_check_rows(100, 0, "liver"))
    assert not np.array_equal(rows, random_check_rows(100, 0, "lung"))


def test_stale_or_mismatched_saliency_files_are_refused(toy: Toy) -> None:
    de = de_statistic(toy)
    with pytest.raises(ValueError, match="expected 'tissue_b'"):
        saliency_validation(toy.saliency_files[:1], ["tissue_b"], toy.model, [], de)
    wrong = toy.predictions.assign(correct=False)
    with pytest.raises(ValueError, match="not a correct prediction"):
        saliency_validation(toy.saliency_files, TISSUES, toy.model, toy.expression_files, de, wrong)


def test_every_method_gets_its_rows_and_its_own_summary(toy: Toy, tmp_path: Path) -> None:
    from rnaseq_saliency.expression import read_expression

    files = list(toy.saliency_files)
    for tissue, path in zip(TISSUES, toy.expression_files, strict=True):
        result = tissue_saliency(
            toy.model, read_expression(path), toy.predictions, tissue, method="input_x_gradient"
        )
        files.append(tmp_path / "input_x_gradient" / f"{tissue}.parquet")
        files[-1].parent.mkdir(exist_ok=True)
        write_tissue_saliency(files[-1], result)
    table = saliency_validation(
        files, TISSUES, toy.model, toy.expression_files, de_statistic(toy), top_k_genes=5
    )
    assert table["method"].tolist() == ["gradient"] * 4 + ["input_x_gradient"] * 4
    assert table["tissue"].tolist() == [*TISSUES, SUMMARY_ROW] * 2
    gradient_only = saliency_validation(
        toy.saliency_files, TISSUES, toy.model, toy.expression_files, de_statistic(toy),
        top_k_genes=5,
    )  # fmt: skip
    pd.testing.assert_frame_equal(table.head(4), gradient_only)


def test_rule_functions_write_their_outputs_from_files(
    toy: Toy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The package entry points behind scripts/de_statistic.py, saliency.py, choose_method.py,
    top_genes.py, saliency_validation.py and saliency_methods.py, in the workflow's order."""
    import json

    import rnaseq_saliency.model
    from rnaseq_saliency.differential import run_de_statistic
    from rnaseq_saliency.faithfulness import K_GRID, read_faithfulness, run_choose_method
    from rnaseq_saliency.figures_saliency import run_overview, run_tissue_heatmap
    from rnaseq_saliency.method_comparison import METHODS_COLUMNS, run_saliency_methods
    from rnaseq_saliency.saliency import maps_path, run_tissue_saliency, run_top_genes
    from rnaseq_saliency.saliency_validation import run_validation

    monkeypatch.setattr(rnaseq_saliency.model, "load_model", lambda model_dir: toy.model)
    predictions, samples, genes = (tmp_path / n for n in ("p.tsv", "s.tsv", "g.tsv"))
    toy.predictions.to_csv(predictions, sep="\t", index=False)
    toy.samples.to_csv(samples, sep="\t", index=False)
    pd.DataFrame({"gene_id": toy.model.gene_ids, "gene_name": toy.model.gene_names}).to_csv(
        genes, sep="\t", index=False
    )
    gmt = tmp_path / "markers.gmt"
    gmt.write_text("".join(f"{t}\tmarkers\t" + "\t".join(g) + "\n" for t, g in toy.markers.items()))
    de = tmp_path / "de.parquet"
    run_de_statistic(toy.expression_files, samples, genes, TISSUES, de)
    methods = ("gradient", "input_x_gradient")
    root = str(tmp_path / "maps")
    curves = [tmp_path / f"faithfulness_{t}.tsv" for t in TISSUES]
    for tissue, expression, curve in zip(TISSUES, toy.expression_files, curves, strict=True):
        paths = {m: maps_path(m, tissue, root) for m in methods}
        for path in paths.values():
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        settings = DEFAULT_SALIENCY._replace(methods=methods)
        run_tissue_saliency("model", predictions, expression, de, paths, curve, tissue, settings, 1)
    maps = [maps_path(m, t, root) for m in methods for t in TISSUES]
    chosen = tmp_path / "chosen.json"
    method = run_choose_method(curves, methods, "auto", tmp_path / "faithfulness.tsv", chosen)
    assert json.loads(chosen.read_text())["method"] == method
    faithfulness = read_faithfulness(tmp_path / "faithfulness.tsv")
    assert len(faithfulness) == len(TISSUES) * len(methods) * 2 * len(K_GRID[:-1])  # k <= 200
    top, _ = run_top_genes(maps, TISSUES, chosen, genes, tmp_path / "top.tsv", tmp_path / "m.pq")
    assert top.groupby("tissue").size().tolist() == [N_GENES] * 3
    assert set(top["method"]) == {method}
    run_tissue_heatmap(tmp_path / "top.tsv", tmp_path / "m.pq", "tissue_b", 20, tmp_path / "h.png")
    run_overview(tmp_path / "top.tsv", tmp_path / "m.pq", 20, tmp_path / "o.png")
    outputs = []
    for name in ("v1.tsv", "v2.tsv"):
        run_validation(
            maps, TISSUES, "model", predictions, toy.expression_files, de, genes, gmt,
            tmp_path / name, top_k_genes=5, seed=0,
        )  # fmt: skip
        outputs.append((tmp_path / name).read_bytes())
    assert outputs[0] == outputs[1]  # same seed, same bytes
    table = read_validation(tmp_path / "v1.tsv").set_index(["method", "tissue"])
    assert table.loc[("gradient", "tissue_a"), "marker_p"] < 1e-6
    assert table.loc[("input_x_gradient", "tissue_b"), "n_markers"] == 5
    compared = run_saliency_methods(
        tmp_path / "faithfulness.tsv", tmp_path / "v1.tsv", chosen, maps, TISSUES, genes, 10,
        tmp_path / "methods.tsv", tmp_path / "methods.png", tmp_path / "by_method.tsv",
    )  # fmt: skip
    assert list(compared.columns) == METHODS_COLUMNS
    assert compared["method"].tolist() == list(methods)
    assert compared.set_index("method")["chosen"].to_dict() == {m: m == method for m in methods}
    assert (compared["test_aopc_ratio"] > 1).all()  # both rank informative genes first here
    by_method = pd.read_csv(tmp_path / "by_method.tsv", sep="\t")
    assert by_method.groupby(["method", "tissue"]).size().tolist() == [10] * 6
    assert (tmp_path / "methods.png").stat().st_size > 0
