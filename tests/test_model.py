"""Tests for rnaseq_saliency.model: network shapes, input scaling, saving and loading."""

from __future__ import annotations

import json
import pickle
import struct

import numpy as np
import pytest
import torch
from torch import nn

from rnaseq_saliency import model as md

torch.set_num_threads(1)

N_GENES = 40
TISSUES = ["liver", "lung", "whole_blood"]


def _linear_shapes(network: nn.Module) -> list[tuple[int, int]]:
    return [(m.in_features, m.out_features) for m in network if isinstance(m, nn.Linear)]


def _count(network: nn.Module, kind: type) -> int:
    return sum(isinstance(m, kind) for m in network)


# ----------------------------------------------------------------------------- the network


def test_network_has_the_configured_shape() -> None:
    network = md.build_network(N_GENES, 3, hidden=[32, 16, 8], dropout=0.25, activation="relu")
    assert _linear_shapes(network) == [(N_GENES, 32), (32, 16), (16, 8), (8, 3)]
    assert _count(network, nn.ReLU) == 3
    dropouts = [m for m in network if isinstance(m, nn.Dropout)]
    assert [d.p for d in dropouts] == [0.25, 0.25, 0.25]
    assert network(torch.zeros(5, N_GENES)).shape == (5, 3)


@pytest.mark.parametrize(
    ("activation", "kind", "n"), [("gelu", nn.GELU, 3), ("none", nn.ReLU, 0), ("relu", nn.GELU, 0)]
)
def test_activation_choice(activation: str, kind: type, n: int) -> None:
    network = md.build_network(N_GENES, 3, hidden=[8, 8, 8], activation=activation)
    assert _count(network, kind) == n


def test_zero_dropout_leaves_no_dropout_layers() -> None:
    network = md.build_network(N_GENES, 3, hidden=[8, 8, 8], dropout=0.0)
    assert _count(network, nn.Dropout) == 0
    assert len(_linear_shapes(network)) == 4


def test_original_preset_rebuilds_the_earlier_model_exactly() -> None:
    # The meta device records shapes without allocating the 600 MB of weights.
    with torch.device("meta"):
        network = md.build_network(19291, 54, hidden=[1, 2, 3], dropout=0.1, preset="original")
    assert md.count_parameters(network) == 157_063_310
    assert _linear_shapes(network) == [(19291, 7000), (7000, 2916), (2916, 540), (540, 54)]
    assert [type(m) for m in network] == [
        nn.Linear,
        nn.Dropout,
        nn.Linear,
        nn.Dropout,
        nn.Linear,
        nn.Dropout,
        nn.Linear,
    ]
    assert all(m.p == 0.5 for m in network if isinstance(m, nn.Dropout))


def test_default_model_is_at_most_a_tenth_of_the_original() -> None:
    with torch.device("meta"):
        default = md.build_network(19291, 54)  # the config default, 512-256-128
        original = md.build_network(19291, 54, preset="original")
    assert md.count_parameters(default) * 10 <= md.count_parameters(original)


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        ({"hidden": [8, 8]}, "model.hidden"),
        ({"activation": "tanh"}, "model.activation"),
        ({"preset": "huge"}, "model.preset"),
        ({"dropout": 1.0}, "model.dropout"),
    ],
)
def test_bad_model_settings_name_their_config_key(kwargs: dict, key: str) -> None:
    with pytest.raises(ValueError, match=key):
        md.build_network(N_GENES, 3, **kwargs)


def test_unknown_model_key_is_named() -> None:
    with pytest.raises(ValueError, match=r"unknown key.*hiden"):
        md.architecture_from_config(N_GENES, 3, {"hiden": [8, 8, 8]})


def test_dropout_is_active_in_train_mode_and_off_in_eval_mode() -> None:
    torch.manual_seed(0)
    network = md.build_network(N_GENES, 3, hidden=[64, 64, 64], dropout=0.5)
    x = torch.randn(16, N_GENES)
    network.train()
    assert not torch.equal(network(x), network(x))
    network.eval()
    assert torch.equal(network(x), network(x))


# ----------------------------------------------------------------------------- scaling


def test_scaler_is_log1p_then_per_gene_standardisation() -> None:
    rng = np.random.default_rng(1)
    raw = rng.gamma(2.0, 10.0, size=(300, 6)).astype(np.float32)
    scaler = md.Scaler.fit(raw)
    logged = np.log1p(raw.astype(np.float64))
    np.testing.assert_allclose(scaler.mean, logged.mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(scaler.std, logged.std(axis=0), rtol=1e-5)
    scaled = scaler.transform(raw)
    assert scaled.dtype == np.float32
    np.testing.assert_allclose(scaled.mean(axis=0), 0.0, atol=1e-4)
    np.testing.assert_allclose(scaled.std(axis=0), 1.0, atol=1e-4)


def test_scaler_fit_reads_in_chunks_like_one_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(2)
    raw = rng.gamma(2.0, 10.0, size=(100, 5)).astype(np.float32)
    whole = md.Scaler.fit(raw)
    monkeypatch.setattr(md, "_SCALING_ROWS_PER_CHUNK", 7)
    chunked = md.Scaler.fit(raw)
    np.testing.assert_allclose(chunked.mean, whole.mean, rtol=1e-6)
    np.testing.assert_allclose(chunked.std, whole.std, rtol=1e-6)
    np.testing.assert_allclose(chunked.transform(raw), whole.transform(raw), rtol=1e-6)


def test_fit_transform_gives_the_numbers_of_fit_then_transform(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(md, "_SCALING_ROWS_PER_CHUNK", 7)
    rng = np.random.default_rng(3)
    raw = rng.gamma(0.5, 20.0, size=(50, 9)).astype(np.float32)
    kept = raw.copy()
    separate = md.Scaler.fit(raw)
    scaler, scaled = md.Scaler.fit_transform(raw)
    np.testing.assert_array_equal(scaler.mean, separate.mean)
    np.testing.assert_array_equal(scaler.std, separate.std)
    np.testing.assert_array_equal(scaled, separate.transform(raw))
    np.testing.assert_array_equal(raw, kept)  # not asked to overwrite: input untouched


def test_scaling_in_place_overwrites_the_input_and_allocates_no_copy() -> None:
    rng = np.random.default_rng(4)
    raw = rng.gamma(0.5, 20.0, size=(40, 6)).astype(np.float32)
    expected_scaler, expected = md.Scaler.fit_transform(raw.copy())
    _, scaled = md.Scaler.fit_transform(raw, overwrite_input=True)
    assert scaled is raw
    np.testing.assert_array_equal(raw, expected)
    new = rng.gamma(0.5, 20.0, size=(5, 6)).astype(np.float32)
    copy = expected_scaler.transform(new)
    assert expected_scaler.transform(new, overwrite_input=True) is new
    np.testing.assert_array_equal(new, copy)


def test_scaling_in_place_refuses_input_it_cannot_overwrite() -> None:
    scaler = md.Scaler.fit(np.ones((4, 3), dtype=np.float32))
    with pytest.raises(ValueError, match="writable float32 matrix, got float64"):
        scaler.transform(np.ones((4, 3)), overwrite_input=True)
    frozen = np.ones((4, 3), dtype=np.float32)
    frozen.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        md.Scaler.fit_transform(frozen, overwrite_input=True)


def test_fit_transform_refuses_negative_expression_with_its_row() -> None:
    raw = np.ones((10, 3), dtype=np.float32)
    raw[8, 1] = -1.0
    with pytest.raises(ValueError, match="row 8, gene column 1"):
        md.Scaler.fit_transform(raw, overwrite_input=True)


def test_constant_gene_is_divided_by_the_floor_not_by_zero() -> None:
    raw = np.ones((50, 3), dtype=np.float32)
    raw[:, 1] = np.arange(50)
    scaler = md.Scaler.fit(raw)
    assert scaler.std[0] == pytest.approx(md.STD_FLOOR)
    new = np.array([[np.e - 1, 3.0, 1.0]], dtype=np.float32)  # log1p(gene 0) = 1, not log1p(1)
    scaled = scaler.transform(new)
    assert np.isfinite(scaled).all()
    assert scaled[0, 0] == pytest.approx((1.0 - np.log1p(1.0)) / md.STD_FLOOR, rel=1e-5)


def test_negative_or_nan_expression_is_refused_with_its_row() -> None:
    raw = np.ones((10, 3), dtype=np.float32)
    raw[7, 2] = -3.0
    with pytest.raises(ValueError, match="row 7, gene column 2"):
        md.Scaler.fit(raw)
    scaler = md.Scaler.fit(np.ones((10, 3), dtype=np.float32))
    raw[7, 2] = np.nan
    with pytest.raises(ValueError, match="row 7"):
        scaler.transform(raw)


def test_scaling_the_wrong_number_of_genes_is_an_error() -> None:
    scaler = md.Scaler.fit(np.ones((10, 3), dtype=np.float32))
    with pytest.raises(ValueError, match=r"\(n_samples, 3\)"):
        scaler.transform(np.ones((2, 4), dtype=np.float32))


# ----------------------------------------------------------------------------- save and load


def _saved(tmp_path, preset: str = "default") -> tuple[md.TrainedModel, np.ndarray]:
    rng = np.random.default_rng(3)
    raw = rng.gamma(2.0, 20.0, size=(30, N_GENES)).astype(np.float32)
    torch.manual_seed(3)
    architecture = md.resolve_architecture(N_GENES, len(TISSUES), [16, 8, 4], 0.3, "gelu", preset)
    network = md.network_from_architecture(architecture)
    saved = md.save_model(
        tmp_path,
        network,
        architecture,
        md.Scaler.fit(raw),
        [f"ENSG{i:011d}.1" for i in range(N_GENES)],
        [f"GENE{i}" for i in range(N_GENES)],
        TISSUES,
        training={"best_epoch": 4},
        config={"train": {"seed": 3}},
    )
    return saved, raw


def test_saved_and_loaded_model_gives_identical_predictions(tmp_path) -> None:
    saved, raw = _saved(tmp_path)
    loaded = md.load_model(tmp_path)
    np.testing.assert_array_equal(loaded.logits(raw), saved.logits(raw))
    np.testing.assert_array_equal(loaded.predict_proba(raw), saved.predict_proba(raw))
    assert loaded.predict(raw) == saved.predict(raw)
    assert set(loaded.predict(raw)) <= set(TISSUES)
    assert loaded.gene_ids == saved.gene_ids and loaded.gene_names == saved.gene_names
    assert loaded.tissues == TISSUES
    np.testing.assert_array_equal(loaded.mean, saved.mean)
    np.testing.assert_array_equal(loaded.std, saved.std)
    assert loaded.mean.dtype == np.float32
    assert not loaded.network.training
    np.testing.assert_allclose(loaded.predict_proba(raw).sum(axis=1), 1.0, rtol=1e-5)


def test_model_json_describes_the_model(tmp_path) -> None:
    saved, _ = _saved(tmp_path)
    metadata = json.loads((tmp_path / md.JSON_FILE).read_text())
    assert metadata == saved.metadata
    assert metadata["architecture"] == {
        "n_inputs": N_GENES,
        "n_outputs": 3,
        "hidden": [16, 8, 4],
        "dropout": 0.3,
        "activation": "gelu",
        "preset": "default",
    }
    assert metadata["gene_ids"][0] == "ENSG00000000000.1"
    assert metadata["gene_names"][-1] == f"GENE{N_GENES - 1}"
    assert metadata["tissues"] == TISSUES
    assert metadata["training"] == {"best_epoch": 4}
    assert metadata["config"] == {"train": {"seed": 3}}
    assert metadata["package_version"]
    assert metadata["scaling"]["std_floor"] == md.STD_FLOOR
    assert metadata["n_parameters"] == md.count_parameters(saved.network)


def test_weights_file_is_safetensors_with_the_scaling_statistics(tmp_path) -> None:
    _saved(tmp_path)
    data = (tmp_path / md.WEIGHTS_FILE).read_bytes()
    (header_length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + header_length])
    assert header["scaling.mean"]["shape"] == [N_GENES]
    assert header["scaling.std"]["dtype"] == "F32"
    assert "network.0.weight" in header


def test_loading_never_unpickles(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    saved, raw = _saved(tmp_path)

    def refuse(*args, **kwargs):
        raise AssertionError("load_model unpickled something")

    monkeypatch.setattr(torch, "load", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    np.testing.assert_array_equal(md.load_model(tmp_path).logits(raw), saved.logits(raw))


def test_weights_from_another_run_are_refused(tmp_path) -> None:
    _saved(tmp_path / "a")
    _saved(tmp_path / "b", preset="original")
    (tmp_path / "a" / md.WEIGHTS_FILE).write_bytes((tmp_path / "b" / md.WEIGHTS_FILE).read_bytes())
    with pytest.raises(ValueError, match="different training runs"):
        md.load_model(tmp_path / "a")


def test_missing_model_file_is_named(tmp_path) -> None:
    _saved(tmp_path)
    (tmp_path / md.JSON_FILE).unlink()
    with pytest.raises(FileNotFoundError, match=r"model\.json"):
        md.load_model(tmp_path)


def test_predicting_with_the_wrong_genes_is_an_error(tmp_path) -> None:
    saved, raw = _saved(tmp_path)
    with pytest.raises(ValueError, match="genes in input order"):
        saved.predict(raw[:, :-1])


def test_saving_the_same_model_gives_the_same_bytes(tmp_path) -> None:
    # Several saves: a writer whose header order varies (e.g. a hash map) differs in most of them.
    for name in "abcdefgh":
        _saved(tmp_path / name)
    for suffix in (md.WEIGHTS_FILE, md.JSON_FILE):
        contents = {(tmp_path / name / suffix).read_bytes() for name in "abcdefgh"}
        assert len(contents) == 1, suffix
