"""Train the tissue classifier: early stopping on validation macro-F1 or loss, history and
TensorBoard logs.

The whole training set is scaled once and held as one tensor (on the GPU when training there);
each epoch draws batches by indexing it with a seeded permutation, which avoids a DataLoader's
per-sample collation and worker processes. This module is all about torch, so torch is imported
at the top.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import sys
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from rnaseq_saliency.calibration import TemperatureFit, fit_temperature
from rnaseq_saliency.datasets import LabelledRows, load_split_rows, load_training_rows, read_samples
from rnaseq_saliency.genes import read_selected_genes
from rnaseq_saliency.history import EpochRecord, write_history
from rnaseq_saliency.model import (
    JSON_FILE,
    WEIGHTS_FILE,
    Architecture,
    Scaler,
    TrainedModel,
    architecture_from_config,
    count_parameters,
    network_from_architecture,
    save_model,
)

if TYPE_CHECKING:
    from rnaseq_saliency.settings import TrainingSettings

log = logging.getLogger("rnaseq_saliency.training")

HISTORY_FILE = "history.tsv"
CLASS_BALANCE = ("none", "sampler", "loss_weights")
SELECT_ON = ("loss", "macro_f1")
DEVICES = ("auto", "cpu", "cuda", "mps")
_EVAL_BATCH = 2048


@dataclass(frozen=True)
class TrainSettings:
    """The ``train`` config section, checked."""

    device: str = "auto"
    epochs: int = 20
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 1e-4
    patience: int = 10
    min_delta: float = 0.0
    class_balance: str = "none"
    seed: int = 0
    select_on: str = "macro_f1"
    label_smoothing: float = 0.05
    input_dropout: float = 0.2

    @classmethod
    def from_config(cls, train_cfg: dict[str, Any]) -> TrainSettings:
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(train_cfg) - known)
        if unknown:
            raise ValueError(f"config key train: unknown key(s) {unknown}; known: {sorted(known)}")
        settings = cls(**train_cfg)
        positive = ("epochs", "batch_size", "patience")
        for name in positive:
            if int(getattr(settings, name)) < 1:
                raise ValueError(f"config key train.{name}: must be >= 1")
        if settings.lr <= 0 or settings.weight_decay < 0 or settings.min_delta < 0:
            raise ValueError(
                "config keys train.lr (> 0), train.weight_decay and train.min_delta "
                "(>= 0) are out of range"
            )
        for name in ("label_smoothing", "input_dropout"):
            if not 0.0 <= float(getattr(settings, name)) < 1.0:
                raise ValueError(f"config key train.{name}: expected 0 <= value < 1")
        if settings.select_on not in SELECT_ON:
            raise ValueError(
                f"config key train.select_on: {settings.select_on!r} is not one of "
                f"{list(SELECT_ON)}"
            )
        if settings.class_balance not in CLASS_BALANCE:
            raise ValueError(
                f"config key train.class_balance: {settings.class_balance!r} is not "
                f"one of {list(CLASS_BALANCE)}"
            )
        if settings.device not in DEVICES:
            raise ValueError(
                f"config key train.device: {settings.device!r} is not one of {list(DEVICES)}"
            )
        return settings


@dataclass
class TrainResult:
    model: TrainedModel  # best weights, CPU, eval mode
    history: list[EpochRecord]
    best_epoch: int  # 1-based
    stopped_early: bool
    device: str  # the device trained on, e.g. "cpu" or "cuda"


def resolve_device(name: str) -> torch.device:
    """``auto``: CUDA, then Apple MPS, then CPU. An unavailable explicit choice is an error."""
    cuda = torch.cuda.is_available()
    mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if name == "auto":
        return torch.device("cuda" if cuda else "mps" if mps else "cpu")
    if name == "cuda" and not cuda:
        raise RuntimeError(
            "config key train.device is 'cuda', but torch sees no CUDA GPU "
            f"(torch {torch.__version__}, built with CUDA {torch.version.cuda}); "
            "set train.device to auto or cpu, or install a CUDA build of torch"
        )
    if name == "mps" and not mps:
        raise RuntimeError(
            "config key train.device is 'mps', but Apple MPS is not available here; "
            "set train.device to auto or cpu"
        )
    if name not in DEVICES:
        raise ValueError(f"config key train.device: {name!r} is not one of {list(DEVICES)}")
    return torch.device(name)


class EarlyStopping:
    """Track the monitored measure; ``update`` says whether this epoch is the new best.

    ``higher_is_better=False`` (a loss): an epoch improves when its value is below the best so
    far by more than ``min_delta``. ``True`` (macro-F1): when it is above the best by more than
    ``min_delta``, or equal to the best with a lower ``tie_loss`` (macro-F1 of a small validation
    set moves in steps, so ties are common and the lower validation loss breaks them).
    Training stops once ``patience`` epochs in a row have not improved. NaN never improves.
    """

    def __init__(
        self, patience: int, min_delta: float = 0.0, higher_is_better: bool = False
    ) -> None:
        self.patience = patience
        self.min_delta = min_delta
        self.sign = -1.0 if higher_is_better else 1.0
        self.best_value = math.inf  # sign * the best value: lower is better
        self.best_tie_loss = math.inf
        self.best_epoch = 0
        self.epochs_without_improvement = 0

    @property
    def best_loss(self) -> float:
        """The best monitored value (the loss, when a loss is monitored)."""
        return self.sign * self.best_value

    def update(self, epoch: int, value: float, tie_loss: float = math.inf) -> bool:
        signed = self.sign * value
        improved = math.isfinite(value) and (
            signed < self.best_value - self.min_delta
            or (
                self.sign < 0
                and signed == self.best_value
                and math.isfinite(tie_loss)
                and tie_loss < self.best_tie_loss
            )
        )
        if improved:
            self.best_value = signed
            self.best_tie_loss = tie_loss
            self.best_epoch = epoch
            self.epochs_without_improvement = 0
            return True
        self.epochs_without_improvement += 1
        return False

    @property
    def should_stop(self) -> bool:
        return self.epochs_without_improvement >= self.patience


def _labels(row_tissues: Sequence[str], classes: list[str], what: str) -> torch.Tensor:
    index = {tissue: i for i, tissue in enumerate(classes)}
    unknown = sorted(set(row_tissues) - set(index))
    if unknown:
        raise ValueError(f"{what}: tissue(s) {unknown} are not among the model's classes")
    return torch.tensor([index[t] for t in row_tissues], dtype=torch.long)


def class_weights(labels: torch.Tensor, n_classes: int) -> torch.Tensor:
    """Per-class weights n / (k * count): each class contributes equally to the loss."""
    counts = torch.bincount(labels, minlength=n_classes).double()
    return (labels.numel() / (n_classes * counts)).float()


@contextlib.contextmanager
def _reproducible(seed: int, threads: int | None) -> Iterator[None]:
    """Seed torch and use deterministic kernels for one run; restore the global state after."""
    old_threads = torch.get_num_threads()
    old_deterministic = torch.are_deterministic_algorithms_enabled()
    old_warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    if threads:
        torch.set_num_threads(threads)
    # cuBLAS needs this before its first call to be deterministic; harmless elsewhere.
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    # warn_only: a kernel without a deterministic variant warns instead of stopping training.
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.manual_seed(seed)
    try:
        yield
    finally:
        torch.set_num_threads(old_threads)
        torch.use_deterministic_algorithms(old_deterministic, warn_only=old_warn_only)


def train_batches(
    network: nn.Module,
    optimizer: torch.optim.Optimizer,
    grad_scaler: torch.amp.GradScaler,
    x: torch.Tensor,
    y: torch.Tensor,
    order: torch.Tensor,
    batch_size: int,
    weight: torch.Tensor | None = None,
    amp: bool = False,
    on_batch: Callable[[int], object] | None = None,
    label_smoothing: float = 0.0,
    input_dropout: float = 0.0,
) -> tuple[float, float]:
    """One pass of optimiser steps over the rows ``order`` of ``x``, ``batch_size`` at a time.

    Returns the running (weighted) mean loss and the accuracy over the batches, with the network
    in whatever mode it is in (training mode during training: dropout on). Totals stay on the
    device, so the only host synchronisation is at the end.

    ``label_smoothing`` goes to the cross-entropy (torch's definition). ``input_dropout`` zeroes
    that fraction of each batch's scaled gene values (0 is the gene's training mean) and scales
    the rest by 1 / (1 - p), as ``nn.Dropout`` does; it is applied here, to training batches
    only, and is no part of the network, so evaluation, prediction and saliency never see it.
    """
    device = x.device
    total_loss = torch.zeros((), dtype=torch.float64, device=device)
    total_weight = torch.zeros((), dtype=torch.float64, device=device)
    correct = torch.zeros((), dtype=torch.long, device=device)
    for batch in order.split(batch_size):
        xb, yb = x[batch], y[batch]
        if input_dropout > 0:
            xb = nn.functional.dropout(xb, p=input_dropout, training=True)
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=torch.float16, enabled=amp):
            logits = network(xb)
        loss = nn.functional.cross_entropy(
            logits.float(), yb, weight=weight, label_smoothing=label_smoothing
        )
        grad_scaler.scale(loss).backward()
        grad_scaler.step(optimizer)
        grad_scaler.update()
        batch_weight = weight[yb].sum() if weight is not None else yb.numel()
        total_loss += loss.detach() * batch_weight
        total_weight += batch_weight
        correct += (logits.detach().argmax(dim=1) == yb).sum()
        if on_batch is not None:
            on_batch(1)
    return (total_loss / total_weight).item(), correct.item() / max(order.numel(), 1)


def macro_f1(y_true: torch.Tensor, y_pred: torch.Tensor, n_classes: int) -> float:
    """Macro-averaged F1 over the classes that occur among the true or predicted labels
    (scikit-learn's ``f1_score(average="macro")`` without ``labels``); NaN without rows."""
    if y_true.numel() == 0:
        return math.nan
    true_counts = torch.bincount(y_true, minlength=n_classes)
    pred_counts = torch.bincount(y_pred, minlength=n_classes)
    hits = torch.bincount(y_true[y_true == y_pred], minlength=n_classes)
    present = (true_counts + pred_counts) > 0
    f1 = 2.0 * hits.double() / (true_counts + pred_counts).clamp(min=1).double()
    return f1[present].mean().item()


def _evaluate(
    network: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    weight: torch.Tensor | None,
    amp: bool,
    n_classes: int,
) -> tuple[float, float, float]:
    """(mean loss, accuracy, macro-F1) in eval mode. The loss is the cross-entropy of the true
    labels with the training criterion's class weights, without label smoothing."""
    if x.shape[0] == 0:
        return math.nan, math.nan, math.nan
    network.eval()
    total_loss = torch.zeros((), dtype=torch.float64, device=x.device)
    total_weight = torch.zeros((), dtype=torch.float64, device=x.device)
    predicted = []
    with torch.inference_mode():
        for start in range(0, x.shape[0], _EVAL_BATCH):
            xb, yb = x[start : start + _EVAL_BATCH], y[start : start + _EVAL_BATCH]
            with torch.autocast(x.device.type, dtype=torch.float16, enabled=amp):
                logits = network(xb)
            logits = logits.float()
            total_loss += nn.functional.cross_entropy(logits, yb, weight=weight, reduction="sum")
            total_weight += weight[yb].sum() if weight is not None else yb.numel()
            predicted.append(logits.argmax(dim=1))
    network.train()
    y_pred = torch.cat(predicted)
    accuracy = (y_pred == y).sum().item() / x.shape[0]
    return (total_loss / total_weight).item(), accuracy, macro_f1(y, y_pred, n_classes)


def _validation_logits(network: nn.Module, data: _DeviceData, amp: bool) -> np.ndarray:
    """The kept network's float32 logits (n_val, n_classes) of the scaled validation rows."""
    network.eval()
    blocks = [np.empty((0, data.n_classes), dtype=np.float32)]
    with torch.inference_mode():
        for start in range(0, data.x_val.shape[0], _EVAL_BATCH):
            with torch.autocast(data.x_val.device.type, dtype=torch.float16, enabled=amp):
                logits = network(data.x_val[start : start + _EVAL_BATCH])
            blocks.append(logits.float().cpu().numpy())
    return np.concatenate(blocks)


def _fit_calibration(network: nn.Module, data: _DeviceData, amp: bool) -> TemperatureFit:
    """Temperature scaling of the kept network on the validation rows (and only on them)."""
    logits = _validation_logits(network, data, amp)
    return fit_temperature(logits, data.y_val.cpu().numpy())


def _hparams(
    architecture_json: dict[str, Any], settings: TrainSettings, run_config: dict[str, Any]
) -> dict[str, Any]:
    return {
        "preset": architecture_json["preset"],
        "hidden": "-".join(str(width) for width in architecture_json["hidden"]),
        "dropout": float(architecture_json["dropout"]),
        "activation": architecture_json["activation"],
        "lr": float(settings.lr),
        "batch_size": int(settings.batch_size),
        "weight_decay": float(settings.weight_decay),
        "epochs": int(settings.epochs),
        "patience": int(settings.patience),
        "min_delta": float(settings.min_delta),
        "class_balance": settings.class_balance,
        "seed": int(settings.seed),
        "select_on": settings.select_on,
        "label_smoothing": float(settings.label_smoothing),
        "input_dropout": float(settings.input_dropout),
    }


@dataclass
class _Labelled:
    """The classes, the checked labels of the training and validation rows, and the network
    to train."""

    classes: list[str]
    y_train: torch.Tensor
    y_val: torch.Tensor
    architecture: Architecture
    counts: torch.Tensor  # training rows per class


def _check_and_label(
    training_rows: LabelledRows,
    val_rows: LabelledRows,
    gene_names: Sequence[str],
    classes: list[str],
    model_cfg: dict[str, Any],
) -> _Labelled:
    """Check that the rows fit together and every class has training rows; label the rows."""
    if training_rows.matrix.shape[0] == 0:
        raise ValueError("there are no training rows")
    if val_rows.matrix.shape[0] and val_rows.gene_ids != training_rows.gene_ids:
        raise ValueError("the validation rows' genes differ from the training rows' genes")
    if len(gene_names) != len(training_rows.gene_ids):
        raise ValueError(f"{len(gene_names)} gene names for {len(training_rows.gene_ids)} genes")
    y_train = _labels(training_rows.tissues, classes, "training rows")
    y_val = _labels(val_rows.tissues, classes, "validation rows")
    architecture = architecture_from_config(
        len(training_rows.gene_ids), len(classes), dict(model_cfg)
    )
    counts = torch.bincount(y_train, minlength=len(classes))
    empty = [classes[i] for i in torch.nonzero(counts == 0).flatten().tolist()]
    if empty:
        raise ValueError(f"tissue(s) {empty} have no training rows; every class needs some")
    return _Labelled(classes, y_train, y_val, architecture, counts)


@dataclass
class _DeviceData:
    """The scaled rows and their labels on the training device, and the fitted scaler."""

    scaler: Scaler
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    n_classes: int

    @property
    def has_val(self) -> bool:
        return self.x_val.shape[0] > 0


def _scale_to_device(
    training_rows: LabelledRows,
    val_rows: LabelledRows,
    labelled: _Labelled,
    device: torch.device,
    scale_in_place: bool,
) -> _DeviceData:
    """Fit the scaler on the training rows and move the scaled rows to ``device``."""
    scaler, scaled_train = Scaler.fit_transform(
        training_rows.matrix, overwrite_input=scale_in_place
    )
    # Data moves to the training device once; batches are then cut from it by indexing.
    x_train = torch.from_numpy(scaled_train).to(device)
    x_val = torch.from_numpy(scaler.transform(val_rows.matrix)).to(device)
    y_train, y_val = labelled.y_train.to(device), labelled.y_val.to(device)
    return _DeviceData(scaler, x_train, y_train, x_val, y_val, len(labelled.classes))


@dataclass
class _Fit:
    """The network being trained, its optimiser and loss weights, and where batch orders come
    from: a seeded permutation, or a class-balancing sampler."""

    network: nn.Module
    optimizer: torch.optim.Optimizer
    grad_scaler: torch.amp.GradScaler
    weight: torch.Tensor | None
    generator: torch.Generator
    sampler: Iterable[int] | None
    amp: bool


def _set_up_fit(
    labelled: _Labelled,
    data: _DeviceData,
    settings: TrainSettings,
    device: torch.device,
    amp: bool,
) -> _Fit:
    """Build the network (from torch's seeded generator), optimiser and batch-order source."""
    network = network_from_architecture(labelled.architecture).to(device)
    network.train()
    weight = (
        class_weights(data.y_train, len(labelled.classes)).to(device)
        if (settings.class_balance == "loss_weights")
        else None
    )
    optimizer = torch.optim.AdamW(
        network.parameters(), lr=settings.lr, weight_decay=settings.weight_decay
    )
    grad_scaler = torch.amp.GradScaler("cuda", enabled=amp)
    generator = torch.Generator().manual_seed(settings.seed)
    sampler = None
    if settings.class_balance == "sampler":
        from torch.utils.data import WeightedRandomSampler

        row_weights = (1.0 / labelled.counts.double())[data.y_train.cpu()]
        sampler = WeightedRandomSampler(
            row_weights, num_samples=data.x_train.shape[0], replacement=True, generator=generator
        )
    return _Fit(network, optimizer, grad_scaler, weight, generator, sampler, amp)


def _log_start(
    architecture: Architecture,
    fit: _Fit,
    device: torch.device,
    data: _DeviceData,
    training_rows: LabelledRows,
    n_classes: int,
) -> None:
    """Log what is about to be trained, on what, and where."""
    log.info(
        "training the %s model (%d parameters) on %s: %d training rows (%d synthetic), "
        "%d validation rows, %d genes, %d tissues%s",
        architecture.preset,
        count_parameters(fit.network),
        device,
        data.x_train.shape[0],
        int(np.count_nonzero(training_rows.synthetic)),
        data.x_val.shape[0],
        architecture.n_inputs,
        n_classes,
        ", mixed precision" if fit.amp else "",
    )


@dataclass
class _Run:
    """What a training run carries from epoch to epoch."""

    stopper: EarlyStopping
    history: list[EpochRecord] = field(default_factory=list)
    best_state: dict[str, torch.Tensor] | None = None


def _train_epoch(
    fit: _Fit,
    data: _DeviceData,
    settings: TrainSettings,
    epoch: int,
    progress: bool,
    run: _Run,
) -> bool:
    """Train one epoch, evaluate, and record it in ``run``; returns whether it is the new best."""
    started = time.perf_counter()
    n_rows = data.x_train.shape[0]
    if fit.sampler is not None:
        order = torch.as_tensor(list(fit.sampler), dtype=torch.long)
    else:
        order = torch.randperm(n_rows, generator=fit.generator)
    order = order.to(data.x_train.device)
    n_batches = math.ceil(n_rows / settings.batch_size)
    bar = _progress_bar(epoch, settings.epochs, n_batches, progress)
    train_loss, train_accuracy = train_batches(
        fit.network,
        fit.optimizer,
        fit.grad_scaler,
        data.x_train,
        data.y_train,
        order,
        settings.batch_size,
        weight=fit.weight,
        amp=fit.amp,
        on_batch=bar.update,
        label_smoothing=settings.label_smoothing,
        input_dropout=settings.input_dropout,
    )
    bar.close()
    val_loss, val_accuracy, val_f1 = _evaluate(
        fit.network, data.x_val, data.y_val, fit.weight, fit.amp, data.n_classes
    )
    if not data.has_val:
        improved = run.stopper.update(epoch, train_loss)
    elif settings.select_on == "macro_f1":
        improved = run.stopper.update(epoch, val_f1, tie_loss=val_loss)
    else:
        improved = run.stopper.update(epoch, val_loss)
    if improved:
        run.best_state = {
            name: tensor.detach().clone() for name, tensor in fit.network.state_dict().items()
        }
    lr = float(fit.optimizer.param_groups[0]["lr"])
    seconds = time.perf_counter() - started
    run.history.append(
        EpochRecord(
            epoch,
            train_loss,
            train_accuracy,
            val_loss,
            val_accuracy,
            lr,
            seconds,
            val_macro_f1=val_f1,
        )
    )
    return improved


def _report_epoch(
    writer: Any, record: EpochRecord, epochs: int, has_val: bool, improved: bool
) -> None:
    """The epoch's scalars into TensorBoard and its line into the log."""
    epoch = record.epoch
    writer.add_scalar("loss/train", record.train_loss, epoch)
    writer.add_scalar("accuracy/train", record.train_accuracy, epoch)
    if has_val:
        writer.add_scalar("loss/val", record.val_loss, epoch)
        writer.add_scalar("accuracy/val", record.val_accuracy, epoch)
        writer.add_scalar("macro_f1/val", record.val_macro_f1, epoch)
    writer.add_scalar("lr", record.lr, epoch)
    log.info(
        "epoch %d/%d: train loss %.4f acc %.4f | val loss %.4f acc %.4f macro F1 %.4f | "
        "lr %.3g | %.1f s%s",
        epoch,
        epochs,
        record.train_loss,
        record.train_accuracy,
        record.val_loss,
        record.val_accuracy,
        record.val_macro_f1,
        record.lr,
        record.seconds,
        " (best)" if improved else "",
    )
    if not math.isfinite(record.train_loss):
        log.warning(
            "epoch %d: the training loss is %s; consider a lower train.lr",
            epoch,
            record.train_loss,
        )


def _run_epochs(
    fit: _Fit, data: _DeviceData, settings: TrainSettings, writer: Any, progress: bool
) -> _Run:
    """Train epoch by epoch until ``settings.epochs`` or early stopping."""
    by_f1 = data.has_val and settings.select_on == "macro_f1"
    run = _Run(EarlyStopping(settings.patience, settings.min_delta, higher_is_better=by_f1))
    for epoch in range(1, settings.epochs + 1):
        improved = _train_epoch(fit, data, settings, epoch, progress, run)
        _report_epoch(writer, run.history[-1], settings.epochs, data.has_val, improved)
        if run.stopper.should_stop:
            log.info(
                "early stopping after epoch %d: no improvement of the %s for %d "
                "epochs; keeping epoch %d",
                epoch,
                _monitor(settings, data.has_val).replace("_", " "),
                settings.patience,
                run.stopper.best_epoch,
            )
            break
    return run


def _keep_best(network: nn.Module, run: _Run) -> EpochRecord:
    """Load the best epoch's weights into ``network`` and mark that epoch in the history."""
    if run.best_state is None:
        raise RuntimeError(
            "training diverged: the monitored measure was never finite; lower train.lr"
        )
    network.load_state_dict(run.best_state)
    best = run.history[run.stopper.best_epoch - 1]
    best.best = True
    return best


def _best_metrics(best: EpochRecord) -> dict[str, float]:
    """The kept epoch's figures, as TensorBoard hyper-parameter metrics."""
    return {
        "hparam/best_epoch": float(best.epoch),
        "hparam/train_loss": best.train_loss,
        "hparam/train_accuracy": best.train_accuracy,
        "hparam/val_loss": best.val_loss,
        "hparam/val_accuracy": best.val_accuracy,
        "hparam/val_macro_f1": best.val_macro_f1,
    }


def _monitor(settings: TrainSettings, has_val: bool) -> str:
    """The history column that chose the kept epoch and drove early stopping."""
    if not has_val:
        return "train_loss"
    return "val_macro_f1" if settings.select_on == "macro_f1" else "val_loss"


def _training_info(
    best: EpochRecord,
    run: _Run,
    settings: TrainSettings,
    data: _DeviceData,
    training_rows: LabelledRows,
    labelled: _Labelled,
    device: torch.device,
    amp: bool,
) -> dict[str, Any]:
    """The ``training`` section of model.json: how the run went and what it trained on."""
    has_val = data.has_val
    return {
        "best_epoch": best.epoch,
        "epochs_run": len(run.history),
        "stopped_early": len(run.history) < settings.epochs,
        "monitor": _monitor(settings, has_val),
        "best_train_loss": best.train_loss,
        "best_train_accuracy": best.train_accuracy,
        "best_val_loss": best.val_loss if has_val else None,
        "best_val_accuracy": best.val_accuracy if has_val else None,
        "best_val_macro_f1": best.val_macro_f1 if has_val else None,
        "device": device.type,
        "mixed_precision": amp,
        "n_training_rows": data.x_train.shape[0],
        "n_synthetic_training_rows": int(np.count_nonzero(training_rows.synthetic)),
        "n_validation_rows": int(data.x_val.shape[0]),
        "training_rows_per_tissue": {
            c: int(n) for c, n in zip(labelled.classes, labelled.counts.tolist(), strict=True)
        },
        "settings": vars(settings),
    }


def _save_model(
    out: Path,
    fit: _Fit,
    labelled: _Labelled,
    data: _DeviceData,
    gene_ids: Sequence[str],
    gene_names: Sequence[str],
    info: dict[str, Any],
    run_config: dict[str, Any] | None,
    calibration: TemperatureFit,
) -> TrainedModel:
    """model.safetensors and model.json (with the calibration temperature) into ``out``."""
    return save_model(
        out,
        fit.network,
        labelled.architecture,
        data.scaler,
        gene_ids,
        list(gene_names),
        labelled.classes,
        training=info,
        config=run_config,
        calibration=calibration.to_json(),
    )


def train(
    training_rows: LabelledRows,
    val_rows: LabelledRows,
    gene_names: Sequence[str],
    tissues: Sequence[str],
    model_cfg: dict[str, Any],
    train_cfg: dict[str, Any],
    out_dir: str | os.PathLike[str],
    tensorboard_dir: str | os.PathLike[str],
    run_config: dict[str, Any] | None = None,
    threads: int | None = None,
    progress: bool = True,
    scale_in_place: bool = False,
) -> TrainResult:
    """Train a classifier on ``training_rows`` and keep the weights of the best epoch.

    ``tissues`` are the output classes in order; every row's tissue must be one of them and every
    class needs training rows. The validation measure ``train.select_on`` (macro-F1, ties broken
    by the lower loss; or the loss) picks the kept epoch and drives early stopping; without
    validation rows the training loss does, with a warning. The kept network's probabilities are
    then calibrated by temperature scaling on the validation rows (``rnaseq_saliency.calibration``;
    T = 1, with a warning, below ``MIN_VALIDATION_SAMPLES`` of them). Writes model.safetensors,
    model.json (with the temperature) and history.tsv into ``out_dir`` and TensorBoard event files
    into ``tensorboard_dir``.
    ``threads`` sets torch's CPU threads for the run (the rule's threads).

    Memory: the scaled training matrix is a float32 copy beside the raw one (about 2.5 GB each
    for a GTEx-sized set), unless ``scale_in_place``, which overwrites ``training_rows.matrix``
    with the scaled values (rule ``train`` does: it reads the rows for this call only). On a
    GPU the scaled matrix is copied to the GPU.
    """
    settings = TrainSettings.from_config(dict(train_cfg))
    device = resolve_device(settings.device)
    classes = list(tissues)
    labelled = _check_and_label(training_rows, val_rows, gene_names, classes, model_cfg)
    architecture = labelled.architecture
    data = _scale_to_device(training_rows, val_rows, labelled, device, scale_in_place)
    if not data.has_val:
        warnings.warn(
            "there are no validation rows: early stopping follows the training loss, which "
            "keeps improving as the model overfits; give the split a val_fraction > 0",
            stacklevel=2,
        )
        log.warning("no validation rows: early stopping follows the training loss")

    amp = device.type == "cuda"
    with _reproducible(settings.seed, threads):
        fit = _set_up_fit(labelled, data, settings, device, amp)
        _log_start(architecture, fit, device, data, training_rows, len(classes))
        from torch.utils.tensorboard import SummaryWriter

        with SummaryWriter(log_dir=os.fspath(tensorboard_dir)) as writer:
            run = _run_epochs(fit, data, settings, writer, progress)
            best = _keep_best(fit.network, run)
            hparams = _hparams(architecture.to_json(), settings, run_config or {})
            _write_hparams(writer, hparams, _best_metrics(best), run.stopper.best_epoch)
        calibration = _fit_calibration(fit.network, data, amp)

    info = _training_info(best, run, settings, data, training_rows, labelled, device, amp)
    out = Path(out_dir)
    trained = _save_model(
        out, fit, labelled, data, training_rows.gene_ids, gene_names, info, run_config, calibration
    )
    write_history(out / HISTORY_FILE, run.history)
    log.info("kept epoch %d of %d; model written to %s", best.epoch, len(run.history), out)
    stopped_early = len(run.history) < settings.epochs
    return TrainResult(trained, run.history, best.epoch, stopped_early, device.type)


def _progress_bar(epoch: int, epochs: int, n_batches: int, enabled: bool) -> Any:
    from tqdm import tqdm

    return tqdm(
        total=n_batches,
        desc=f"epoch {epoch}/{epochs}",
        unit="batch",
        file=sys.stderr,
        leave=False,
        # Under Snakemake stderr is often a file, where every refresh is a new line.
        mininterval=0.5 if sys.stderr.isatty() else 30.0,
        disable=not enabled,
    )


def _write_hparams(
    writer: Any, hparams: dict[str, Any], metrics: dict[str, float], step: int
) -> None:
    """Hyper-parameters and final metrics into the run's own event file.

    SummaryWriter.add_hparams would write them to a new sub-directory named by the clock; written
    here they sit in the run directory itself, so TensorBoard shows one run per configuration.
    """
    from torch.utils.tensorboard.summary import hparams as hparams_summaries

    clean = {k: v for k, v in metrics.items() if math.isfinite(v)}
    experiment, session_start, session_end = hparams_summaries(hparams, clean)
    file_writer = writer.file_writer
    for summary in (experiment, session_start, session_end):
        file_writer.add_summary(summary, step)
    for tag, value in clean.items():
        writer.add_scalar(tag, value, step)


def training_classes(augmented_rows: LabelledRows, samples: pd.DataFrame) -> list[str]:
    """The model's output classes: tissues with training rows, in augmented-file order.

    The augmented files come in configured tissue order, the order of results/split/summary.tsv,
    and samples.tsv holds only the kept tissues, so this is "kept tissues in summary order". The
    two must name the same tissues.
    """
    classes = list(dict.fromkeys(augmented_rows.tissues))
    kept = set(samples["tissue"])
    if set(classes) != kept:
        raise ValueError(
            "the augmented training files and results/split/samples.tsv disagree on the kept "
            f"tissues: only in augmented files {sorted(set(classes) - kept)}, only in "
            f"samples.tsv {sorted(kept - set(classes))}"
        )
    return classes


def read_gene_names(path: str | os.PathLike[str], gene_ids: Sequence[str]) -> list[str]:
    """Gene names for ``gene_ids`` from the selected-genes table (columns gene_id, gene_name)."""
    genes = read_selected_genes(path)
    names = dict(zip(genes["gene_id"], genes["gene_name"], strict=True))
    missing = [gene for gene in gene_ids if gene not in names]
    if missing:
        raise ValueError(
            f"{path}: {len(missing)} gene(s) of the expression files are missing, e.g. "
            f"{missing[:3]}; the expression files were made from another gene selection"
        )
    return [names[gene] for gene in gene_ids]


def train_from_files(
    augmented: Sequence[str | os.PathLike[str]],
    expression: Sequence[str | os.PathLike[str]],
    samples_path: str | os.PathLike[str],
    genes_path: str | os.PathLike[str],
    weights_path: str | os.PathLike[str],
    model_json_path: str | os.PathLike[str],
    history_path: str | os.PathLike[str],
    tensorboard_dir: str | os.PathLike[str],
    model_cfg: dict[str, Any],
    train_cfg: dict[str, Any],
    run_config: dict[str, Any] | None = None,
    threads: int | None = None,
) -> TrainResult:
    """Rule ``train``: read the augmented training rows and the real validation rows, train."""
    out_dir = Path(weights_path).parent
    expected = {
        Path(weights_path): out_dir / WEIGHTS_FILE,
        Path(model_json_path): out_dir / JSON_FILE,
        Path(history_path): out_dir / HISTORY_FILE,
    }
    for given, wanted in expected.items():
        if given != wanted:
            raise ValueError(f"rule train: output {given} must be {wanted} (one model directory)")
    samples = read_samples(samples_path)
    training_rows = load_training_rows(augmented)
    classes = training_classes(training_rows, samples)
    val_rows = load_split_rows(expression, samples, "val")
    gene_names = read_gene_names(genes_path, training_rows.gene_ids)
    log.info("classes (%d): %s", len(classes), ", ".join(classes))
    return train(
        training_rows,
        val_rows,
        gene_names,
        classes,
        model_cfg,
        train_cfg,
        out_dir,
        tensorboard_dir,
        run_config,
        threads=threads,
        scale_in_place=True,  # the raw rows are not needed again: save a GTEx-sized copy
    )


def train_rule(
    settings: TrainingSettings,
    augmented: Sequence[str | os.PathLike[str]],
    expression: Sequence[str | os.PathLike[str]],
    samples_path: str | os.PathLike[str],
    genes_path: str | os.PathLike[str],
    weights_path: str | os.PathLike[str],
    model_json_path: str | os.PathLike[str],
    history_path: str | os.PathLike[str],
    tensorboard_root: str | os.PathLike[str] = "results/tensorboard",
    tensorboard_dir: str | os.PathLike[str] | None = None,
    threads: int | None = None,
    replicate: int = 0,
) -> TrainResult:
    """Rules ``train``, ``train_replicate`` and ``sweep_train``: ``train_from_files`` with the
    rule's settings.

    ``replicate`` r trains with seed ``settings.seed + r`` (initialisation, dropout and batch
    order) on the same rows, all else equal; replicate 0 is the plain model. TensorBoard events
    go into ``tensorboard_dir`` (a sweep run's declared directory), or else into a new run
    directory under ``tensorboard_root`` (``naming.run_name``, with ``_replicate_<r>`` for r > 0).
    """
    from datetime import datetime

    from rnaseq_saliency.naming import run_name

    settings, run_config = replicate_settings(settings, replicate)
    name = run_name(settings, datetime.now()) + (f"_replicate_{replicate}" if replicate else "")
    run_dir = Path(tensorboard_dir or Path(tensorboard_root) / name)
    log.info("TensorBoard run: %s", run_dir)
    return train_from_files(
        augmented=augmented,
        expression=expression,
        samples_path=samples_path,
        genes_path=genes_path,
        weights_path=weights_path,
        model_json_path=model_json_path,
        history_path=history_path,
        tensorboard_dir=run_dir,
        model_cfg=settings.section("model"),
        train_cfg=settings.section("train"),
        run_config=run_config,
        threads=threads,
    )


def replicate_settings(
    settings: TrainingSettings, replicate: int
) -> tuple[TrainingSettings, dict[str, Any]]:
    """Replicate ``replicate``'s settings (seed ``settings.seed + replicate``) and what its
    model.json records of them: replicate 0's record is the plain model's, unchanged; a later
    replicate's also names its index and the base seed."""
    replicate = int(replicate)
    if replicate < 0:
        raise ValueError(f"replicate {replicate}: must be >= 0")
    mine = settings._replace(seed=settings.seed + replicate)
    run_config = mine.run_config()
    if replicate:
        run_config["replicate"] = {"index": replicate, "base_seed": settings.seed}
    return mine, run_config
