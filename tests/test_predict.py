"""Classifying new samples: input layouts, gene matching, missing genes, outputs and the command."""

from __future__ import annotations

import gzip
import importlib.metadata
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from rnaseq_saliency import cli
from rnaseq_saliency import model as md
from rnaseq_saliency import predict as pr
from rnaseq_saliency.demo import write_gct
from rnaseq_saliency.saliency import attribute
from rnaseq_saliency.settings import DEFAULT_SALIENCY

torch.set_num_threads(1)

TISSUES = ["liver", "lung", "whole_blood"]
N_GENES = 40
# The last two are the chrX and chrY (_PAR_Y) copies of one pseudo-autosomal gene.
GENE_IDS = [f"ENSG{i:011d}.{i % 5 + 1}" for i in range(N_GENES - 1)] + [
    f"ENSG{N_GENES - 2:011d}.{(N_GENES - 2) % 5 + 1}_PAR_Y"
]
GENE_NAMES = [f"GENE{i}" for i in range(N_GENES)]
TRAINING_LEVEL = 10.0  # every gene's training mean, in raw units
SAMPLE_IDS = ["LIVER-1", "LUNG-1", "BLOOD-1", "MIXED-1"]


def _unversioned(gene_id: str) -> str:
    base, par, _ = gene_id.partition("_PAR_Y")
    return base.split(".")[0] + par


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A linear model whose scores are known: tissue k's logit is W[k] . scaled input.

    Three identity hidden layers (no activation, no dropout) pass the scaled input through, so
    the gradient of tissue k's logit is W[k]: its markers (genes 3k, 3k+1, 3k+2 with weights
    3, 2, 1) rank first in that order, the rest have small distinct negative weights.
    """
    architecture = md.resolve_architecture(
        N_GENES, len(TISSUES), hidden=(N_GENES,) * 3, dropout=0.0, activation="none"
    )
    network = md.network_from_architecture(architecture)
    weights = -0.001 * np.tile(np.arange(1, N_GENES + 1, dtype=np.float32), (len(TISSUES), 1))
    for k in range(len(TISSUES)):
        weights[k, 3 * k : 3 * k + 3] = [3.0, 2.0, 1.0]
    linears = [m for m in network if isinstance(m, torch.nn.Linear)]
    with torch.no_grad():
        for layer in linears[:3]:
            layer.weight.copy_(torch.eye(N_GENES))
            layer.bias.zero_()
        linears[3].weight.copy_(torch.from_numpy(weights))
        linears[3].bias.zero_()
    scaler = md.Scaler(
        mean=np.full(N_GENES, np.log1p(TRAINING_LEVEL), dtype=np.float32),
        std=np.ones(N_GENES, dtype=np.float32),
    )
    directory = tmp_path_factory.mktemp("model")
    md.save_model(
        directory,
        network,
        architecture,
        scaler,
        GENE_IDS,
        GENE_NAMES,
        TISSUES,
        config={"data": {"measure": "tpm"}},
    )
    return directory


@pytest.fixture(scope="module")
def model(model_dir: Path) -> md.TrainedModel:
    return md.load_model(model_dir)


def raw_samples(seed: int = 0) -> np.ndarray:
    """(samples, genes): a liver, a lung and a blood sample, and one between liver and lung."""
    rng = np.random.default_rng(seed)
    raw = rng.uniform(0.8, 1.2, (len(SAMPLE_IDS), N_GENES)).astype(np.float32) * TRAINING_LEVEL
    for row, tissue in enumerate(range(3)):
        raw[row, 3 * tissue : 3 * tissue + 3] = 200.0
    raw[3, 0:3] = 20.0
    raw[3, 3:6] = 18.0
    return np.round(raw, 3)


def write_gct_file(path: Path, raw: np.ndarray, gene_ids=GENE_IDS, id_column=True) -> Path:
    if id_column:
        write_gct(path, gene_ids, GENE_NAMES[: len(gene_ids)], SAMPLE_IDS, raw.T, integer=False)
        return path
    lines = ["#1.2", f"{len(gene_ids)}\t{len(SAMPLE_IDS)}", "\t".join(["Name", "Description"])]
    lines[-1] += "\t" + "\t".join(SAMPLE_IDS)
    for gene_id, name, values in zip(gene_ids, GENE_NAMES, raw.T, strict=False):
        lines.append("\t".join([gene_id, name, *(f"{v:.10g}" for v in values)]))
    path.write_text("\n".join(lines) + "\n")
    return path


def write_matrix(
    path: Path, raw: np.ndarray, gene_ids, sep: str = "\t", symbols: bool = False
) -> Path:
    table = pd.DataFrame(raw.T, columns=SAMPLE_IDS)
    if symbols:
        table.insert(0, "gene_name", GENE_NAMES[: len(gene_ids)])
    table.insert(0, "gene_id", list(gene_ids))
    table.to_csv(path, sep=sep, index=False, float_format="%.10g")
    return path


def run(model_dir: Path, input_path: Path, out: Path, **options) -> pr.PredictResult:
    return pr.run_predict(
        model_dir,
        input_path,
        out / "predictions.tsv",
        out / "saliency_top_genes.tsv",
        out / "figures",
        **options,
    )


def read_tsv(path: Path) -> pd.DataFrame:
    # ``imputed`` kept as written (true/false), not parsed to bool.
    return pd.read_csv(path, sep="\t", keep_default_na=False, dtype={"imputed": str})


# ----------------------------------------------------------------------------- predictions


def test_gct_predictions_are_the_models_top_three(model_dir, model, tmp_path) -> None:
    raw = raw_samples()
    gct = write_gct_file(tmp_path / "samples.gct.gz", raw)
    run(model_dir, gct, tmp_path / "out")
    table = read_tsv(tmp_path / "out/predictions.tsv")
    proba = model.predict_proba(raw)
    assert table["sample_id"].tolist() == SAMPLE_IDS
    assert table["tissue_1"].tolist() == ["liver", "lung", "whole_blood", "liver"]
    for rank in range(3):
        expected = np.argsort(-proba, axis=1, kind="stable")[:, rank]
        assert table[f"tissue_{rank + 1}"].tolist() == [TISSUES[i] for i in expected]
        np.testing.assert_allclose(
            table[f"probability_{rank + 1}"], proba[np.arange(4), expected], rtol=1e-5
        )
    # The mixed sample is a close call: liver first, lung a clear second.
    assert table.loc[3, "tissue_2"] == "lung" and table.loc[3, "probability_2"] > 0.05
    assert (table["missing_genes"] == 0).all()
    assert table["figure"].tolist() == [f"{s}.png" for s in SAMPLE_IDS]


def test_top_genes_are_the_predicted_tissues_markers(model_dir, tmp_path) -> None:
    gct = write_gct_file(tmp_path / "samples.gct.gz", raw_samples())
    run(model_dir, gct, tmp_path / "out", top_n=5)
    top = read_tsv(tmp_path / "out/saliency_top_genes.tsv")
    assert list(top.columns) == pr.SAMPLE_TOP_GENES_COLUMNS
    assert top.groupby("sample_id", sort=False).size().to_dict() == dict.fromkeys(SAMPLE_IDS, 5)
    for sample, tissue in zip(SAMPLE_IDS, [0, 1, 2, 0], strict=True):
        rows = top[top["sample_id"] == sample]
        assert rows["rank"].tolist() == [1, 2, 3, 4, 5]
        assert (rows["predicted"] == TISSUES[tissue]).all()
        markers = [3 * tissue, 3 * tissue + 1, 3 * tissue + 2]
        assert rows["gene_name"].tolist()[:3] == [GENE_NAMES[i] for i in markers]
        assert rows["gene_id"].tolist()[:3] == [GENE_IDS[i] for i in markers]
        assert rows["saliency"].iloc[0] == 1.0 and rows["saliency"].is_monotonic_decreasing
    liver = top[top["sample_id"] == "LIVER-1"]
    np.testing.assert_allclose(
        liver["scaled_expression"].iloc[0], np.log1p(200) - np.log1p(10), rtol=1e-5
    )
    assert (top["imputed"] == "false").all()


def test_maps_use_the_configured_method_and_abs(model_dir, model, tmp_path) -> None:
    raw = raw_samples()
    gct = write_gct_file(tmp_path / "samples.gct.gz", raw)
    result = run(
        model_dir,
        gct,
        tmp_path / "out",
        method="input_x_gradient",
        saliency=DEFAULT_SALIENCY._replace(abs=True),
    )
    expected = attribute(
        model.network,
        model.scale(raw),
        method="input_x_gradient",
        target=[0, 1, 2, 0],
        abs=True,
    )
    np.testing.assert_allclose(result.maps, expected, atol=1e-6)
    signed = pr.predict_samples(model, pr.read_input_matrix(gct), method="gradient")
    assert not np.allclose(signed.maps, result.maps)


def test_method_is_a_name_a_chosen_method_file_or_auto(model_dir, tmp_path, caplog) -> None:
    from rnaseq_saliency.faithfulness import write_chosen_method

    assert pr.resolve_method("smoothgrad", model_dir) == "smoothgrad"
    chosen = tmp_path / "chosen_method.json"
    write_chosen_method(chosen, {"method": "integrated_gradients", "mode": "auto"})
    assert pr.resolve_method(chosen, model_dir) == "integrated_gradients"
    assert pr.resolve_method(str(chosen), model_dir) == "integrated_gradients"
    # auto: the workflow's choice beside the model directory (results/saliency/ for results/model)
    # when there is one, else the original definition, with a warning.
    with caplog.at_level("INFO"):
        assert pr.resolve_method("auto", model_dir) == "gradient"
    assert "explaining with gradient" in caplog.text
    workflow = tmp_path / "results"
    (workflow / "saliency").mkdir(parents=True)
    write_chosen_method(workflow / "saliency/chosen_method.json", {"method": "input_x_gradient"})
    assert pr.resolve_method("auto", workflow / "model") == "input_x_gradient"
    with pytest.raises(ValueError, match=r"expected one of .*, auto, or the path of a chosen"):
        pr.resolve_method("lime", model_dir)
    chosen.write_text('{"method": "lime"}')
    with pytest.raises(ValueError, match="method 'lime' is not one of"):
        pr.resolve_method(chosen, model_dir)
    chosen.write_text("[1, 2]")
    with pytest.raises(ValueError, match='expected a JSON object with a "method" string'):
        pr.resolve_method(chosen, model_dir)


def test_one_figure_per_sample(model_dir, tmp_path) -> None:
    gct = write_gct_file(tmp_path / "samples.gct.gz", raw_samples())
    run(model_dir, gct, tmp_path / "out")
    figures = sorted(p.name for p in (tmp_path / "out/figures").iterdir())
    assert figures == sorted(f"{s}.png" for s in SAMPLE_IDS)
    for name in figures:
        assert (tmp_path / "out/figures" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_same_input_gives_identical_files_and_stale_figures_go(model_dir, tmp_path) -> None:
    gct = write_gct_file(tmp_path / "samples.gct.gz", raw_samples())
    run(model_dir, gct, tmp_path / "a")
    stale = tmp_path / "b/figures/OLD-SAMPLE.png"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"old")
    run(model_dir, gct, tmp_path / "b")
    assert not stale.exists()
    for name in [
        "predictions.tsv",
        "saliency_top_genes.tsv",
        *(f"figures/{s}.png" for s in SAMPLE_IDS),
    ]:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_ties_go_to_the_earlier_tissue() -> None:
    proba = np.array([[0.2, 0.4, 0.4], [0.5, 0.25, 0.25]])
    assert pr.top_tissues(proba).tolist() == [[1, 2, 0], [0, 1, 2]]
    assert pr.top_tissues(proba[:, :2], k=3).shape == (2, 2)


def test_figure_names_are_safe_and_unique() -> None:
    names = pr.figure_names(["GTEX-1117F-0226", "a/b c", "A_B_C", "a_b_c", ".hidden", "é"])
    assert names == [
        "GTEX-1117F-0226.png",
        "a_b_c.png",
        "A_B_C_2.png",
        "a_b_c_3.png",
        "hidden.png",
        "_.png",
    ]


# ----------------------------------------------------------------------------- input layouts


def tables(model: md.TrainedModel, path: Path, **options) -> list[pd.DataFrame]:
    """Both output tables, without writing them (or drawing figures)."""
    result = pr.predict_samples(model, pr.read_input_matrix(path), **options)
    return [result.predictions, result.top_genes]


def assert_same(got: list[pd.DataFrame], expected: list[pd.DataFrame]) -> None:
    for got_table, expected_table in zip(got, expected, strict=True):
        pd.testing.assert_frame_equal(got_table, expected_table)


@pytest.fixture(scope="module")
def reference(model: md.TrainedModel, tmp_path_factory: pytest.TempPathFactory) -> list:
    """Predictions from a GTEx per-tissue GCT with versioned ids: every layout must match."""
    tmp = tmp_path_factory.mktemp("reference")
    gct = write_gct_file(tmp / "samples.gct.gz", raw_samples())
    return tables(model, gct)


def test_gct_without_the_id_column(model, reference, tmp_path) -> None:
    gct = write_gct_file(tmp_path / "samples.gct", raw_samples(), id_column=False)
    assert (tmp_path / "samples.gct").read_text().splitlines()[2].startswith("Name\tDescription")
    assert_same(tables(model, gct), reference)


def test_tsv_with_unversioned_ids(model, reference, tmp_path) -> None:
    ids = [_unversioned(g) for g in GENE_IDS]
    assert ids[-2:] == ["ENSG00000000038", "ENSG00000000038_PAR_Y"]
    tsv = write_matrix(tmp_path / "samples.tsv", raw_samples(), ids)
    assert_same(tables(model, tsv), reference)


def test_csv_gzip_with_symbols_and_shuffled_genes(model, reference, tmp_path) -> None:
    raw = raw_samples()
    order = np.random.default_rng(1).permutation(N_GENES)
    plain = tmp_path / "plain.csv"
    table = pd.DataFrame(raw.T[order], columns=SAMPLE_IDS)
    table.insert(0, "symbol", [GENE_NAMES[i] for i in order])
    table.insert(0, "", [GENE_IDS[i] for i in order])  # R's write.csv leaves this header empty
    table.to_csv(plain, index=False, float_format="%.10g")
    packed = tmp_path / "samples.csv.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    assert_same(tables(model, packed), reference)


def test_tsv_in_gtex_layout_and_extra_genes(model, reference, tmp_path) -> None:
    raw = raw_samples()
    extra = np.full((len(SAMPLE_IDS), 1), 5.0, dtype=np.float32)
    table = pd.DataFrame(np.hstack([raw, extra]).T, columns=SAMPLE_IDS)
    table.insert(0, "Description", [*GENE_NAMES, "NOTINMODEL"])
    table.insert(0, "Name", [*GENE_IDS, "ENSG00000999999.1"])
    table.insert(0, "id", range(N_GENES + 1))
    table.to_csv(tmp_path / "samples.txt", sep="\t", index=False, float_format="%.10g")
    assert_same(tables(model, tmp_path / "samples.txt"), reference)


def test_par_y_copy_is_its_own_gene(model, tmp_path) -> None:
    # Only the chrX copy is given: the chrY copy is missing, not matched to it.
    ids = [_unversioned(g) for g in GENE_IDS[:-1]]
    tsv = write_matrix(tmp_path / "samples.tsv", raw_samples()[:, :-1], ids)
    result = pr.predict_samples(model, pr.read_input_matrix(tsv))
    assert result.alignment.imputed.tolist() == [False] * (N_GENES - 1) + [True]


# ----------------------------------------------------------------------------- missing genes


def test_missing_gene_is_filled_with_the_training_mean(model_dir, model, tmp_path) -> None:
    raw = raw_samples()
    keep = list(range(1, N_GENES))  # gene 0, liver's strongest marker, is missing
    tsv = write_matrix(tmp_path / "samples.tsv", raw[:, keep], [GENE_IDS[i] for i in keep])
    result = run(model_dir, tsv, tmp_path / "out", top_n=3)
    filled = raw.copy()
    filled[:, 0] = np.expm1(np.float32(np.log1p(TRAINING_LEVEL)))
    np.testing.assert_allclose(result.alignment.raw, filled, rtol=1e-6)
    assert np.abs(model.scale(result.alignment.raw)[:, 0]).max() < 1e-5  # the training mean
    table = read_tsv(tmp_path / "out/predictions.tsv")
    assert (table["missing_genes"] == 1).all()
    np.testing.assert_allclose(
        table["probability_1"], model.predict_proba(filled).max(axis=1), rtol=1e-5
    )
    top = read_tsv(tmp_path / "out/saliency_top_genes.tsv")
    liver = top[top["sample_id"] == "LIVER-1"]
    # Its gradient still ranks first (the model's sensitivity); the table says it was filled.
    assert liver["gene_name"].tolist() == ["GENE0", "GENE1", "GENE2"]
    assert liver["imputed"].tolist() == ["true", "false", "false"]


def test_too_many_missing_genes_fail_with_a_clear_message(model_dir, model, tmp_path) -> None:
    keep = list(range(3, N_GENES))  # 3 of 40 missing: 7.5% > 5%
    tsv = write_matrix(
        tmp_path / "samples.tsv", raw_samples()[:, keep], [GENE_IDS[i] for i in keep]
    )
    with pytest.raises(pr.PredictInputError) as error:
        run(model_dir, tsv, tmp_path / "out")
    message = str(error.value)
    assert str(tsv) in message
    assert "3 of the model's 40 genes (7.5%)" in message
    assert "max_missing_fraction" in message and GENE_IDS[0] in message
    assert not (tmp_path / "out").exists()
    result = pr.predict_samples(model, pr.read_input_matrix(tsv), max_missing_fraction=0.1)
    assert (result.predictions["missing_genes"] == 3).all()


def test_gene_symbols_instead_of_ids_fail(model, tmp_path) -> None:
    tsv = write_matrix(tmp_path / "samples.tsv", raw_samples(), GENE_NAMES)
    with pytest.raises(pr.PredictInputError, match=r"40 of the model's 40 genes .*GENE0"):
        pr.predict_samples(model, pr.read_input_matrix(tsv))


def test_two_versions_of_one_gene_fail(model, tmp_path) -> None:
    ids = list(GENE_IDS)
    ids[1] = GENE_IDS[0].split(".")[0] + ".9"
    tsv = write_matrix(tmp_path / "samples.tsv", raw_samples(), ids)
    with pytest.raises(pr.PredictInputError, match=r"samples.tsv:3: gene ids .* the same gene"):
        pr.predict_samples(model, pr.read_input_matrix(tsv))


# ----------------------------------------------------------------------------- bad files


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "the file is empty"),
        (b"\n  \n", "the file is empty"),
        (gzip.compress(b""), "the file is empty"),
        (b"gene_id\tS1\tS2\n", "no gene rows"),
        (b"#1.2\n0\t2\nName\tDescription\tS1\tS2\n", "no gene rows"),
        (b"gene_id\tgene_name\nENSG1\tA\n", "no sample columns"),
        (b"gene_id\tS1\tS1\nENSG1\t1\t2\n", "duplicate sample id(s): S1"),
        (b"gene_id\tS1\tS2\nENSG00000000000\t1\t2\nENSG00000000001\t1\tabc\n", ":3: gene "),
        (b"gene_id\tS1\tS2\nENSG00000000000\t1\t-2\n", "sample S2: value -2 is not allowed"),
        (b"gene_id\tS1\tS2\n\nENSG00000000000\t1\t\n", ":3: gene ENSG00000000000, sample S2"),
        (b"gene_id\tS1\tS2\nENSG00000000000\t1\t2\nENSG00000000000\t1\t2\n", "repeats"),
        (b"#1.2\n1\t2\nName\tDescription\tS1\tS2\nENSG1\tA\t1\tx\n", ":4: gene ENSG1"),
        (b"gene_id\tS1\tS2\nENSG00000000000\t1\t2\t3\n", ":2: more fields than the 3"),
        (b"gene_id,S1,S2\nENSG00000000000,1,2\nENSG00000000001,1,1e39\n", ":3: gene"),
    ],
)
def test_bad_input_files_name_the_problem(model, tmp_path, content, expected) -> None:
    path = tmp_path / "samples.txt"
    path.write_bytes(content)
    with pytest.raises(ValueError) as error:
        pr.predict_samples(model, pr.read_input_matrix(path))
    assert expected in str(error.value)
    assert str(path) in str(error.value)


def test_no_input_configured_names_the_config_key(model_dir, tmp_path) -> None:
    # The rule's adapter passes None when predict.input is null.
    with pytest.raises(ValueError, match=r"config key predict\.input: not set"):
        run(model_dir, None, tmp_path / "out")


def test_not_a_number_names_line_sample_and_text(tmp_path) -> None:
    path = tmp_path / "samples.tsv"
    path.write_text("gene_id\tS1\tS2\nENSG00000000000\t1\t2\nENSG00000000001\t1\tabc\n")
    with pytest.raises(pr.PredictInputError) as error:
        pr.read_input_matrix(path)
    assert str(error.value) == (
        f"{path}:3: gene ENSG00000000001, sample S2: value 'abc' is not a number; "
        "expression values must be finite numbers >= 0"
    )


def test_windows_line_ends_and_padded_lines_are_read(tmp_path) -> None:
    path = tmp_path / "samples.tsv"
    path.write_bytes(b"gene_id\tS1\tS2\t\r\nENSG1.2\t1.5\t0\t\r\n\r\nENSG2\t3\t4\t\r\n")
    samples = pr.read_input_matrix(path)
    assert samples.sample_ids == ["S1", "S2"] and samples.gene_ids == ["ENSG1.2", "ENSG2"]
    assert samples.line_numbers == [2, 4]
    np.testing.assert_array_equal(samples.matrix, [[1.5, 3], [0, 4]])


# ----------------------------------------------------------------------------- the command


def cli_args(model_dir: Path, input_path: Path, out: Path, *extra: str) -> list[str]:
    return [
        "predict",
        *("--model", str(model_dir), "--input", str(input_path), "--output", str(out)),
        *extra,
    ]


def test_the_command_writes_what_the_package_writes(model_dir, tmp_path) -> None:
    gct = write_gct_file(tmp_path / "samples.gct.gz", raw_samples())
    run(model_dir, gct, tmp_path / "package", top_n=7, saliency=DEFAULT_SALIENCY._replace(abs=True))
    args = cli_args(model_dir, gct, tmp_path / "command")
    assert cli.main([*args, "--top-n", "7", "--abs", "--quiet"]) == 0
    for name in [
        "predictions.tsv",
        "saliency_top_genes.tsv",
        *(f"figures/{s}.png" for s in SAMPLE_IDS),
    ]:
        assert (tmp_path / "package" / name).read_bytes() == (
            tmp_path / "command" / name
        ).read_bytes()


def test_the_console_script_runs_and_its_errors_exit_2(model_dir, tmp_path) -> None:
    (entry,) = [
        e for e in importlib.metadata.entry_points(group="console_scripts") if e.name == cli.PROG
    ]
    assert entry.value == "rnaseq_saliency.cli:main"
    script = Path(sys.executable).with_name(cli.PROG)
    command = [str(script)] if script.exists() else [sys.executable, "-m", "rnaseq_saliency.cli"]
    empty = tmp_path / "empty.gct"
    empty.touch()
    done = subprocess.run(
        [*command, *cli_args(model_dir, empty, tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 2
    assert done.stderr.strip() == f"rnaseq-saliency: error: {empty}: the file is empty; " + (
        "expected a GCT file or a TSV/CSV matrix with genes in rows and samples in columns"
    )


def test_help_lists_the_options(capsys) -> None:
    with pytest.raises(SystemExit) as done:
        cli.main(["--help"])
    assert done.value.code == 0
    assert "predict" in capsys.readouterr().out
    with pytest.raises(SystemExit) as done:
        cli.main(["predict", "--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    for option in ["--model", "--input", "--output", "--top-n", "--method", "--abs"]:
        assert option in text
    assert "--max-missing-fraction" in text and "integrated_gradients" in text


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["--top-n", "0"], "argument --top-n: expected a whole number >= 1, got '0'"),
        (["--max-missing-fraction", "1.5"], "expected a fraction between 0 and 1"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(model_dir, tmp_path, capsys, extra, expected) -> None:
    args = cli_args(model_dir, tmp_path / "x.gct", tmp_path / "out")
    with pytest.raises(SystemExit) as done:
        cli.main([*args, *extra])
    assert done.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], lines


def test_runtime_errors_exit_2_with_one_line(model_dir, tmp_path, capsys) -> None:
    keep = list(range(3, N_GENES))
    tsv = write_matrix(
        tmp_path / "samples.tsv", raw_samples()[:, keep], [GENE_IDS[i] for i in keep]
    )
    cases = [
        (cli_args(model_dir, tmp_path / "nowhere.gct", tmp_path / "out"), "nowhere.gct: no such"),
        (cli_args(tmp_path, tsv, tmp_path / "out"), "model.json: no such file"),
        (cli_args(model_dir, tsv, tmp_path / "out"), "3 of the model's 40 genes"),
    ]
    cases.append(
        (cli_args(model_dir, tsv, tmp_path / "out", "--method", "lime"), "'lime': expected one of")
    )
    for args, expected in cases:
        assert cli.main([*args, "--quiet"]) == 2
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("rnaseq-saliency: error: "), lines
        assert expected in lines[0]
    assert (
        cli.main([*cli_args(model_dir, tsv, tmp_path / "out"), "--max-missing-fraction", "0.1"])
        == 0
    )


# ----------------------------------------------------------------------------- the workflow


def _workflow_helpers():
    """SMALL_CONFIG and snakemake() of tests/test_workflow.py, imported by path (no package)."""
    spec = importlib.util.spec_from_file_location(
        "_workflow_helpers", Path(__file__).with_name("test_workflow.py")
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def scheduled(dry_run_output: str) -> set[str]:
    """Rule names in the job stats of ``snakemake --dry-run --quiet rules``."""
    table = dry_run_output.split("Job stats:", 1)[-1]
    matches = (re.fullmatch(r"\s*([a-z_]+)\s+(\d+)\s*", line) for line in table.splitlines())
    return {m.group(1) for m in matches if m} - {"job", "total"}


@pytest.mark.workflow
def test_held_out_demo_samples_agree_with_the_evaluation(tmp_path) -> None:
    from rnaseq_saliency.expression import read_expression
    from rnaseq_saliency.saliency import evaluated_split

    helpers = _workflow_helpers()
    workdir = tmp_path
    config = yaml.safe_load(yaml.safe_dump(helpers.SMALL_CONFIG))
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    # The model with its sample checks, its evaluation and the saliency method chosen for it are
    # all that prediction needs.
    helpers.snakemake(
        workdir, "results/saliency/chosen_method.json", "results/model/sample_checks.json"
    )
    evaluation = pd.read_csv(workdir / "results/evaluation/predictions.tsv", sep="\t")
    held_out = evaluation[evaluation["split"] == evaluated_split(evaluation)]
    assert len(held_out) >= len(config["data"]["tissues"])

    # The held-out samples of every tissue, as one GTEx-layout GCT.
    blocks, sample_ids, gene_ids = [], [], None
    for tissue, rows in held_out.groupby("tissue", sort=False):
        table = read_expression(workdir / f"results/expression/{tissue}.parquet")
        wanted = set(rows["sample_id"])
        index = [i for i, s in enumerate(table.sample_ids) if s in wanted]
        blocks.append(table.matrix[index])
        sample_ids += [table.sample_ids[i] for i in index]
        gene_ids = table.gene_ids
    genes = pd.read_csv(workdir / "results/genes/selected_genes.tsv", sep="\t")
    assert genes["gene_id"].tolist() == gene_ids
    gct = workdir / "held_out.gct.gz"
    write_gct(
        gct, gene_ids, genes["gene_name"].tolist(), sample_ids, np.vstack(blocks).T, integer=False
    )

    # --method auto (the default) finds results/saliency/chosen_method.json beside the model.
    assert cli.main(cli_args(workdir / "results/model", gct, workdir / "command", "--quiet")) == 0
    got = read_tsv(workdir / "command/predictions.tsv").set_index("sample_id")
    expected = held_out.set_index("sample_id").loc[got.index]
    assert got.index.tolist() == sample_ids
    assert got["tissue_1"].tolist() == expected["predicted"].tolist()
    np.testing.assert_allclose(got["probability_1"], expected["probability"], rtol=1e-4, atol=1e-6)
    assert (got["missing_genes"] == 0).all()

    # The rule gives the same files, and reuses the model: only `predict` runs.
    config["predict"] = {"input": "held_out.gct.gz", "max_missing_fraction": 0.05, "top_n": 20}
    (workdir / "predict.yaml").write_text(yaml.safe_dump(config))
    dry = helpers.snakemake(
        workdir,
        "results/predict/predictions.tsv",
        "--dry-run",
        "--quiet",
        "rules",
        configfile="predict.yaml",
    ).stdout
    assert scheduled(dry) == {"predict"}
    # With predict.input set the default target includes the predict outputs, without it not.
    default = helpers.snakemake(workdir, "--dry-run", "--quiet", "rules", configfile="predict.yaml")
    assert "predict" in scheduled(default.stdout)
    unset = helpers.snakemake(workdir, "--dry-run", "--quiet", "rules")
    # (The saliency maps exist already: the chosen method needs them. The heatmaps do not.)
    assert "predict" not in scheduled(unset.stdout)
    assert "saliency_heatmap" in scheduled(unset.stdout)
    helpers.snakemake(workdir, "results/predict/predictions.tsv", configfile="predict.yaml")
    # Compared as numbers: the rule runs torch on another number of threads than the command.
    for name in ["predictions.tsv", "saliency_top_genes.tsv"]:
        pd.testing.assert_frame_equal(
            read_tsv(workdir / "results/predict" / name),
            read_tsv(workdir / "command" / name),
            rtol=1e-4,
            atol=1e-6,
        )
    figures = sorted(p.name for p in (workdir / "results/predict/figures").glob("*.png"))
    assert figures == sorted(got["figure"])
    # The report shows the tables and every sample's figure.
    report = workdir / "report.html"
    helpers.snakemake(
        workdir,
        "results/predict/predictions.tsv",
        "--report",
        str(report),
        configfile="predict.yaml",
    )
    html = report.read_text()
    assert "saliency_top_genes.tsv" in html and figures[0] in html
