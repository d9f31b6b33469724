"""Tests for rnaseq_saliency.training: the loop, early stopping, outputs and the rule's files."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from rnaseq_saliency import model as md
from rnaseq_saliency import training as tr
from rnaseq_saliency.datasets import LabelledRows
from rnaseq_saliency.expression import ExpressionTable, write_expression
from rnaseq_saliency.figures_training import best_epoch, plot_training_curves
from rnaseq_saliency.history import HISTORY_COLUMNS, EpochRecord, write_history
from rnaseq_saliency.settings import TrainingSettings

torch.set_num_threads(1)

TISSUES = ["liver", "lung", "whole_blood"]
N_GENES = 30
MODEL = {"preset": "default", "hidden": [16, 16, 8], "dropout": 0.2, "activation": "relu"}
TRAIN = {
    "device": "cpu",
    "epochs": 4,
    "batch_size": 32,
    "lr": 0.01,
    "weight_decay": 0.0001,
    "patience": 3,
    "min_delta": 0.0,
    "class_balance": "none",
    "seed": 0,
    # The earlier behaviour, which most tests below check; the new keys have tests of their own.
    "select_on": "loss",
    "label_smoothing": 0.0,
    "input_dropout": 0.0,
}
RUN_CONFIG = {"model": MODEL, "train": TRAIN, "augment": {"method": "noise", "min_samples": 600}}
TB_TAGS = ["loss/train", "loss/val", "accuracy/train", "accuracy/val", "lr"]


def _rows(n_per_tissue: list[int], seed: int, label_shift: int = 0) -> LabelledRows:
    """Counts-like expression where each tissue has its own five marker genes.

    ``label_shift`` relabels every row as the next tissue: a validation set that the model gets
    more wrong the better it learns the training set.
    """
    rng = np.random.default_rng(seed)
    blocks, tissues = [], []
    for index, n in enumerate(n_per_tissue):
        level = np.full(N_GENES, 5.0)
        level[index * 5 : index * 5 + 5] = 200.0
        blocks.append(rng.poisson(level, size=(n, N_GENES)).astype(np.float32))
        tissues += [TISSUES[(index + label_shift) % len(TISSUES)]] * n
    matrix = np.concatenate(blocks)
    n_rows = matrix.shape[0]
    return LabelledRows(
        matrix=matrix,
        tissues=tissues,
        sample_ids=[f"S{seed}-{i}" for i in range(n_rows)],
        gene_ids=[f"ENSG{i:011d}.1" for i in range(N_GENES)],
        synthetic=np.zeros(n_rows, dtype=bool),
    )


GENE_NAMES = [f"GENE{i}" for i in range(N_GENES)]


def _train(tmp_path: Path, name: str, train_rows=None, val_rows=None, **train_changes):
    return tr.train(
        train_rows if train_rows is not None else _rows([60, 60, 60], seed=1),
        val_rows if val_rows is not None else _rows([10, 10, 10], seed=2),
        GENE_NAMES,
        TISSUES,
        MODEL,
        {**TRAIN, **train_changes},
        tmp_path / name / "model",
        tmp_path / name / "tensorboard",
        RUN_CONFIG,
        threads=1,
        progress=False,
    )


def _val_loss(model: md.TrainedModel, rows: LabelledRows) -> float:
    logits = torch.from_numpy(model.logits(rows.matrix))
    labels = torch.tensor([TISSUES.index(t) for t in rows.tissues])
    return nn.functional.cross_entropy(logits, labels).item()


# ----------------------------------------------------------------------------- devices


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a CUDA GPU")
def test_cuda_without_a_gpu_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match=r"train\.device is 'cuda'"):
        tr.resolve_device("cuda")
    with pytest.raises(RuntimeError, match=r"train\.device"):
        _train(tmp_path, "cuda", device="cuda")
    assert not (tmp_path / "cuda").exists()


def test_auto_device_falls_back_to_cpu_without_accelerators(monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert tr.resolve_device("auto") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert tr.resolve_device("auto") == torch.device("cuda")


def test_unknown_train_key_is_named(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"train: unknown key.*epoch\b"):
        _train(tmp_path, "bad", epoch=3)


# ----------------------------------------------------------------------------- early stopping


def test_early_stopping_counts_epochs_without_improvement() -> None:
    stopper = tr.EarlyStopping(patience=2, min_delta=0.0)
    decisions = [stopper.update(e, loss) for e, loss in enumerate([1.0, 0.8, 0.9, 0.7], 1)]
    assert decisions == [True, True, False, True]
    assert not stopper.should_stop
    stopper.update(5, 0.75)
    assert not stopper.should_stop
    stopper.update(6, math.nan)
    assert stopper.should_stop and stopper.best_epoch == 4 and stopper.best_loss == 0.7


def test_early_stopping_ignores_improvements_below_min_delta() -> None:
    stopper = tr.EarlyStopping(patience=2, min_delta=0.1)
    assert stopper.update(1, 1.0)
    assert not stopper.update(2, 0.95)
    assert not stopper.update(3, 0.91)
    assert stopper.should_stop and stopper.best_epoch == 1


def test_training_stops_after_patience_epochs_and_restores_the_best(tmp_path: Path) -> None:
    # Validation rows carry the wrong labels: the better the model fits the training rows, the
    # worse its validation loss, so the loss stops improving early and training must stop.
    val_rows = _rows([10, 10, 10], seed=2, label_shift=1)
    result = _train(tmp_path, "stop", val_rows=val_rows, epochs=30, patience=3)
    history = result.history
    assert result.stopped_early
    assert len(history) == result.best_epoch + 3 < 30
    val_losses = [record.val_loss for record in history]
    assert result.best_epoch == 1 + int(np.argmin(val_losses))
    # The returned model holds the best epoch's weights, not the last epoch's.
    restored = _val_loss(result.model, val_rows)
    assert restored == pytest.approx(val_losses[result.best_epoch - 1], rel=1e-5)
    assert restored != pytest.approx(val_losses[-1], rel=1e-3)
    loaded = md.load_model(tmp_path / "stop" / "model")
    assert _val_loss(loaded, val_rows) == pytest.approx(restored, rel=1e-6)
    assert loaded.metadata["training"]["best_epoch"] == result.best_epoch
    assert loaded.metadata["training"]["stopped_early"] is True
    table = pd.read_csv(tmp_path / "stop" / "model" / tr.HISTORY_FILE, sep="\t")
    assert table["best"].tolist() == [e == result.best_epoch for e in table["epoch"]]


def test_without_validation_rows_early_stopping_follows_training_loss(tmp_path: Path) -> None:
    empty = _rows([0, 0, 0], seed=2)
    with (
        pytest.warns(UserWarning, match="no validation rows"),
        pytest.warns(UserWarning, match="temperature is kept at 1"),
    ):
        result = _train(tmp_path, "noval", val_rows=empty, epochs=3)
    assert result.model.metadata["training"]["monitor"] == "train_loss"
    assert result.model.temperature == 1.0
    table = pd.read_csv(tmp_path / "noval" / "model" / tr.HISTORY_FILE, sep="\t")
    assert table["val_loss"].isna().all() and table["train_loss"].notna().all()
    accumulator = _events(tmp_path / "noval" / "tensorboard")
    assert "loss/val" not in accumulator.Tags()["scalars"]
    assert len(accumulator.Scalars("loss/train")) == 3


# ----------------------------------------------------------------------------- outputs


def _events(directory: Path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(directory))
    accumulator.Reload()
    return accumulator


def test_history_and_tensorboard_hold_one_value_per_epoch(tmp_path: Path) -> None:
    result = _train(tmp_path, "tb", epochs=4, patience=10)
    table = pd.read_csv(tmp_path / "tb" / "model" / tr.HISTORY_FILE, sep="\t")
    assert list(table.columns) == HISTORY_COLUMNS
    assert table["epoch"].tolist() == [1, 2, 3, 4]
    assert (table["lr"] == TRAIN["lr"]).all() and (table["seconds"] > 0).all()
    assert table["train_accuracy"].between(0, 1).all()
    accumulator = _events(tmp_path / "tb" / "tensorboard")
    for tag in TB_TAGS:
        events = accumulator.Scalars(tag)
        assert [event.step for event in events] == [1, 2, 3, 4], tag
    history_column = {"loss/train": "train_loss", "accuracy/val": "val_accuracy"}
    for tag, column in history_column.items():
        logged = [event.value for event in accumulator.Scalars(tag)]
        np.testing.assert_allclose(logged, table[column], rtol=1e-5)
    assert [e.value for e in accumulator.Scalars("hparam/best_epoch")] == [result.best_epoch]


def test_tensorboard_records_the_hyper_parameters(tmp_path: Path) -> None:
    from tensorboard.plugins.hparams import plugin_data_pb2

    _train(tmp_path, "hp", epochs=2)
    content = _events(tmp_path / "hp" / "tensorboard").PluginTagToContent("hparams")
    start = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"])
    hparams = start.session_start_info.hparams
    assert hparams["lr"].number_value == pytest.approx(TRAIN["lr"])
    assert hparams["hidden"].string_value == "16-16-8"
    assert hparams["batch_size"].number_value == TRAIN["batch_size"]
    assert hparams["select_on"].string_value == TRAIN["select_on"]
    assert hparams["label_smoothing"].number_value == TRAIN["label_smoothing"]
    assert hparams["input_dropout"].number_value == TRAIN["input_dropout"]
    # Training reads no augment key (its augmented input files carry that): none is recorded.
    assert "augment_method" not in hparams


def test_same_seed_on_cpu_gives_identical_weights(tmp_path: Path) -> None:
    _train(tmp_path, "a", epochs=2)
    _train(tmp_path, "b", epochs=2)
    _train(tmp_path, "c", epochs=2, seed=1)
    weights = {name: (tmp_path / name / "model" / md.WEIGHTS_FILE).read_bytes() for name in "abc"}
    assert weights["a"] == weights["b"]
    assert weights["a"] != weights["c"]
    model_json = [(tmp_path / name / "model" / md.JSON_FILE).read_text() for name in "ab"]
    assert model_json[0] == model_json[1]


def test_scaling_statistics_come_from_training_rows_only(tmp_path: Path) -> None:
    train_rows = _rows([60, 60, 60], seed=1)
    val_rows = _rows([10, 10, 10], seed=2)
    shifted = _rows([10, 10, 10], seed=2)
    shifted.matrix *= 50.0
    first = _train(tmp_path, "val", train_rows=train_rows, val_rows=val_rows, epochs=1)
    second = _train(tmp_path, "shifted", train_rows=train_rows, val_rows=shifted, epochs=1)
    expected = md.Scaler.fit(train_rows.matrix)
    for result in (first, second):
        np.testing.assert_array_equal(result.model.mean, expected.mean)
        np.testing.assert_array_equal(result.model.std, expected.std)
    with_val = md.Scaler.fit(np.concatenate([train_rows.matrix, shifted.matrix]))
    assert not np.allclose(with_val.mean, expected.mean)


def test_scaling_in_place_trains_the_same_model_and_only_then_overwrites_the_rows(
    tmp_path: Path,
) -> None:
    results = {}
    rows = {}
    for in_place in (False, True):
        rows[in_place] = _rows([60, 60, 60], seed=1)
        results[in_place] = tr.train(
            rows[in_place],
            _rows([10, 10, 10], seed=2),
            GENE_NAMES,
            TISSUES,
            MODEL,
            {**TRAIN, "epochs": 2},
            tmp_path / str(in_place) / "model",
            tmp_path / str(in_place) / "tensorboard",
            RUN_CONFIG,
            threads=1,
            progress=False,
            scale_in_place=in_place,
        )
    raw = _rows([60, 60, 60], seed=1).matrix
    np.testing.assert_array_equal(rows[False].matrix, raw)
    np.testing.assert_array_equal(rows[True].matrix, results[True].model.scale(raw))
    weights = [
        (tmp_path / str(flag) / "model" / md.WEIGHTS_FILE).read_bytes() for flag in (False, True)
    ]
    assert weights[0] == weights[1]


def test_dropout_is_on_while_training_and_off_while_evaluating(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[bool, bool]] = []  # (dropout module in training mode, gradients recorded)
    build = tr.network_from_architecture

    def recording(architecture):
        network = build(architecture)
        dropout = next(m for m in network if isinstance(m, nn.Dropout))
        dropout.register_forward_pre_hook(
            lambda module, args: seen.append((module.training, torch.is_grad_enabled()))
        )
        return network

    monkeypatch.setattr(tr, "network_from_architecture", recording)
    _train(tmp_path, "dropout", epochs=2)
    training_passes = [mode for mode, grad in seen if grad]
    evaluation_passes = [mode for mode, grad in seen if not grad]
    assert training_passes and all(training_passes)
    assert evaluation_passes and not any(evaluation_passes)


@pytest.mark.parametrize("balance", ["sampler", "loss_weights"])
def test_class_balance_changes_training(tmp_path: Path, balance: str) -> None:
    imbalanced = _rows([90, 20, 10], seed=1)
    _train(tmp_path, "plain", train_rows=imbalanced, epochs=1)
    balanced = _train(tmp_path, balance, train_rows=imbalanced, epochs=1, class_balance=balance)
    assert balanced.model.metadata["training"]["settings"]["class_balance"] == balance
    plain_weights = (tmp_path / "plain" / "model" / md.WEIGHTS_FILE).read_bytes()
    assert (tmp_path / balance / "model" / md.WEIGHTS_FILE).read_bytes() != plain_weights
    assert math.isfinite(balanced.history[0].val_loss)


def test_class_weights_balance_the_classes() -> None:
    labels = torch.tensor([0] * 6 + [1] * 3 + [2])
    weights = tr.class_weights(labels, 3)
    totals = torch.bincount(labels, minlength=3) * weights
    torch.testing.assert_close(totals, torch.full((3,), 10 / 3))


def test_a_class_without_training_rows_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"\['whole_blood'\] have no training rows"):
        _train(tmp_path, "missing", train_rows=_rows([20, 20, 0], seed=1))


def test_validation_rows_of_an_unknown_tissue_are_an_error(tmp_path: Path) -> None:
    rows = _rows([5, 5, 5], seed=2)
    rows.tissues[0] = "pancreas"
    with pytest.raises(ValueError, match=r"validation rows.*pancreas"):
        _train(tmp_path, "unknown", val_rows=rows)


# ----------------------------------------------------------------------------- against the baseline


def test_early_stopping_on_macro_f1_keeps_the_highest_and_breaks_ties_by_loss() -> None:
    stopper = tr.EarlyStopping(patience=2, higher_is_better=True)
    assert stopper.update(1, 0.5, tie_loss=1.0)
    assert stopper.update(2, 0.8, tie_loss=1.2)
    assert not stopper.update(3, 0.7, tie_loss=0.1)
    assert stopper.update(4, 0.8, tie_loss=0.9)  # a tie with a lower loss is the new best
    assert not stopper.update(5, 0.8, tie_loss=0.95)
    assert not stopper.update(6, math.nan, tie_loss=0.1)
    assert stopper.should_stop and stopper.best_epoch == 4 and stopper.best_loss == 0.8


def test_macro_f1_matches_scikit_learn() -> None:
    from sklearn.metrics import f1_score

    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 5, 200)
    y_pred = np.where(rng.random(200) < 0.7, y_true, rng.integers(0, 6, 200))
    ours = tr.macro_f1(torch.from_numpy(y_true), torch.from_numpy(y_pred), n_classes=7)
    assert ours == pytest.approx(f1_score(y_true, y_pred, average="macro"))
    assert math.isnan(tr.macro_f1(torch.tensor([], dtype=torch.long), torch.tensor([]), 3))


def test_select_on_macro_f1_keeps_the_epoch_with_the_best_validation_macro_f1(
    tmp_path: Path,
) -> None:
    # Noisy validation rows (a third relabelled) keep the macro-F1 below 1, so epochs differ.
    val_rows = _rows([10, 10, 10], seed=2)
    val_rows.tissues = [
        TISSUES[(i * 7) % 3] if i % 3 == 0 else t for i, t in enumerate(val_rows.tissues)
    ]
    result = _train(tmp_path, "f1", val_rows=val_rows, epochs=6, patience=10, select_on="macro_f1")
    table = pd.read_csv(tmp_path / "f1" / "model" / tr.HISTORY_FILE, sep="\t")
    assert list(table.columns) == HISTORY_COLUMNS and table["val_macro_f1"].between(0, 1).all()
    best_f1 = table["val_macro_f1"].max()
    ties = table.loc[table["val_macro_f1"] == best_f1]
    assert result.best_epoch == int(ties.loc[ties["val_loss"].idxmin(), "epoch"])
    assert table.loc[table["best"], "epoch"].tolist() == [result.best_epoch]
    # The kept weights score that epoch's macro-F1, as the evaluation computes it.
    from sklearn.metrics import f1_score

    predicted = result.model.predict(val_rows.matrix)
    assert f1_score(val_rows.tissues, predicted, average="macro") == pytest.approx(
        best_f1, abs=1e-5
    )
    training = result.model.metadata["training"]
    assert training["monitor"] == "val_macro_f1"
    assert training["best_val_macro_f1"] == pytest.approx(best_f1, abs=1e-5)
    assert training["settings"]["select_on"] == "macro_f1"
    loss_run = _train(tmp_path, "loss", val_rows=val_rows, epochs=6, patience=10)
    assert loss_run.model.metadata["training"]["monitor"] == "val_loss"


def test_label_smoothing_reaches_the_training_loss() -> None:
    torch.manual_seed(0)
    x = torch.randn(40, 6)
    y = torch.randint(0, 3, (40,))
    network = nn.Linear(6, 3)
    optimizer = torch.optim.SGD(network.parameters(), lr=0.0)  # the loss of fixed weights
    scaler = torch.amp.GradScaler("cuda", enabled=False)
    order = torch.arange(40)
    with torch.no_grad():
        logits = network(x)
    expected = {
        eps: nn.functional.cross_entropy(logits, y, label_smoothing=eps).item()
        for eps in (0.0, 0.2)
    }
    for eps, value in expected.items():
        loss, _ = tr.train_batches(network, optimizer, scaler, x, y, order, 40, label_smoothing=eps)
        assert loss == pytest.approx(value, rel=1e-6)
    assert expected[0.2] != pytest.approx(expected[0.0], rel=1e-3)


def test_input_dropout_is_applied_to_training_batches_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[bool, float]] = []  # (gradients recorded, fraction of zero inputs)
    build = tr.network_from_architecture

    def recording(architecture):
        network = build(architecture)
        network[0].register_forward_pre_hook(
            lambda module, args: seen.append(
                (torch.is_grad_enabled(), (args[0] == 0).float().mean().item())
            )
        )
        return network

    monkeypatch.setattr(tr, "network_from_architecture", recording)
    result = _train(tmp_path, "input_dropout", epochs=2, input_dropout=0.5)
    training = [zeros for grad, zeros in seen if grad]
    evaluation = [zeros for grad, zeros in seen if not grad]
    assert training and min(training) > 0.3
    assert evaluation and max(evaluation) < 0.05
    # No layer of the saved network: prediction is deterministic and sees every gene.
    assert not any(isinstance(m, nn.Dropout) and m.p == 0.5 for m in result.model.network)
    rows = _rows([5, 5, 5], seed=3)
    np.testing.assert_array_equal(
        result.model.logits(rows.matrix), result.model.logits(rows.matrix)
    )
    assert result.model.metadata["training"]["settings"]["input_dropout"] == 0.5


def test_new_training_keys_change_the_weights_and_are_recorded(tmp_path: Path) -> None:
    plain = (_train(tmp_path, "plain", epochs=1), tmp_path / "plain")
    for name, change in {
        "smoothing": {"label_smoothing": 0.1},
        "dropout": {"input_dropout": 0.2},
    }.items():
        result = _train(tmp_path, name, epochs=1, **change)
        weights = (tmp_path / name / "model" / md.WEIGHTS_FILE).read_bytes()
        assert weights != (plain[1] / "model" / md.WEIGHTS_FILE).read_bytes(), name
        key, value = next(iter(change.items()))
        assert result.model.metadata["training"]["settings"][key] == value


# ----------------------------------------------------------------------------- the rule's files


def _write_inputs(root: Path, test_seed: int | None = None) -> dict:
    """Per-tissue expression and augmented files, samples.tsv and the selected genes table.

    With ``test_seed``, each tissue also has five test samples drawn with that seed.
    """
    train_rows = _rows([30, 30, 30], seed=1)
    val_rows = _rows([6, 6, 6], seed=2)
    test_rows = _rows([5, 5, 5] if test_seed is not None else [0, 0, 0], seed=test_seed or 0)
    test_rows.sample_ids[:] = [f"test_{s}" for s in test_rows.sample_ids]
    samples, expression, augmented = [], [], []
    for tissue in ["adipose_subcutaneous", *TISSUES]:  # a dropped tissue: empty files
        pick_train = [i for i, t in enumerate(train_rows.tissues) if t == tissue]
        pick_val = [i for i, t in enumerate(val_rows.tissues) if t == tissue]
        pick_test = [i for i, t in enumerate(test_rows.tissues) if t == tissue]
        real = np.concatenate(
            [
                train_rows.matrix[pick_train],
                val_rows.matrix[pick_val],
                test_rows.matrix[pick_test],
            ]
        )
        ids = (
            [train_rows.sample_ids[i] for i in pick_train]
            + [val_rows.sample_ids[i] for i in pick_val]
            + [test_rows.sample_ids[i] for i in pick_test]
        )
        splits = ["train"] * len(pick_train) + ["val"] * len(pick_val) + ["test"] * len(pick_test)
        samples += [(s, s, tissue, split) for s, split in zip(ids, splits, strict=True)]
        table = ExpressionTable(ids, ids, train_rows.gene_ids, real.reshape(-1, N_GENES))
        expression.append(root / "expression" / f"{tissue}.parquet")
        write_expression(expression[-1], table)
        n_train = len(pick_train)
        augmented_table = ExpressionTable(
            ids[:n_train],
            ids[:n_train],
            train_rows.gene_ids,
            train_rows.matrix[pick_train].reshape(-1, N_GENES),
            extra={"synthetic": [False] * n_train, "source_sample_id": ids[:n_train]},
        )
        augmented.append(root / "augmented" / f"{tissue}.parquet")
        write_expression(augmented[-1], augmented_table)
    samples_path = root / "split" / "samples.tsv"
    samples_path.parent.mkdir(parents=True)
    pd.DataFrame(samples, columns=["sample_id", "donor_id", "tissue", "split"]).to_csv(
        samples_path, sep="\t", index=False
    )
    genes_path = root / "genes.tsv"
    pd.DataFrame({"gene_id": train_rows.gene_ids[::-1], "gene_name": GENE_NAMES[::-1]}).to_csv(
        genes_path, sep="\t", index=False
    )
    return {
        "augmented": augmented,
        "expression": expression,
        "samples_path": samples_path,
        "genes_path": genes_path,
    }


def test_rule_train_reads_its_files_and_writes_its_outputs(tmp_path: Path) -> None:
    inputs = _write_inputs(tmp_path / "results")
    model_dir = tmp_path / "results" / "model"
    result = tr.train_from_files(
        **inputs,
        weights_path=model_dir / "model.safetensors",
        model_json_path=model_dir / "model.json",
        history_path=model_dir / "history.tsv",
        tensorboard_dir=tmp_path / "results" / "tensorboard" / "run",
        model_cfg=MODEL,
        train_cfg={**TRAIN, "epochs": 2},
        run_config=RUN_CONFIG,
        threads=1,
    )
    loaded = md.load_model(model_dir)
    # Classes follow the augmented files' order; the dropped tissue has no rows and no class.
    assert loaded.tissues == TISSUES == result.model.tissues
    assert loaded.gene_names == GENE_NAMES
    metadata = json.loads((model_dir / "model.json").read_text())
    assert metadata["training"]["n_training_rows"] == 90
    assert metadata["training"]["n_validation_rows"] == 18
    assert metadata["config"] == RUN_CONFIG
    assert (tmp_path / "results" / "tensorboard" / "run").is_dir()
    assert len(pd.read_csv(model_dir / "history.tsv", sep="\t")) == 2


def _calibration_of_rule_train(root: Path, test_seed: int) -> dict:
    inputs = _write_inputs(root / "results", test_seed=test_seed)
    model_dir = root / "results" / "model"
    tr.train_from_files(
        **inputs,
        weights_path=model_dir / "model.safetensors",
        model_json_path=model_dir / "model.json",
        history_path=model_dir / "history.tsv",
        tensorboard_dir=root / "tensorboard",
        model_cfg=MODEL,
        train_cfg={**TRAIN, "epochs": 2},
        threads=1,
    )
    assert md.load_model(model_dir).temperature > 0
    return json.loads((model_dir / "model.json").read_text())["calibration"]


def test_rule_train_fits_the_temperature_on_validation_rows_only(tmp_path: Path) -> None:
    """Issue 19: T comes from the 18 validation samples; other test samples give the same T."""
    first = _calibration_of_rule_train(tmp_path / "a", test_seed=3)
    second = _calibration_of_rule_train(tmp_path / "b", test_seed=4)
    assert first["fitted"] and first["n_validation_samples"] == 18
    assert first["validation_nll_after"] <= first["validation_nll_before"]
    assert first["temperature"] == second["temperature"]
    assert first["temperature"] != 1.0


def test_rule_train_refuses_outputs_outside_one_model_directory(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="must be"):
        tr.train_from_files(
            [], [], "s.tsv", "g.tsv", tmp_path / "a" / "model.safetensors",
            tmp_path / "b" / "model.json", tmp_path / "a" / "history.tsv", tmp_path / "tb",
            MODEL, TRAIN,
        )  # fmt: skip


def test_classes_must_match_the_kept_tissues() -> None:
    rows = _rows([3, 3, 3], seed=1)
    samples = pd.DataFrame({"tissue": ["lung", "liver", "whole_blood"]})
    assert tr.training_classes(rows, samples) == TISSUES
    with pytest.raises(ValueError, match=r"only in samples.tsv \['pancreas'\]"):
        tr.training_classes(rows, pd.DataFrame({"tissue": [*TISSUES, "pancreas"]}))


def test_gene_names_must_cover_every_gene(tmp_path: Path) -> None:
    path = tmp_path / "genes.tsv"
    pd.DataFrame({"gene_id": ["g1", "g2"], "gene_name": ["A", "B"]}).to_csv(path, sep="\t")
    assert tr.read_gene_names(path, ["g2", "g1"]) == ["B", "A"]
    with pytest.raises(ValueError, match=r"1 gene.*g3"):
        tr.read_gene_names(path, ["g1", "g3"])


# ----------------------------------------------------------------------------- the figure


def test_training_curves_figure(tmp_path: Path) -> None:
    history = tmp_path / "history.tsv"
    records = [
        EpochRecord(1, 1.0, 0.5, 0.9, 0.6, 0.001, 1.0),
        EpochRecord(2, 0.7, 0.7, 0.8, 0.7, 0.001, 1.0, best=True),
        EpochRecord(3, 0.5, 0.8, 0.85, 0.7, 0.001, 1.0),
    ]
    write_history(history, records)
    assert best_epoch(pd.read_csv(history, sep="\t")) == 2
    out = tmp_path / "figures" / "training_curves.png"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plot_training_curves(history, out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert out.stat().st_size > 10_000


def test_best_epoch_without_a_best_column_is_the_lowest_validation_loss() -> None:
    table = pd.DataFrame({"epoch": [1, 2, 3], "train_loss": [3, 2, 1], "val_loss": [2.0, 1.0, 1.5]})
    assert best_epoch(table) == 2
    table["val_loss"] = np.nan
    assert best_epoch(table) == 3


# ----------------------------------------------------------------------------- replicates


def _settings(**changes) -> TrainingSettings:
    values = {**{k: tuple(v) if isinstance(v, list) else v for k, v in MODEL.items()}, **TRAIN}
    values.update(epochs=2, measure="tpm", **changes)
    return TrainingSettings(**{field: values[field] for field in TrainingSettings._fields})


def train_replicates(root: Path, replicates: int, **changes) -> list[Path]:
    """Rule train (replicate 0) and rule train_replicate (1..) on one set of files; returns the
    model directories (results/model, results/model/replicates/<r>)."""
    from rnaseq_saliency.ensemble import replicate_dir

    inputs = _write_inputs(root / "results", test_seed=3)
    dirs = []
    for replicate in range(replicates):
        out = replicate_dir(root / "results" / "model", replicate)
        tr.train_rule(
            _settings(**changes),
            **inputs,
            weights_path=out / md.WEIGHTS_FILE,
            model_json_path=out / md.JSON_FILE,
            history_path=out / tr.HISTORY_FILE,
            tensorboard_root=root / "results" / "tensorboard",
            threads=1,
            replicate=replicate,
        )
        dirs.append(out)
    return dirs


def test_replicate_zero_is_the_model_of_rule_train_bit_for_bit(tmp_path: Path) -> None:
    """train.replicates: 1 changes nothing: replicate 0 is what rule train wrote before
    replicates existed (train_from_files with the plain settings), byte for byte."""
    (replicate_0,) = train_replicates(tmp_path / "new", 1)
    settings = _settings()
    inputs = _write_inputs(tmp_path / "today" / "results", test_seed=3)
    today = tmp_path / "today" / "results" / "model"
    tr.train_from_files(
        **inputs,
        weights_path=today / md.WEIGHTS_FILE,
        model_json_path=today / md.JSON_FILE,
        history_path=today / tr.HISTORY_FILE,
        tensorboard_dir=tmp_path / "today" / "tb",
        model_cfg=settings.section("model"),
        train_cfg=settings.section("train"),
        run_config=settings.run_config(),
        threads=1,
    )
    for name in (md.WEIGHTS_FILE, md.JSON_FILE):
        assert (replicate_0 / name).read_bytes() == (today / name).read_bytes(), name
    history = pd.read_csv(replicate_0 / tr.HISTORY_FILE, sep="\t").drop(columns="seconds")
    expected = pd.read_csv(today / tr.HISTORY_FILE, sep="\t").drop(columns="seconds")
    pd.testing.assert_frame_equal(history, expected)


def test_replicates_differ_only_by_seed(tmp_path: Path) -> None:
    """Same rows, same split, same settings; seed train.seed + r; other weights."""
    dirs = train_replicates(tmp_path, 3, seed=5)
    metadata = [json.loads((d / md.JSON_FILE).read_text()) for d in dirs]
    models = [md.load_model(d) for d in dirs]
    assert [m["config"]["train"]["seed"] for m in metadata] == [5, 6, 7]
    assert "replicate" not in metadata[0]["config"]
    assert [m["config"].get("replicate") for m in metadata[1:]] == [
        {"index": 1, "base_seed": 5},
        {"index": 2, "base_seed": 5},
    ]
    for meta, model in zip(metadata[1:], models[1:], strict=True):
        # The training rows, per tissue, and the validation rows are the same ones ...
        for key in ("n_training_rows", "n_synthetic_training_rows", "n_validation_rows"):
            assert meta["training"][key] == metadata[0]["training"][key], key
        assert (
            meta["training"]["training_rows_per_tissue"]
            == (metadata[0]["training"]["training_rows_per_tissue"])
        )
        # ... scaled with the same statistics (fitted on those rows), into the same network
        np.testing.assert_array_equal(model.mean, models[0].mean)
        np.testing.assert_array_equal(model.std, models[0].std)
        assert meta["architecture"] == metadata[0]["architecture"]
        settings = {k: v for k, v in meta["training"]["settings"].items() if k != "seed"}
        assert settings == {
            k: v for k, v in metadata[0]["training"]["settings"].items() if k != "seed"
        }
        assert {k: v for k, v in meta["config"]["train"].items() if k != "seed"} == {
            k: v for k, v in metadata[0]["config"]["train"].items() if k != "seed"
        }
        # ... and only the seed makes other weights.
        assert meta["weights"]["sha256"] != metadata[0]["weights"]["sha256"]
    runs = sorted(p.name for p in (tmp_path / "results" / "tensorboard").iterdir())
    assert len(runs) == 3 and [r.endswith("_replicate_1") for r in runs].count(True) == 1
    assert any("_seed6_" in r and r.endswith("_replicate_1") for r in runs)


def test_a_replicate_trains_with_the_jobs_thread_count(tmp_path: Path, monkeypatch) -> None:
    """Replicate jobs share the cores (threads = cores // replicates): torch must use the
    job's count while it trains, and give the old count back after."""
    seen = []
    batches = tr.train_batches

    def counting(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return batches(*args, **kwargs)

    monkeypatch.setattr(tr, "train_batches", counting)
    before = torch.get_num_threads()
    inputs = _write_inputs(tmp_path / "results")
    out = tmp_path / "results" / "model" / "replicates" / "1"
    tr.train_rule(
        _settings(),
        **inputs,
        weights_path=out / md.WEIGHTS_FILE,
        model_json_path=out / md.JSON_FILE,
        history_path=out / tr.HISTORY_FILE,
        tensorboard_root=tmp_path / "tb",
        threads=2,
        replicate=1,
    )
    assert seen and set(seen) == {2}
    assert torch.get_num_threads() == before


def test_a_negative_replicate_is_an_error() -> None:
    with pytest.raises(ValueError, match="replicate -1"):
        tr.replicate_settings(_settings(), -1)
