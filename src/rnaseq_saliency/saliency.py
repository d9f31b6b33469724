"""Saliency maps of the tissue classifier: per-sample gradients and per-tissue aggregates.

Definition (the original project's ``saliency(x, abs=False)``, kept exactly): with the network in
evaluation mode and its parameters frozen, the gradient of the predicted (highest-scoring)
class's logit with respect to the input vector ``x``, the *scaled* input the network sees
(log1p then per-gene standardisation); with ``abs=True`` its absolute value; then min-max scaled
to [0, 1] per sample. This equals Captum's ``Saliency`` for the same target, up to that scaling
and Captum's default of ``abs=True`` (ours is ``abs=False``). ``tests/test_saliency.py`` checks it.

What a map is, and is not: a local, first-order sensitivity of one logit at one input point. It
is not causal and not a measure of expression; with ``abs=False`` a value near 1 means "raising
this gene raises the tissue's logit most steeply", near 0 "lowers it most steeply", and genes
without effect sit in between. Vanilla gradients give a noisy gene ranking (BENCHMARKS.md,
"Saliency on the demo"); ``attribute`` offers Captum's integrated gradients, SmoothGrad and
input x gradient with the same post-processing; ``faithfulness`` measures which ranking the
model depends on (and ``saliency.method: auto`` picks by it), ``saliency_validation`` which
agrees with biology.

Batching: one forward and one backward pass per batch. The gradient of the *sum* over the batch
of each sample's selected logit, with respect to the batch input, has as row ``i`` the gradient
of sample ``i``'s logit alone, because in evaluation mode no sample's output depends on another
sample's input (dropout is off; BatchNorm, if any, uses its running statistics). A network that
mixes samples within a batch (e.g. BatchNorm left in training mode) would break this, which is
one reason the network is put in evaluation mode here.

Per-tissue file ``results/saliency/maps/{method}/{tissue}.parquet`` (one per method of
``saliency.methods``; rule ``saliency`` computes them all in one job, with the deletion curves
of ``faithfulness``; see ``write_tissue_saliency``): one row per map, with the columns

- ``row`` (string): ``mean``, ``median``, ``sd`` and ``n`` for the per-gene aggregates over the
  tissue's correctly classified held-out samples, then ``sample`` for each sample's map;
- ``sample_id`` (string; null on aggregate rows);
- ``saliency``: a ``fixed_size_list<float32>`` with one value per gene (the layout of
  ``rnaseq_saliency.expression``),

and in the schema metadata the gene ids (``rnaseq_saliency.gene_ids``, as in expression files)
and a JSON description (``rnaseq_saliency.saliency``: tissue, method, abs, method options, the
evaluated split, the class index, the number of samples). A tissue without correctly classified
samples, or dropped by the split, gets a valid file with no ``sample`` rows, NaN aggregates and
``n`` = 0.

torch and Captum are imported inside the functions that need them: ``top_genes_table`` runs in
the data environment, which has no torch.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from rnaseq_saliency.datasets import tissue_of
from rnaseq_saliency.evaluate import read_predictions
from rnaseq_saliency.expression import GENE_IDS_KEY, ExpressionTable
from rnaseq_saliency.fileio import atomic_path, read_gene_matrix, write_gene_matrix
from rnaseq_saliency.genes import read_selected_genes
from rnaseq_saliency.settings import DEFAULT_SALIENCY, SaliencySettings

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

METHODS = ("gradient", "integrated_gradients", "smoothgrad", "input_x_gradient")
# Options each method accepts, with their defaults (those of config/config.yaml).
METHOD_OPTIONS: dict[str, dict[str, Any]] = {
    "gradient": {},
    # n_steps: points of Captum's Gauss-Legendre path integral (its default is 50; 16 gave the
    # same tissue top-20 lists within one gene and a 0.3% completeness error on the demo,
    # bench/attribution_steps.py); baseline: in SCALED space, so 0.0 is the training mean of
    # every gene (a float, or one value per gene).
    "integrated_gradients": {"n_steps": 16, "baseline": 0.0},
    # nt_samples noisy copies per sample, Gaussian noise of sd `stdevs` in scaled units (i.e.
    # in training standard deviations of each gene); drawn from torch's generator seeded by
    # `seed`, so the same seed and batch size give the same maps.
    "smoothgrad": {"nt_samples": 8, "stdevs": 0.1},
    "input_x_gradient": {},
}
AGGREGATE_ROWS = ("mean", "median", "sd", "n")
SALIENCY_KEY = b"rnaseq_saliency.saliency"
SALIENCY_COLUMN = "saliency"


class ModelLike(Protocol):
    """What the saliency code needs of ``rnaseq_saliency.model.TrainedModel``."""

    network: Any
    gene_ids: list[str]
    gene_names: list[str]
    tissues: list[str]

    def scale(self, raw: np.ndarray) -> np.ndarray: ...


# --------------------------------------------------------------------------------------------
# Per-sample maps
# --------------------------------------------------------------------------------------------


def minmax_per_sample(maps: np.ndarray) -> np.ndarray:
    """Scale each row to [0, 1]: ``(m - min) / (max - min)``, float32.

    A constant row (e.g. a network whose selected logit does not depend on the input, or a
    ReLU network with every unit dead at that input) has no ranking to show: it becomes all
    zeros rather than NaN. Non-finite values are refused, naming the first bad row. The
    reference for the in-batch torch version that ``saliency`` and ``attribute`` use.
    """
    values = np.asarray(maps, dtype=np.float32)
    if values.ndim != 2:
        raise ValueError(f"expected a (n_samples, n_genes) array of maps, got shape {values.shape}")
    finite = np.isfinite(values).all(axis=1)
    if not finite.all():
        row = int(np.flatnonzero(~finite)[0])
        raise ValueError(
            f"saliency map of row {row} has non-finite values: check the model weights and input"
        )
    if values.shape[1] == 0:
        return values.copy()
    low = values.min(axis=1, keepdims=True)
    span = values.max(axis=1, keepdims=True) - low
    out = np.zeros_like(values)
    np.divide(values - low, span, out=out, where=span > 0)
    return out


def minmax_rows_(maps: torch.Tensor, abs: bool, first_row: int = 0) -> torch.Tensor:
    """``minmax_per_sample`` (after ``abs`` if asked) on a batch, in place, on its device.

    Done per batch in torch rather than once in numpy: it is multi-threaded (or on the GPU), and
    takes two passes over the batch instead of numpy's five over the whole (n, n_genes) matrix,
    which at GTEx size cost as much as the gradients themselves. Same float32 arithmetic as
    ``minmax_per_sample``: subtract the row minimum, divide by the row range (1 where it is 0).
    """
    import torch

    if abs:
        maps.abs_()
    if maps.shape[0] == 0 or maps.shape[1] == 0:
        return maps
    low = maps.amin(dim=1, keepdim=True)
    high = maps.amax(dim=1, keepdim=True)
    # amin/amax propagate NaN and keep +-inf, so checking them finds every non-finite row.
    bad = ~(torch.isfinite(low) & torch.isfinite(high)).squeeze(1)
    if bool(bad.any()):
        row = first_row + int(bad.nonzero()[0, 0])
        raise ValueError(
            f"saliency map of row {row} has non-finite values: check the model weights and input"
        )
    span = high - low
    maps.sub_(low).div_(torch.where(span > 0, span, torch.ones_like(span)))
    return maps


@contextlib.contextmanager
def frozen(network: torch.nn.Module) -> Iterator[torch.nn.Module]:
    """Evaluation mode and ``requires_grad=False`` on every parameter, restored on exit.

    Frozen parameters keep the backward pass from computing (and accumulating into ``.grad``)
    weight gradients that saliency never uses; each module's mode is restored individually.
    """
    modes = [(module, module.training) for module in network.modules()]
    flags = [(parameter, parameter.requires_grad) for parameter in network.parameters()]
    network.eval()
    for parameter, _ in flags:
        parameter.requires_grad_(False)
    try:
        yield network
    finally:
        for parameter, flag in flags:
            parameter.requires_grad_(flag)
        for module, mode in modes:
            module.training = mode


def _device_of(network: torch.nn.Module) -> torch.device:
    import torch

    for parameter in network.parameters():
        return parameter.device
    return torch.device("cpu")


def _as_input(inputs: np.ndarray | torch.Tensor) -> np.ndarray:
    import torch

    if isinstance(inputs, torch.Tensor):
        inputs = inputs.detach().cpu().numpy()
    matrix = np.ascontiguousarray(inputs, dtype=np.float32)
    if matrix.ndim != 2:
        raise ValueError(f"expected scaled input of shape (n_samples, n_genes), got {matrix.shape}")
    return matrix


def _targets(target: int | Sequence[int] | np.ndarray | None, n_samples: int) -> np.ndarray | None:
    """``None`` (use each sample's predicted class), or one class index per sample."""
    if target is None:
        return None
    array = np.asarray(target)
    if array.ndim == 0:
        array = np.full(n_samples, int(array))
    if array.shape != (n_samples,) or not np.issubdtype(array.dtype, np.integer):
        raise ValueError(
            f"target: expected None, one class index, or {n_samples} integer class indices; "
            f"got shape {array.shape} of {array.dtype}"
        )
    return array.astype(np.int64)


def _check_targets(targets: torch.Tensor, n_outputs: int) -> None:
    if targets.numel() and (int(targets.min()) < 0 or int(targets.max()) >= n_outputs):
        raise ValueError(
            f"target: class indices must be in [0, {n_outputs}), got "
            f"{int(targets.min())}..{int(targets.max())}"
        )


def _check_batch_size(batch_size: int) -> None:
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")


def saliency(
    network: torch.nn.Module,
    inputs: np.ndarray | torch.Tensor,
    abs: bool = False,  # the original function's argument name
    target: int | Sequence[int] | np.ndarray | None = None,
    batch_size: int = 512,
) -> np.ndarray:
    """Saliency maps (n_samples, n_genes) float32 in [0, 1], one backward pass per batch.

    Args:
        network: maps scaled input (n, n_genes) to logits (n, n_classes). Put in evaluation
            mode with frozen parameters for the call; its modes and flags are restored after.
        inputs: the SCALED input (n_samples, n_genes), as ``TrainedModel.scale`` returns it.
        abs: take the absolute value of the gradient before scaling (default False, as in the
            original function; Captum's ``Saliency`` defaults to True).
        target: ``None`` for each sample's predicted (argmax) class, or one class index for all
            samples, or one per sample.
        batch_size: samples per forward/backward pass (memory ~ batch_size x n_genes floats).

    Returns each sample's gradient (or its absolute value) min-max scaled to [0, 1]; a constant
    gradient gives a row of zeros.
    """
    import torch

    _check_batch_size(batch_size)
    matrix = _as_input(inputs)
    targets = _targets(target, matrix.shape[0])
    device = _device_of(network)
    maps = np.empty_like(matrix)
    with frozen(network), torch.enable_grad():
        for start in range(0, matrix.shape[0], batch_size):
            stop = min(start + batch_size, matrix.shape[0])
            x = torch.from_numpy(matrix[start:stop]).to(device).requires_grad_(True)
            logits = network(x)
            if targets is None:
                chosen = logits.detach().argmax(dim=1)
            else:
                chosen = torch.from_numpy(targets[start:stop]).to(device)
                _check_targets(chosen, logits.shape[1])
            # Row i of d(sum_i logit_i)/dx is d(logit_i)/dx_i: samples are independent here.
            selected = logits.gather(1, chosen.unsqueeze(1)).sum()
            (gradient,) = torch.autograd.grad(selected, x)
            maps[start:stop] = minmax_rows_(gradient.detach().float(), abs, start).cpu().numpy()
    return maps


def method_options(
    method: str,
    ig_steps: int = 16,
    smoothgrad_samples: int = 8,
    smoothgrad_stdev: float = 0.1,
) -> dict[str, Any]:
    """The ``attribute`` options of ``method`` from the ``saliency.*`` config values."""
    if method not in METHODS:
        raise ValueError(f"config key saliency.method: {method!r} is not one of {list(METHODS)}")
    if method == "integrated_gradients":
        return {"n_steps": int(ig_steps), "baseline": 0.0}
    if method == "smoothgrad":
        return {"nt_samples": int(smoothgrad_samples), "stdevs": float(smoothgrad_stdev)}
    return {}


def _resolve_options(method: str, options: dict[str, Any]) -> dict[str, Any]:
    if method not in METHODS:
        raise ValueError(f"unknown saliency method {method!r}; expected one of {list(METHODS)}")
    allowed = METHOD_OPTIONS[method]
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ValueError(
            f"saliency method {method!r} takes no option(s) {unknown}; it takes {sorted(allowed)}"
        )
    return {**allowed, **options}


def _ig_baseline(value: Any, n_genes: int, device: torch.device) -> float | torch.Tensor:
    """Integrated gradients' baseline: one value for every gene, or one value per gene."""
    import torch

    if np.ndim(value) == 0:
        return float(value)
    base = np.asarray(value, dtype=np.float32).reshape(1, -1)
    if base.shape[1] != n_genes:
        raise ValueError(
            f"integrated_gradients baseline: expected one value per gene "
            f"({n_genes}), got {base.shape[1]}"
        )
    return torch.from_numpy(base).to(device)


def _batch_targets(
    network: torch.nn.Module,
    x: torch.Tensor,
    targets: np.ndarray | None,
    start: int,
    stop: int,
) -> torch.Tensor:
    """The class each row of the batch is explained for: the given one, or the predicted one."""
    import torch

    with torch.no_grad():
        logits = network(x)
    if targets is None:
        return logits.argmax(dim=1)
    chosen = torch.from_numpy(targets[start:stop]).to(x.device)
    _check_targets(chosen, logits.shape[1])
    return chosen


def _captum_attribution(
    method: str,
    network: torch.nn.Module,
    x: torch.Tensor,
    chosen: torch.Tensor,
    settings: dict[str, Any],
    baseline: float | torch.Tensor,
    batch_size: int,
    abs: bool,
) -> torch.Tensor:
    """One batch's raw attributions by Captum's implementation of ``method``."""
    from captum.attr import InputXGradient, IntegratedGradients, NoiseTunnel, Saliency

    if method == "integrated_gradients":
        return IntegratedGradients(network).attribute(
            x,
            baselines=baseline,
            target=chosen,
            n_steps=int(settings["n_steps"]),
            internal_batch_size=batch_size,
        )
    if method == "smoothgrad":
        return NoiseTunnel(Saliency(network)).attribute(
            x,
            nt_type="smoothgrad",
            nt_samples=int(settings["nt_samples"]),
            # Noisy copies per pass, so that one pass holds about batch_size rows.
            nt_samples_batch_size=max(1, batch_size // x.shape[0]),
            stdevs=float(settings["stdevs"]),
            target=chosen,
            abs=abs,
        )
    return InputXGradient(network).attribute(x, target=chosen)


def attribute(
    network: torch.nn.Module,
    inputs: np.ndarray | torch.Tensor,
    method: str = "gradient",
    target: int | Sequence[int] | np.ndarray | None = None,
    abs: bool = False,  # same argument as ``saliency``
    batch_size: int = 512,
    seed: int = 0,
    **options: Any,
) -> np.ndarray:
    """Attribution maps (n_samples, n_genes) in [0, 1] by ``method``, scaled as ``saliency``.

    Methods (all with the target = predicted class unless ``target`` is given, computed on the
    clean input before any noise or path):

    - ``gradient``: ``saliency`` above (our batched implementation; equal to Captum's).
    - ``integrated_gradients``: Captum ``IntegratedGradients`` from ``baseline`` (default 0.0 in
      scaled space = every gene at its training mean) with ``n_steps`` (default 16) points,
      evaluated ``batch_size`` rows at a time.
    - ``smoothgrad``: Captum ``NoiseTunnel`` over ``Saliency``: the mean gradient over
      ``nt_samples`` (8) noisy copies with noise sd ``stdevs`` (0.1, scaled units). With
      ``abs=True`` the absolute gradient of each copy is averaged (Captum's behaviour). The noise
      comes from torch's generator seeded with ``seed`` inside a forked random state.
    - ``input_x_gradient``: Captum ``InputXGradient``, the scaled input times its gradient; as
      the input is centred on the training mean, this is the first-order estimate of the logit
      change from the training mean to the sample.

    Then the absolute value (``abs=True``) and min-max scaling to [0, 1] per sample.
    """
    import torch

    settings = _resolve_options(method, options)
    _check_batch_size(batch_size)
    if method == "gradient":
        return saliency(network, inputs, abs=abs, target=target, batch_size=batch_size)
    # Without Captum, fail here, before the input checks (the methods import it per batch).
    import captum.attr  # noqa: F401

    matrix = _as_input(inputs)
    targets = _targets(target, matrix.shape[0])
    device = _device_of(network)
    maps = np.empty_like(matrix)
    baseline: float | torch.Tensor = 0.0
    if method == "integrated_gradients":
        baseline = _ig_baseline(settings["baseline"], matrix.shape[1], device)
    devices = [device] if device.type == "cuda" else []
    with frozen(network), torch.random.fork_rng(devices=devices), torch.enable_grad():
        torch.manual_seed(seed)
        for start in range(0, matrix.shape[0], batch_size):
            stop = min(start + batch_size, matrix.shape[0])
            x = torch.from_numpy(matrix[start:stop]).to(device)
            chosen = _batch_targets(network, x, targets, start, stop)
            x = x.clone().requires_grad_(True)
            result = _captum_attribution(
                method, network, x, chosen, settings, baseline, batch_size, abs
            )
            # SmoothGrad already averaged absolute gradients when abs is set.
            finished = minmax_rows_(result.detach().float(), abs and method != "smoothgrad", start)
            maps[start:stop] = finished.cpu().numpy()
    return maps


# --------------------------------------------------------------------------------------------
# Per-tissue maps and their file
# --------------------------------------------------------------------------------------------


@dataclass
class TissueSaliency:
    """One tissue's per-sample maps and per-gene aggregates, as stored in its Parquet file."""

    tissue: str
    gene_ids: list[str]
    sample_ids: list[str]
    maps: np.ndarray  # (n_samples, n_genes) float32 in [0, 1]
    mean: np.ndarray  # (n_genes,) float32; NaN when there are no samples
    median: np.ndarray
    sd: np.ndarray  # sample standard deviation (ddof=1); NaN with fewer than two samples
    info: dict[str, Any] = field(default_factory=dict)  # method, abs, options, split, ...

    @property
    def n_samples(self) -> int:
        return len(self.sample_ids)


def aggregate(maps: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-gene mean, median and sample standard deviation (ddof=1) of the maps, float32.

    NaN (never a warning) where undefined: all three with no samples, the sd with one.
    """
    n_samples, n_genes = maps.shape
    nan = np.full(n_genes, np.nan, dtype=np.float32)
    if n_samples == 0:
        return nan, nan.copy(), nan.copy()
    values = maps.astype(np.float64)
    mean = values.mean(axis=0).astype(np.float32)
    median = np.median(values, axis=0).astype(np.float32)
    sd = values.std(axis=0, ddof=1).astype(np.float32) if n_samples > 1 else nan
    return mean, median, sd


def make_tissue_saliency(
    tissue: str,
    gene_ids: Sequence[str],
    sample_ids: Sequence[str],
    maps: np.ndarray,
    info: dict[str, Any] | None = None,
) -> TissueSaliency:
    """Bundle maps with their aggregates; ``info`` describes how they were computed."""
    maps = np.ascontiguousarray(maps, dtype=np.float32).reshape(len(sample_ids), len(gene_ids))
    mean, median, sd = aggregate(maps)
    return TissueSaliency(
        tissue, list(gene_ids), list(sample_ids), maps, mean, median, sd, dict(info or {})
    )


def evaluated_split(predictions: pd.DataFrame) -> str:
    """``test`` when the predictions hold test samples, else ``val`` (``evaluate.test_opt: 0``)."""
    splits = set(predictions["split"])
    if "test" in splits:
        return "test"
    if "val" in splits or predictions.empty:
        return "val"
    raise ValueError(f"predictions: no 'test' or 'val' rows (splits {sorted(splits)})")


def correct_samples(
    predictions: pd.DataFrame, tissue: str, split: str | None = None
) -> tuple[list[str], str, int]:
    """Sample ids of ``tissue``'s correctly classified samples of ``split`` (default: the
    evaluated split).

    Returns (sample ids, split, number of the tissue's samples in that split). Only held-out
    samples the model got right are explained: for a wrong prediction the predicted class's
    gradient says nothing about the true tissue.
    """
    split = split or evaluated_split(predictions)
    rows = predictions.loc[(predictions["split"] == split) & (predictions["tissue"] == tissue)]
    chosen = rows.loc[rows["correct"].to_numpy(dtype=bool)]
    wrong = chosen.loc[chosen["predicted"] != tissue, "sample_id"].tolist()
    if wrong:
        raise ValueError(
            f"predictions: {len(wrong)} row(s) of {tissue} are marked correct but predict "
            f"another tissue (first: {wrong[0]})"
        )
    return chosen["sample_id"].tolist(), split, len(rows)


def tissue_saliency(
    model: ModelLike,
    expression: ExpressionTable,
    predictions: pd.DataFrame,
    tissue: str,
    method: str = "gradient",
    abs: bool = False,  # same argument as ``saliency``
    batch_size: int = 512,
    seed: int = 0,
    split: str | None = None,
    **options: Any,
) -> TissueSaliency:
    """Maps of ``tissue``'s correctly classified held-out samples, target = its class.

    ``expression`` is the tissue's expression table (``results/expression/{tissue}.parquet``);
    ``predictions`` as ``read_predictions`` returns it. The split is ``split`` or else the
    evaluated one: ``test``, or ``val`` when the predictions hold no test rows. A tissue the
    model does not know (dropped by the split) or without correct samples gives an empty
    result (n = 0, NaN aggregates).
    """
    settings = _resolve_options(method, options)
    if expression.gene_ids != list(model.gene_ids):
        raise ValueError(
            f"{tissue}: the expression file's genes differ from the model's "
            f"({len(expression.gene_ids)} vs {len(model.gene_ids)} genes, or another order)"
        )
    sample_ids, split, n_evaluated = correct_samples(predictions, tissue, split)
    info: dict[str, Any] = {
        "tissue": tissue,
        "method": method,
        "abs": bool(abs),
        "options": settings,
        "seed": int(seed),
        "split": split,
        "n_evaluated": n_evaluated,
        "class_index": None,
    }
    if tissue not in model.tissues:
        log.warning("%s: not one of the model's tissues (dropped by the split): empty maps", tissue)
        return make_tissue_saliency(tissue, expression.gene_ids, [], np.empty((0, 0)), info)
    class_index = list(model.tissues).index(tissue)
    info["class_index"] = class_index
    wanted = set(sample_ids)
    rows = [i for i, sample in enumerate(expression.sample_ids) if sample in wanted]
    if len(rows) != len(wanted):
        missing = sorted(wanted - set(expression.sample_ids))
        raise ValueError(
            f"{tissue}: {len(missing)} correctly classified sample(s) are not in the expression "
            f"file (first: {missing[0]})"
        )
    chosen_ids = [expression.sample_ids[i] for i in rows]
    if not rows:
        log.warning("%s: no correctly classified %s samples: empty maps", tissue, split)
        return make_tissue_saliency(tissue, expression.gene_ids, [], np.empty((0, 0)), info)
    scaled = model.scale(expression.matrix[rows])
    maps = attribute(
        model.network,
        scaled,
        method=method,
        target=class_index,
        abs=abs,
        batch_size=batch_size,
        seed=seed,
        **settings,
    )
    log.info(
        "%s: %s maps of %d of %d %s samples (correctly classified)",
        tissue,
        method,
        len(rows),
        n_evaluated,
        split,
    )
    return make_tissue_saliency(tissue, expression.gene_ids, chosen_ids, maps, info)


def write_tissue_saliency(path: str | os.PathLike[str], result: TissueSaliency) -> None:
    """Write one tissue's maps and aggregates to ``path`` atomically (layout: module docstring)."""
    n_genes = len(result.gene_ids)
    n_column = np.full(n_genes, result.n_samples, dtype=np.float32)
    rows = np.concatenate(
        [
            np.stack([result.mean, result.median, result.sd, n_column]).astype(np.float32),
            result.maps.reshape(result.n_samples, n_genes),
        ]
    )
    values = pa.array(np.ascontiguousarray(rows).reshape(-1), type=pa.float32())
    info = {**result.info, "tissue": result.tissue, "n_samples": result.n_samples}
    table = pa.table(
        {
            "row": pa.array([*AGGREGATE_ROWS, *["sample"] * result.n_samples], type=pa.string()),
            "sample_id": pa.array([None] * len(AGGREGATE_ROWS) + result.sample_ids, pa.string()),
            SALIENCY_COLUMN: pa.FixedSizeListArray.from_arrays(values, n_genes),
        }
    ).replace_schema_metadata(
        {
            GENE_IDS_KEY: json.dumps(result.gene_ids).encode(),
            SALIENCY_KEY: json.dumps(info, sort_keys=True).encode(),
        }
    )
    with atomic_path(path) as tmp:
        pq.write_table(
            table,
            tmp,
            compression="zstd",
            use_dictionary=["row", "sample_id"],
            row_group_size=max(table.num_rows, 1),
        )


def read_tissue_saliency(path: str | os.PathLike[str]) -> TissueSaliency:
    """Read a file written by ``write_tissue_saliency``."""
    table = pq.read_table(path)
    metadata = table.schema.metadata or {}
    if GENE_IDS_KEY not in metadata or SALIENCY_KEY not in metadata:
        raise ValueError(f"{path}: not an rnaseq-saliency saliency file (no saliency metadata)")
    gene_ids = json.loads(metadata[GENE_IDS_KEY])
    info = json.loads(metadata[SALIENCY_KEY])
    kinds = table.column("row").to_pylist()
    column = table.column(SALIENCY_COLUMN)
    lists = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    flat = lists.values.to_numpy(zero_copy_only=False)
    matrix = np.asarray(flat, dtype=np.float32).reshape(len(kinds), len(gene_ids))
    index = {kind: i for i, kind in enumerate(kinds) if kind != "sample"}
    missing = [kind for kind in AGGREGATE_ROWS if kind not in index]
    if missing:
        raise ValueError(f"{path}: aggregate row(s) {missing} missing")
    samples = np.array([kind == "sample" for kind in kinds])
    sample_ids = [
        s for s, keep in zip(table.column("sample_id").to_pylist(), samples, strict=True) if keep
    ]
    return TissueSaliency(
        tissue=str(info.get("tissue", tissue_of(path))),
        gene_ids=gene_ids,
        sample_ids=sample_ids,
        maps=np.ascontiguousarray(matrix[samples]),
        mean=matrix[index["mean"]].copy(),
        median=matrix[index["median"]].copy(),
        sd=matrix[index["sd"]].copy(),
        info=info,
    )


MAPS_DIR = "results/saliency/maps"


def maps_path(method: str, tissue: str, root: str = MAPS_DIR) -> str:
    """Where rule ``saliency`` writes one tissue's maps by one method."""
    return f"{root}/{method}/{tissue}.parquet"


def files_of_method(paths: Sequence[str | os.PathLike[str]], method: str) -> list[str]:
    """The maps files of ``method`` among ``paths`` (laid out as ``maps_path``), in order."""
    chosen = [str(p) for p in paths if os.path.basename(os.path.dirname(p)) == method]
    if not chosen:
        raise ValueError(
            f"no saliency maps of method {method!r}: it is not one of saliency.methods "
            "(or the maps were not computed)"
        )
    return chosen


def _faithfulness_of(
    model: ModelLike,
    expression: ExpressionTable,
    split: str,
    results: Mapping[str, TissueSaliency],
    de_score: np.ndarray,
    seed: int,
) -> pd.DataFrame:
    """One split's deletion curves of every method's ranking (``faithfulness``)."""
    from rnaseq_saliency.faithfulness import DeletionForward, empty_rows, faithfulness_rows

    first = next(iter(results.values()))
    if first.n_samples == 0 or first.tissue not in model.tissues:
        return empty_rows(first.tissue, split, list(results), len(first.gene_ids))
    position = {sample: i for i, sample in enumerate(expression.sample_ids)}
    x = model.scale(expression.matrix[[position[s] for s in first.sample_ids]])
    return faithfulness_rows(
        DeletionForward(model.network),
        x,
        list(model.tissues).index(first.tissue),
        first.tissue,
        split,
        {method: result.mean for method, result in results.items()},
        de_score,
        seed,
    )


def run_tissue_saliency(
    model_dir: str | os.PathLike[str],
    predictions_path: str | os.PathLike[str],
    expression_path: str | os.PathLike[str],
    de_path: str | os.PathLike[str],
    maps_paths: Mapping[str, str | os.PathLike[str]],
    faithfulness_path: str | os.PathLike[str],
    tissue: str,
    settings: SaliencySettings = DEFAULT_SALIENCY,
    threads: int | None = None,
) -> dict[str, TissueSaliency]:
    """The ``saliency`` rule: one model load, then every method of ``maps_paths`` (method ->
    output file): the maps of the evaluated split, written; and the deletion curves of the
    validation and test splits, each ranked and deleted on its own split's samples."""
    import torch

    from rnaseq_saliency.differential import de_ranking_score, de_statistic_of
    from rnaseq_saliency.expression import read_expression
    from rnaseq_saliency.faithfulness import SPLITS, write_faithfulness
    from rnaseq_saliency.model import load_model

    if threads:
        torch.set_num_threads(int(threads))
    model = load_model(model_dir)
    expression = read_expression(expression_path)
    predictions = read_predictions(predictions_path)
    de_score = de_ranking_score(de_statistic_of(de_path, tissue, model.gene_ids), settings.abs)
    curves, evaluated = [], evaluated_split(predictions)
    for split in SPLITS:
        results = {
            method: tissue_saliency(
                model,
                expression,
                predictions,
                tissue,
                method=method,
                abs=settings.abs,
                batch_size=settings.batch_size,
                seed=settings.seed,
                split=split,
                **settings.options_of(method),
            )
            for method in maps_paths
        }
        curves.append(_faithfulness_of(model, expression, split, results, de_score, settings.seed))
        if split == evaluated:
            for method, path in maps_paths.items():
                write_tissue_saliency(path, results[method])
            written = results
    write_faithfulness(faithfulness_path, pd.concat(curves, ignore_index=True))
    return written


# --------------------------------------------------------------------------------------------
# Ranked genes across tissues
# --------------------------------------------------------------------------------------------

TOP_GENES_COLUMNS = ["tissue", "rank", "gene_id", "gene_name", "mean", "sd", "method"]


def rank_genes(scores: np.ndarray) -> np.ndarray:
    """Gene indices by decreasing score; ties keep input order; NaN scores last."""
    keyed = np.where(np.isnan(scores), -np.inf, scores).astype(np.float64)
    return np.argsort(-keyed, kind="stable")


def read_checked_maps(
    path: str | os.PathLike[str], tissue: str, gene_ids: Sequence[str]
) -> TissueSaliency:
    """``read_tissue_saliency``, refusing a file of another tissue or other genes."""
    result = read_tissue_saliency(path)
    if result.tissue != tissue:
        raise ValueError(f"{path}: holds the maps of {result.tissue!r}, expected {tissue!r}")
    if result.gene_ids != list(gene_ids):
        raise ValueError(f"{path}: its genes differ from the selected genes")
    return result


def ranked_block(result: TissueSaliency, ids: np.ndarray, names: np.ndarray) -> pd.DataFrame:
    """One tissue's rows of the top-genes table: every gene by decreasing mean saliency."""
    order = rank_genes(result.mean)
    return pd.DataFrame(
        {
            "tissue": result.tissue,
            "rank": np.arange(1, len(order) + 1),
            "gene_id": ids[order],
            "gene_name": names[order],
            "mean": result.mean[order],
            "sd": result.sd[order],
            "method": str(result.info.get("method", "")),
        }
    )


def assemble_top_genes(
    blocks: Sequence[pd.DataFrame], means: Mapping[str, np.ndarray], gene_ids: Sequence[str]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The tissues' ranked blocks as one table, and their means as the genes x tissues matrix."""
    top = (
        pd.concat(blocks, ignore_index=True)
        if blocks
        else pd.DataFrame({column: [] for column in TOP_GENES_COLUMNS})
    )
    columns = [*TOP_GENES_COLUMNS, *replicate_rank_columns(top)]
    matrix = pd.DataFrame(means, index=pd.Index(list(gene_ids), name="gene_id"), dtype=np.float32)
    return top[columns], matrix


def top_genes_table(
    saliency_files: Sequence[str | os.PathLike[str]],
    tissues: Sequence[str],
    gene_ids: Sequence[str],
    gene_names: Sequence[str],
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every tissue's genes ranked by mean saliency, and the genes x tissues mean matrix.

    Returns ``(top_genes, mean_matrix)``: ``top_genes`` has the columns tissue, rank (1 = most
    salient), gene_id, gene_name, mean, sd, method (the attribution method), all genes of
    each tissue with maps, tissues in ``tissues`` order (a tissue without maps has no rows,
    and a warning is logged);
    ``mean_matrix`` is float32, indexed by gene_id (model input order), one column per tissue
    (NaN for a tissue without maps). With replicate models, ``consensus.consensus_top_genes``
    builds the same table from the consensus, with each replicate's rank beside it.
    """
    if len(saliency_files) != len(tissues):
        raise ValueError(f"{len(saliency_files)} saliency files for {len(tissues)} tissues")
    if len(gene_ids) != len(gene_names):
        raise ValueError("gene_ids and gene_names must have the same length")
    ids = np.asarray(list(gene_ids), dtype=object)
    names = np.asarray(list(gene_names), dtype=object)
    means: dict[str, np.ndarray] = {}
    blocks: list[pd.DataFrame] = []
    for path, tissue in zip(saliency_files, tissues, strict=True):
        result = read_checked_maps(path, tissue, gene_ids)
        means[tissue] = result.mean
        if result.n_samples == 0:
            log.warning("%s: no saliency maps (no correctly classified samples)", tissue)
            continue
        blocks.append(ranked_block(result, ids, names))
    return assemble_top_genes(blocks, means, gene_ids)


# With replicate models (train.replicates > 1), top_genes.tsv has one more column per replicate:
# that replicate's own rank of the gene (rank_replicate_0 is results/model/, the model whose
# maps rule saliency computes); top_genes_per_tissue.tsv adds how many replicates have the gene
# in their own top saliency.top_n.
RANK_COLUMN_PREFIX = "rank_replicate_"
IN_TOP_N_COLUMN = "replicates_in_top_n"


def rank_column(replicate: int) -> str:
    return f"{RANK_COLUMN_PREFIX}{replicate}"


def replicate_rank_columns(top_genes: pd.DataFrame) -> list[str]:
    """The per-replicate rank columns of a top-genes table, replicate 0 first (none: [])."""
    found = [c for c in top_genes.columns if re.fullmatch(rf"{RANK_COLUMN_PREFIX}\d+", str(c))]
    return sorted(found, key=lambda c: int(c.removeprefix(RANK_COLUMN_PREFIX)))


def write_top_genes(path: str | os.PathLike[str], top_genes: pd.DataFrame) -> None:
    with atomic_path(path) as tmp:
        top_genes.to_csv(tmp, sep="\t", index=False, float_format="%.6g")


def read_top_genes(path: str | os.PathLike[str]) -> pd.DataFrame:
    top = pd.read_csv(
        path,
        sep="\t",
        dtype={"tissue": str, "gene_id": str, "gene_name": str, "method": str},
        keep_default_na=False,
        na_values={"mean": ["nan", "NaN", ""], "sd": ["nan", "NaN", ""]},
    )
    missing = [c for c in TOP_GENES_COLUMNS if c not in top.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing}; expected {TOP_GENES_COLUMNS}")
    return top


def top_genes_per_tissue(top_genes: pd.DataFrame, top_n: int) -> pd.DataFrame:
    """The rows of a ``top_genes`` table ranked ``top_n`` or better: each tissue's top genes.

    Row order (tissue, then rank) is kept. This is the table the report and the heatmaps read:
    the full ranking has a row per gene and tissue (about 70 MB for 19,291 genes x 54 tissues).
    With replicate models (``rank_replicate_*`` columns) it adds ``replicates_in_top_n``: the
    number of replicates that rank the gene ``top_n`` or better on their own.
    """
    if top_n < 1:
        raise ValueError(f"config key saliency.top_n: expected >= 1, got {top_n}")
    top = top_genes.loc[top_genes["rank"] <= top_n].reset_index(drop=True)
    ranks = replicate_rank_columns(top)
    if ranks:
        # In how many replicates the consensus top gene is also in that replicate's own top_n.
        top[IN_TOP_N_COLUMN] = (top[ranks] <= top_n).sum(axis=1).astype(np.int64)
    return top


def write_mean_matrix(path: str | os.PathLike[str], matrix: pd.DataFrame) -> None:
    """The genes x tissues mean saliency matrix as Parquet (index gene_id, one column a tissue)."""
    write_gene_matrix(path, matrix)


def read_mean_matrix(path: str | os.PathLike[str]) -> pd.DataFrame:
    return read_gene_matrix(path, "a mean saliency matrix")


def read_ranking_with_genes(
    mean_matrix_path: str | os.PathLike[str], genes_path: str | os.PathLike[str]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The mean saliency matrix (the lists' ranking) and ``selected_genes.tsv``, checked to hold
    the same genes in the same order, for the steps that read a tissue's whole ranking."""
    matrix = read_mean_matrix(mean_matrix_path)
    genes = read_selected_genes(genes_path)
    if matrix.index.tolist() != genes["gene_id"].tolist():
        raise ValueError(f"{mean_matrix_path}: its genes differ from those of {genes_path}")
    return matrix, genes


def run_top_genes(
    maps_files: Sequence[str | os.PathLike[str]],
    tissues: Sequence[str],
    chosen_path: str | os.PathLike[str],
    genes_path: str | os.PathLike[str],
    top_genes_path: str | os.PathLike[str],
    mean_matrix_path: str | os.PathLike[str],
    replicate_files: Sequence[str | os.PathLike[str]] = (),
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The ``top_genes`` rule: rank each tissue's genes by the method of ``chosen_path``
    (``chosen_method.json``) and write the table and the matrix.

    ``replicate_files`` are the maps of replicates 1.. (rule ``replicate_saliency``, by the
    chosen method): with them the ranking and the matrix are the replicates' consensus
    (``rnaseq_saliency.consensus``), and each replicate's own rank is a column; without them
    (``train.replicates: 1``) the table is replicate 0's, as it always was.
    """
    from rnaseq_saliency.faithfulness import read_chosen_method

    method = read_chosen_method(chosen_path)
    genes = read_selected_genes(genes_path)
    gene_ids, gene_names = genes["gene_id"].tolist(), genes["gene_name"].tolist()
    files = files_of_method(maps_files, method)
    if replicate_files:
        from rnaseq_saliency.consensus import consensus_top_genes, files_by_replicate

        by_replicate = [files, *files_by_replicate(replicate_files, tissues)]
        top, matrix = consensus_top_genes(by_replicate, tissues, gene_ids, gene_names)
    else:
        top, matrix = top_genes_table(files, tissues, gene_ids, gene_names)
    write_top_genes(top_genes_path, top)
    write_mean_matrix(mean_matrix_path, matrix)
    log.info(
        "ranked %d genes for %d tissue(s) with %s maps",
        len(gene_ids),
        top["tissue"].nunique(),
        method,
    )
    return top, matrix


def run_top_genes_per_tissue(
    top_genes_path: str | os.PathLike[str], top_n: int, out_path: str | os.PathLike[str]
) -> pd.DataFrame:
    """The ``top_genes_per_tissue`` rule: cut the full ranking to each tissue's top genes."""
    table = top_genes_per_tissue(read_top_genes(top_genes_path), top_n)
    write_top_genes(out_path, table)
    log.info("top %d genes of %d tissue(s) written", top_n, table["tissue"].nunique())
    return table
