"""The tissue classifier: its network, its input scaling, and saving and loading a trained model.

A trained model is two files in one directory:

- ``model.safetensors``: the network's weights under ``network.<parameter name>`` and the input
  scaling statistics as the float32 tensors ``scaling.mean`` and ``scaling.std`` (one value per
  gene, in input order). Kept as tensors rather than JSON numbers so that they round-trip exactly
  and model.json stays readable.
- ``model.json``: the architecture, gene ids and names in input order, tissue labels in output
  order, how the input is scaled, how training went (best epoch, ...), the calibration
  temperature (``calibration.temperature``, fitted on the validation split after training;
  absent in older files, which load with T = 1), the configuration used,
  the package version, and the SHA-256 of the weights file, so that a weights file from another
  run is refused rather than silently paired with the wrong genes or tissues.

Loading reads the safetensors format and JSON only: no pickle, so a model file cannot run code.
This module is all about torch, so torch is imported at the top.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from rnaseq_saliency import __version__
from rnaseq_saliency.fileio import atomic_path

WEIGHTS_FILE = "model.safetensors"
JSON_FILE = "model.json"
FORMAT = "rnaseq-saliency-model"
FORMAT_VERSION = 1

PRESETS = ("default", "original")
ACTIVATIONS = ("relu", "gelu", "none")
# The earlier model, rebuilt exactly: three linear hidden layers with Dropout(0.5) and no
# activation between them (so it is a linear classifier with a bottleneck, 157M parameters).
ORIGINAL_HIDDEN = (7000, 2916, 540)
ORIGINAL_DROPOUT = 0.5
ORIGINAL_ACTIVATION = "none"

# Genes whose log1p expression varies less than this across the training rows are divided by
# this instead of their own standard deviation. Without a floor, a gene that is (nearly) constant
# in training (e.g. unexpressed, std 1e-6) would turn a small change at prediction time into a
# huge input value; 0.1 in log1p units is about a 10% change in expression, below which a gene
# carries little information anyway.
STD_FLOOR = 0.1
_SCALING_ROWS_PER_CHUNK = 2048
_PREDICT_BATCH = 1024


@dataclass(frozen=True)
class Architecture:
    """The shape of the network, resolved from the ``model`` config (presets applied)."""

    n_inputs: int
    n_outputs: int
    hidden: tuple[int, int, int]
    dropout: float
    activation: str
    preset: str

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["hidden"] = list(self.hidden)
        return data


def resolve_architecture(
    n_inputs: int,
    n_outputs: int,
    hidden: Sequence[int] = (512, 256, 128),
    dropout: float = 0.2,
    activation: str = "relu",
    preset: str = "default",
) -> Architecture:
    """Check the ``model`` config values and apply the preset.

    With ``preset="original"`` the values of ``hidden``, ``dropout`` and ``activation`` are
    ignored: the earlier model's 7000-2916-540 linear layers with Dropout(0.5) are used.
    """
    if preset not in PRESETS:
        raise ValueError(f"config key model.preset: {preset!r} is not one of {list(PRESETS)}")
    if n_inputs < 1 or n_outputs < 1:
        raise ValueError(
            f"a network needs at least one input and one output, got {n_inputs}, {n_outputs}"
        )
    if preset == "original":
        return Architecture(
            n_inputs, n_outputs, ORIGINAL_HIDDEN, ORIGINAL_DROPOUT, ORIGINAL_ACTIVATION, preset
        )
    widths = tuple(int(width) for width in hidden)
    if len(widths) != 3 or min(widths) < 1:
        raise ValueError(f"config key model.hidden: expected three positive widths, got {hidden!r}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"config key model.dropout: expected 0 <= dropout < 1, got {dropout!r}")
    if activation not in ACTIVATIONS:
        raise ValueError(
            f"config key model.activation: {activation!r} is not one of {list(ACTIVATIONS)}"
        )
    return Architecture(n_inputs, n_outputs, widths, float(dropout), activation, preset)  # type: ignore[arg-type]


def architecture_from_config(
    n_inputs: int, n_outputs: int, model_cfg: dict[str, Any]
) -> Architecture:
    """Resolve the ``model`` config section (keys preset, hidden, dropout, activation)."""
    known = {"preset", "hidden", "dropout", "activation"}
    unknown = sorted(set(model_cfg) - known)
    if unknown:
        raise ValueError(f"config key model: unknown key(s) {unknown}; known: {sorted(known)}")
    return resolve_architecture(n_inputs, n_outputs, **model_cfg)


def network_from_architecture(architecture: Architecture) -> nn.Sequential:
    """Four dense layers: three hidden (each followed by the activation and dropout) and output.

    Dropout with p = 0 is left out, so module indices depend only on the architecture, which
    model.json records.
    """
    layers: list[nn.Module] = []
    width_in = architecture.n_inputs
    for width in architecture.hidden:
        layers.append(nn.Linear(width_in, width))
        if architecture.activation == "relu":
            layers.append(nn.ReLU())
        elif architecture.activation == "gelu":
            layers.append(nn.GELU())
        if architecture.dropout > 0:
            layers.append(nn.Dropout(architecture.dropout))
        width_in = width
    layers.append(nn.Linear(width_in, architecture.n_outputs))
    return nn.Sequential(*layers)


def build_network(
    n_inputs: int,
    n_outputs: int,
    hidden: Sequence[int] = (512, 256, 128),
    dropout: float = 0.2,
    activation: str = "relu",
    preset: str = "default",
) -> nn.Sequential:
    """The classifier network mapping scaled input (n, n_inputs) to logits (n, n_outputs).

    Parameters are initialised from torch's global random state (seed it for reproducibility).
    Build inside ``with torch.device("meta"):`` to count parameters without allocating them.
    """
    return network_from_architecture(
        resolve_architecture(n_inputs, n_outputs, hidden, dropout, activation, preset)
    )


def count_parameters(network: nn.Module) -> int:
    """The number of trainable and frozen parameters of a torch module."""
    return sum(parameter.numel() for parameter in network.parameters())


def _check_expression(raw: np.ndarray, n_genes: int, what: str) -> np.ndarray:
    matrix = np.asarray(raw)
    if matrix.ndim != 2 or matrix.shape[1] != n_genes:
        raise ValueError(
            f"{what}: expected a (n_samples, {n_genes}) matrix with the model's genes in input "
            f"order, got shape {matrix.shape}"
        )
    return matrix


def _fit_input(raw: np.ndarray) -> np.ndarray:
    matrix = np.asarray(raw)
    if matrix.ndim != 2 or matrix.shape[0] == 0:
        raise ValueError(f"cannot fit input scaling on a matrix of shape {matrix.shape}")
    return matrix


def _check_writable_float32(matrix: np.ndarray, what: str) -> None:
    if matrix.dtype != np.float32 or not matrix.flags.writeable:
        raise ValueError(
            f"{what}: scaling in place needs a writable float32 matrix, got {matrix.dtype}"
            f"{'' if matrix.flags.writeable else ' (read-only)'}"
        )


def _check_values(block: np.ndarray, first_row: int, what: str) -> None:
    # log1p of a negative count or TPM is meaningless (NaN below -1), so refuse it here with a
    # row number rather than let NaN reach the network.
    bad = ~np.isfinite(block) | (block < 0)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise ValueError(
            f"{what}: row {first_row + int(row)}, gene column {int(col)} holds "
            f"{block[row, col]!r}; expression must be finite and >= 0"
        )


@dataclass
class Scaler:
    """log1p of expression, then per-gene standardisation with training statistics.

    ``mean`` and ``std`` are float32, one value per gene, of log1p expression over the training
    rows; ``std`` is already floored at ``STD_FLOOR``.
    """

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, raw: np.ndarray, std_floor: float = STD_FLOOR) -> Scaler:
        """Fit on raw training expression (n_rows, n_genes); reads it in row chunks.

        Chunking keeps a GTEx-sized matrix (2.5 GB) from being copied whole: log1p is taken
        again in the second pass instead of being kept. Sums are float64 and the variance is
        taken about the mean (two passes) for accuracy. ``fit_transform`` does both steps with
        one log1p pass when the scaled matrix is wanted too.
        """
        matrix = _fit_input(raw)
        n_rows, n_genes = matrix.shape
        total = np.zeros(n_genes, dtype=np.float64)
        for start in range(0, n_rows, _SCALING_ROWS_PER_CHUNK):
            block = matrix[start : start + _SCALING_ROWS_PER_CHUNK]
            _check_values(block, start, "training expression")
            total += np.log1p(block.astype(np.float32, copy=False)).sum(axis=0, dtype=np.float64)
        mean = total / n_rows
        squares = np.zeros(n_genes, dtype=np.float64)
        for start in range(0, n_rows, _SCALING_ROWS_PER_CHUNK):
            block = np.log1p(matrix[start : start + _SCALING_ROWS_PER_CHUNK].astype(np.float32))
            squares += np.square(block - mean).sum(axis=0)
        return cls._from_moments(mean, squares / n_rows, std_floor)

    @classmethod
    def fit_transform(
        cls, raw: np.ndarray, std_floor: float = STD_FLOOR, *, overwrite_input: bool = False
    ) -> tuple[Scaler, np.ndarray]:
        """``fit`` then ``transform``, the same numbers, with log1p taken once instead of 3 times.

        log1p dominates scaling (a GTEx-sized training set: 2 of fit's 3 passes and most of
        transform's). With ``overwrite_input`` the raw float32 matrix is scaled in place and
        returned, so that training does not hold a second 2.5 GB matrix.
        """
        matrix = _fit_input(raw)
        if overwrite_input:
            _check_writable_float32(matrix, "training expression")
            scaled = matrix
        else:
            scaled = np.empty(matrix.shape, dtype=np.float32)
        n_rows, n_genes = matrix.shape
        chunks = range(0, n_rows, _SCALING_ROWS_PER_CHUNK)
        total = np.zeros(n_genes, dtype=np.float64)
        for start in chunks:
            block = matrix[start : start + _SCALING_ROWS_PER_CHUNK]
            _check_values(block, start, "training expression")
            logged = scaled[start : start + block.shape[0]]
            np.log1p(block.astype(np.float32, copy=False), out=logged)
            total += logged.sum(axis=0, dtype=np.float64)
        mean = total / n_rows
        squares = np.zeros(n_genes, dtype=np.float64)
        for start in chunks:
            squares += np.square(scaled[start : start + _SCALING_ROWS_PER_CHUNK] - mean).sum(axis=0)
        scaler = cls._from_moments(mean, squares / n_rows, std_floor)
        for start in chunks:
            chunk = scaled[start : start + _SCALING_ROWS_PER_CHUNK]
            chunk -= scaler.mean
            chunk /= scaler.std
        return scaler, scaled

    @classmethod
    def _from_moments(cls, mean: np.ndarray, variance: np.ndarray, std_floor: float) -> Scaler:
        return cls(
            mean=mean.astype(np.float32),
            std=np.maximum(np.sqrt(variance), std_floor).astype(np.float32),
        )

    def transform(self, raw: np.ndarray, *, overwrite_input: bool = False) -> np.ndarray:
        """Scaled float32 raw expression (n_rows, n_genes), computed in row chunks.

        A new array, or with ``overwrite_input`` the float32 input itself, scaled in place.
        """
        matrix = _check_expression(raw, self.mean.shape[0], "expression to scale")
        if overwrite_input:
            _check_writable_float32(matrix, "expression to scale")
            out = matrix
        else:
            out = np.empty(matrix.shape, dtype=np.float32)
        for start in range(0, matrix.shape[0], _SCALING_ROWS_PER_CHUNK):
            block = matrix[start : start + _SCALING_ROWS_PER_CHUNK]
            _check_values(block, start, "expression to scale")
            chunk = out[start : start + block.shape[0]]
            np.log1p(block.astype(np.float32, copy=False), out=chunk)
            chunk -= self.mean
            chunk /= self.std
        return out


@dataclass
class TrainedModel:
    """A trained classifier with everything needed to apply it to raw expression.

    ``network`` is on the CPU in eval mode and maps SCALED input (n, n_genes) float32 to logits
    (n, n_tissues); ``scale`` turns raw expression (TPM or reads, genes in ``gene_ids`` order)
    into that input. ``metadata`` is the content of model.json.
    """

    network: nn.Module
    gene_ids: list[str]
    gene_names: list[str]
    tissues: list[str]
    mean: np.ndarray
    std: np.ndarray
    metadata: dict[str, Any]

    @property
    def scaler(self) -> Scaler:
        return Scaler(self.mean, self.std)

    def scale(self, raw: np.ndarray, *, overwrite_input: bool = False) -> np.ndarray:
        """log1p then (x - mean) / std, float32, shape (n_samples, n_genes).

        ``overwrite_input`` scales a writable float32 ``raw`` in place (no copy).
        """
        return self.scaler.transform(raw, overwrite_input=overwrite_input)

    def logits(self, raw: np.ndarray, batch_size: int = _PREDICT_BATCH) -> np.ndarray:
        """Logits (n_samples, n_tissues) float32 for raw expression (n_samples, n_genes)."""
        scaled = self.scale(raw)
        self.network.eval()
        outputs = []
        with torch.inference_mode():
            for start in range(0, scaled.shape[0], batch_size):
                batch = torch.from_numpy(scaled[start : start + batch_size])
                outputs.append(self.network(batch).float().numpy())
        if not outputs:
            return np.empty((0, len(self.tissues)), dtype=np.float32)
        return np.concatenate(outputs)

    @property
    def temperature(self) -> float:
        """The calibration temperature T of model.json (1 for a model saved without one)."""
        return temperature_of(self.metadata)

    def predict_proba(self, raw: np.ndarray, *, calibrated: bool = True) -> np.ndarray:
        """Probabilities (n_samples, n_tissues), columns in ``tissues`` order.

        softmax(logits / T) with the model's calibration temperature T (``calibrated=False``:
        the plain softmax of the logits). T changes no argmax, so no prediction.
        """
        logits = torch.from_numpy(self.logits(raw))
        temperature = self.temperature if calibrated else 1.0
        return torch.softmax(logits / temperature, dim=1).numpy()

    def predict(self, raw: np.ndarray) -> list[str]:
        """The most probable tissue label of each sample."""
        return [self.tissues[i] for i in self.logits(raw).argmax(axis=1)]


def temperature_of(metadata: dict[str, Any]) -> float:
    """model.json's ``calibration.temperature``; 1 (no calibration) when the key is absent."""
    temperature = float((metadata.get("calibration") or {}).get("temperature", 1.0))
    if not (math.isfinite(temperature) and temperature > 0):
        raise ValueError(f"model.json: calibration temperature {temperature!r} is not > 0")
    return temperature


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_model(
    model_dir: str | os.PathLike[str],
    network: nn.Module,
    architecture: Architecture,
    scaler: Scaler,
    gene_ids: Sequence[str],
    gene_names: Sequence[str],
    tissues: Sequence[str],
    training: dict[str, Any] | None = None,
    config: dict[str, Any] | None = None,
    calibration: dict[str, Any] | None = None,
) -> TrainedModel:
    """Write ``model.safetensors`` and ``model.json`` into ``model_dir``, each atomically.

    The weights are written first and model.json, which records their SHA-256, last: a crash in
    between leaves an old or missing model.json, which ``load_model`` refuses to pair with the
    new weights. ``training`` (best epoch, ...) and ``config`` (the run's configuration) are
    stored as given and must be JSON-serialisable. ``calibration`` (``temperature`` and how it
    was fitted, ``rnaseq_saliency.calibration.TemperatureFit.to_json``) is stored as
    ``calibration``; without it the temperature is 1. Returns the model as ``load_model`` would.
    """
    n_genes, n_tissues = len(gene_ids), len(tissues)
    if (architecture.n_inputs, architecture.n_outputs) != (n_genes, n_tissues):
        raise ValueError(
            f"the architecture has {architecture.n_inputs} inputs and {architecture.n_outputs} "
            f"outputs, but there are {n_genes} genes and {n_tissues} tissues"
        )
    if len(gene_names) != n_genes or scaler.mean.shape != (n_genes,):
        raise ValueError("gene_names and the scaling statistics need one entry per gene")
    directory = Path(model_dir)
    tensors = {
        f"network.{name}": tensor.detach().to("cpu", torch.float32).contiguous()
        for name, tensor in network.state_dict().items()
    }
    tensors["scaling.mean"] = torch.from_numpy(np.ascontiguousarray(scaler.mean, np.float32))
    tensors["scaling.std"] = torch.from_numpy(np.ascontiguousarray(scaler.std, np.float32))
    from safetensors.torch import save_file

    weights_path = directory / WEIGHTS_FILE
    with atomic_path(weights_path) as tmp:
        # One metadata key only: safetensors writes the metadata map in hash order, so two keys
        # would make the same weights give different bytes from run to run.
        save_file(tensors, tmp, metadata={"format": f"{FORMAT} {FORMAT_VERSION}"})
        weights_sha256 = _sha256(tmp)
    metadata: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "package_version": __version__,
        "architecture": architecture.to_json(),
        "n_parameters": count_parameters(network),
        "gene_ids": list(gene_ids),
        "gene_names": list(gene_names),
        "tissues": list(tissues),
        "scaling": {
            "transform": "log1p",
            "standardise": "per gene, (log1p(x) - mean) / std over the training rows",
            "std_floor": STD_FLOOR,
            "mean_tensor": "scaling.mean",
            "std_tensor": "scaling.std",
        },
        "weights": {"file": WEIGHTS_FILE, "sha256": weights_sha256},
        "training": training or {},
        "calibration": calibration or {"method": "none", "temperature": 1.0},
        "config": config or {},
    }
    temperature_of(metadata)
    with atomic_path(directory / JSON_FILE) as tmp:
        tmp.write_text(json.dumps(metadata, indent=2, default=str) + "\n")
    return _assemble(network, metadata, scaler)


def _assemble(network: nn.Module, metadata: dict[str, Any], scaler: Scaler) -> TrainedModel:
    cpu_network = network.to("cpu").eval()
    return TrainedModel(
        network=cpu_network,
        gene_ids=list(metadata["gene_ids"]),
        gene_names=list(metadata["gene_names"]),
        tissues=list(metadata["tissues"]),
        mean=scaler.mean,
        std=scaler.std,
        metadata=metadata,
    )


def load_model(model_dir: str | os.PathLike[str]) -> TrainedModel:
    """Read ``model.safetensors`` and ``model.json`` from ``model_dir`` (never unpickles)."""
    from safetensors.torch import load_file

    directory = Path(model_dir)
    json_path, weights_path = directory / JSON_FILE, directory / WEIGHTS_FILE
    for path in (json_path, weights_path):
        if not path.is_file():
            raise FileNotFoundError(
                f"{path}: no such file; a trained model needs both {WEIGHTS_FILE} and {JSON_FILE}"
            )
    metadata = json.loads(json_path.read_text())
    if metadata.get("format") != FORMAT:
        raise ValueError(f"{json_path}: not an rnaseq-saliency model description")
    temperature_of(metadata)
    if metadata.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"{json_path}: format_version {metadata.get('format_version')!r} is not supported "
            f"by rnaseq-saliency {__version__} (expects {FORMAT_VERSION})"
        )
    expected = metadata["weights"]["sha256"]
    if _sha256(weights_path) != expected:
        raise ValueError(
            f"{weights_path}: its SHA-256 differs from the one recorded in {json_path}; the two "
            "files come from different training runs"
        )
    tensors = load_file(weights_path)
    arch = metadata["architecture"]
    architecture = Architecture(
        n_inputs=int(arch["n_inputs"]),
        n_outputs=int(arch["n_outputs"]),
        hidden=tuple(int(width) for width in arch["hidden"]),  # type: ignore[arg-type]
        dropout=float(arch["dropout"]),
        activation=str(arch["activation"]),
        preset=str(arch["preset"]),
    )
    network = network_from_architecture(architecture)
    prefix = "network."
    state = {k.removeprefix(prefix): v for k, v in tensors.items() if k.startswith(prefix)}
    network.load_state_dict(state, strict=True)
    scaler = Scaler(
        mean=tensors["scaling.mean"].numpy().astype(np.float32),
        std=tensors["scaling.std"].numpy().astype(np.float32),
    )
    n_genes = len(metadata["gene_ids"])
    if scaler.mean.shape != (n_genes,) or architecture.n_inputs != n_genes:
        raise ValueError(f"{directory}: the weights and the gene list of {JSON_FILE} disagree")
    return _assemble(network, metadata, scaler)
