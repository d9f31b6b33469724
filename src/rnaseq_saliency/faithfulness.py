"""Does a saliency ranking say what the model uses? Deletion curves, AOPC and the method choice.

For one tissue and one split (``val`` or ``test``), over the tissue's correctly classified
samples of that split: rank genes by their mean attribution over those same samples, set the
top-k genes to the baseline (0 in scaled space, i.e. each gene's training mean) for every k of
``K_GRID`` (capped at the number of genes), and record the mean drop, from the intact input, of

- the **logit margin** (true-class logit minus the best other logit; the primary measure: a
  softmax probability saturates near 1 and ignores a shift of all logits),
- the true-class logit, and
- its log-probability.

The same is done for ``N_RANDOM_DRAWS`` random k-gene sets (seeded; nested over k) and for the
genes ranked by the training split's one-vs-rest t statistic (``differential``), the ranking a
biologist would use without a model.

A curve's summary is its **AOPC**, the area over the perturbation curve: the mean margin drop
over the k grid (Samek et al. 2017). The ``aopc_ratio`` divides it by the random curve's AOPC,
floored at ``RANDOM_AOPC_FLOOR`` logits so that a random curve near 0 cannot inflate it.

``saliency.method: auto`` picks the method with the highest median, over tissues, of the
*validation* split's margin AOPC (``choose_method`` reads only ``split == "val"`` rows, whose
rankings and deletions both used validation samples); a method within ``AUTO_TOLERANCE``
(relative) of the best counts as tied, and ties go to the cheaper method (``COST_ORDER``).
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from rnaseq_saliency.fileio import atomic_path
from rnaseq_saliency.tissues import tissue_seed

log = logging.getLogger(__name__)

K_GRID = (1, 2, 5, 10, 20, 50, 100, 200, 500)
N_RANDOM_DRAWS = 10
# Logits. A random curve's AOPC below this is treated as this in aopc_ratio.
RANDOM_AOPC_FLOOR = 0.01
# Relative: a method whose median AOPC is within 5% of the best one's is tied with it.
AUTO_TOLERANCE = 0.05
# Cheapest first: one backward pass; the same times the input; nt_samples passes; n_steps passes.
COST_ORDER = ("gradient", "input_x_gradient", "smoothgrad", "integrated_gradients")
SPLITS = ("val", "test")
FAITHFULNESS_COLUMNS = [
    "tissue",
    "method",
    "split",
    "k",
    "n_samples",
    "margin_drop",
    "logit_drop",
    "log_prob_drop",
    "random_margin_drop",
    "de_margin_drop",
]
AOPC_COLUMNS = ["tissue", "method", "split", "aopc", "random_aopc", "de_aopc", "aopc_ratio"]
_MEASURES = ("margin", "logit", "log_prob")
_FORWARD_BATCH = 8192


def k_grid(n_genes: int) -> list[int]:
    """``K_GRID`` capped at ``n_genes``, without repeats."""
    return sorted({min(k, n_genes) for k in K_GRID if n_genes > 0})


class DeletionForward:
    """The network's logits with sets of genes replaced by 0 (the training mean), batched.

    When the network starts with a ``Linear`` layer (``model.network_from_architecture``), a
    deleted gene only removes its column's contribution from the first layer's output, so the
    deletions of a ranking's nested top-k sets cost one small matrix product per step of the
    k grid instead of a full forward pass of all genes each. Other networks get real masked
    inputs. Both give the same logits (``tests/test_faithfulness.py``).
    """

    def __init__(self, network: Any) -> None:
        import torch

        self.network = network
        layers = list(network.children()) if isinstance(network, torch.nn.Sequential) else []
        self.fast = bool(layers) and isinstance(layers[0], torch.nn.Linear)
        if self.fast:
            self.first = layers[0]
            self.rest = torch.nn.Sequential(*layers[1:])

    def logits(self, x: np.ndarray, orders: np.ndarray, ks: Sequence[int]) -> np.ndarray:
        """Logits (n_orders, len(ks), n_samples, n_classes) with each order's top-k genes
        deleted; ``x`` is the scaled input (n_samples, n_genes)."""
        import torch

        from rnaseq_saliency.saliency import frozen

        with frozen(self.network), torch.no_grad():
            device = next(self.network.parameters()).device
            inputs = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(device)
            if self.fast:
                hidden = self._first_layer(inputs, orders, ks)
                flat = hidden.reshape(-1, hidden.shape[-1])
                out = torch.cat([self.rest(b) for b in flat.split(_FORWARD_BATCH)])
            else:
                out = torch.stack([self._masked(inputs, order, ks) for order in orders])
            return out.reshape(len(orders), len(ks), x.shape[0], -1).cpu().numpy()

    def intact(self, x: np.ndarray) -> np.ndarray:
        return self.logits(x, np.zeros((1, 0), dtype=np.int64), [0])[0, 0]

    def _first_layer(self, inputs: Any, orders: np.ndarray, ks: Sequence[int]) -> Any:
        import torch

        weight = self.first.weight  # (hidden, genes)
        start = inputs @ weight.T + self.first.bias
        steps = []
        for order in orders:
            removed = torch.zeros_like(start)
            done = 0
            for k in ks:
                block = torch.from_numpy(np.asarray(order[done:k])).to(inputs.device)
                removed = removed + inputs[:, block] @ weight[:, block].T
                done = k
                steps.append(start - removed)
        return torch.stack(steps)

    def _masked(self, inputs: Any, order: np.ndarray, ks: Sequence[int]) -> Any:
        import torch

        rows = []
        for k in ks:
            masked = inputs.clone()
            masked[:, torch.from_numpy(np.asarray(order[:k]))] = 0.0
            rows.append(self.network(masked))
        return torch.stack(rows)


def _measures(logits: np.ndarray, target: int) -> dict[str, np.ndarray]:
    """Margin, true-class logit and its log-probability of logits (..., n_classes)."""
    values = logits.astype(np.float64)
    others = np.delete(values, target, axis=-1)
    best_other = others.max(axis=-1) if others.shape[-1] else np.zeros(values.shape[:-1])
    top = values.max(axis=-1, keepdims=True)
    log_norm = top[..., 0] + np.log(np.exp(values - top).sum(axis=-1))
    true = values[..., target]
    return {"margin": true - best_other, "logit": true, "log_prob": true - log_norm}


def drop_curves(
    forward: DeletionForward, x: np.ndarray, target: int, orders: np.ndarray, ks: Sequence[int]
) -> dict[str, np.ndarray]:
    """Mean drop over samples of each measure, per order and k: arrays (n_orders, len(ks))."""
    base = _measures(forward.intact(x), target)
    deleted = _measures(forward.logits(x, orders, ks), target)
    return {m: (base[m][None, None, :] - deleted[m]).mean(axis=-1) for m in _MEASURES}


def random_orders(n_genes: int, k_max: int, seed: int, tissue: str) -> np.ndarray:
    """``N_RANDOM_DRAWS`` random gene orders (their first ``k_max`` genes), seeded per tissue."""
    rng = np.random.default_rng(tissue_seed(seed, tissue))
    return np.stack([rng.permutation(n_genes)[:k_max] for _ in range(N_RANDOM_DRAWS)])


def faithfulness_rows(
    forward: DeletionForward,
    x: np.ndarray,
    target: int,
    tissue: str,
    split: str,
    mean_maps: Mapping[str, np.ndarray],
    de_score: np.ndarray,
    seed: int,
) -> pd.DataFrame:
    """The faithfulness rows of one tissue and split: every method of ``mean_maps`` (its mean
    attribution over the samples ``x``) at every k, with the random and DE curves beside."""
    from rnaseq_saliency.saliency import rank_genes

    n_samples, n_genes = x.shape
    ks = k_grid(n_genes)
    if n_samples == 0:
        return empty_rows(tissue, split, list(mean_maps), n_genes)
    k_max = ks[-1]
    orders = np.stack([rank_genes(mean)[:k_max] for mean in mean_maps.values()])
    de_order = rank_genes(np.asarray(de_score, dtype=np.float64))[:k_max]
    shuffled = random_orders(n_genes, k_max, seed, tissue)
    curves = drop_curves(forward, x, target, np.concatenate([orders, [de_order], shuffled]), ks)
    n_methods = len(mean_maps)
    random_margin = curves["margin"][n_methods + 1 :].mean(axis=0)
    de_defined = np.isfinite(de_score).any()
    rows = [
        {
            "tissue": tissue,
            "method": method,
            "split": split,
            "k": k,
            "n_samples": n_samples,
            "margin_drop": curves["margin"][i, j],
            "logit_drop": curves["logit"][i, j],
            "log_prob_drop": curves["log_prob"][i, j],
            "random_margin_drop": random_margin[j],
            "de_margin_drop": curves["margin"][n_methods, j] if de_defined else math.nan,
        }
        for i, method in enumerate(mean_maps)
        for j, k in enumerate(ks)
    ]
    return pd.DataFrame(rows, columns=FAITHFULNESS_COLUMNS)


def empty_rows(tissue: str, split: str, methods: Sequence[str], n_genes: int) -> pd.DataFrame:
    """NaN rows (n_samples 0) for a tissue and split without correctly classified samples."""
    rows = [
        {"tissue": tissue, "method": m, "split": split, "k": k, "n_samples": 0}
        for m in methods
        for k in k_grid(n_genes)
    ]
    return pd.DataFrame(rows, columns=FAITHFULNESS_COLUMNS)


def aopc_table(faithfulness: pd.DataFrame) -> pd.DataFrame:
    """Per tissue, method and split: the AOPC of the method's, the random and the DE margin
    curves, and ``aopc_ratio`` (the method's over the random one's, floored)."""
    grouped = faithfulness.groupby(["tissue", "method", "split"], sort=False)
    table = grouped.agg(
        aopc=("margin_drop", "mean"),
        random_aopc=("random_margin_drop", "mean"),
        de_aopc=("de_margin_drop", "mean"),
    ).reset_index()
    table["aopc_ratio"] = table["aopc"] / table["random_aopc"].clip(lower=RANDOM_AOPC_FLOOR)
    return table[AOPC_COLUMNS]


def median_aopc(aopc: pd.DataFrame, split: str) -> pd.DataFrame:
    """Per method, medians over tissues (NaN skipped) of one split's AOPC and ratio."""
    rows = aopc.loc[aopc["split"] == split]
    return rows.groupby("method", sort=False)[["aopc", "aopc_ratio"]].median()


def choose_method(
    faithfulness: pd.DataFrame, methods: Sequence[str], tolerance: float = AUTO_TOLERANCE
) -> tuple[str, dict[str, Any]]:
    """The method ``auto`` picks, and the numbers behind it. Reads validation rows only."""
    medians = median_aopc(aopc_table(faithfulness), "val").reindex(list(methods))
    scores = medians["aopc"]
    if scores.isna().all():
        raise ValueError(
            "saliency.method auto: no tissue has correctly classified validation samples, so "
            "no method can be chosen; set saliency.method to one of "
            f"{list(methods)} or keep more validation samples (split.val_fraction)"
        )
    best = float(scores.max())
    tied = [m for m in methods if scores[m] >= best - tolerance * abs(best)]
    cost = {m: i for i, m in enumerate(COST_ORDER)}
    method = min(tied, key=lambda m: cost.get(m, len(cost)))
    details = {
        "criterion": "highest median over tissues of the validation-split margin AOPC",
        "tolerance": tolerance,
        "tied": tied,
        "cost_order": list(COST_ORDER),
        "val_margin_aopc": _finite(scores),
        "val_aopc_ratio": _finite(medians["aopc_ratio"]),
    }
    return method, details


def _finite(values: pd.Series) -> dict[str, float | None]:
    """JSON-safe: NaN becomes null."""
    return {str(k): (float(v) if np.isfinite(v) else None) for k, v in values.items()}


def write_faithfulness(path: str | os.PathLike[str], table: pd.DataFrame) -> None:
    with atomic_path(path) as tmp:
        table[FAITHFULNESS_COLUMNS].to_csv(
            tmp, sep="\t", index=False, float_format="%.6g", na_rep="NA"
        )


def read_faithfulness(path: str | os.PathLike[str]) -> pd.DataFrame:
    table = pd.read_csv(path, sep="\t", dtype={"tissue": str, "method": str, "split": str})
    missing = [c for c in FAITHFULNESS_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing}; expected {FAITHFULNESS_COLUMNS}")
    return table


def write_chosen_method(path: str | os.PathLike[str], chosen: dict[str, Any]) -> None:
    with atomic_path(path) as tmp, open(tmp, "w") as handle:
        json.dump(chosen, handle, indent=2, sort_keys=True)
        handle.write("\n")


def read_chosen_method(path: str | os.PathLike[str]) -> str:
    """The method named by a ``chosen_method.json``."""
    with open(path) as handle:
        try:
            chosen = json.load(handle)
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}: not JSON ({error})") from error
    if not isinstance(chosen, dict) or not isinstance(chosen.get("method"), str):
        raise ValueError(f'{path}: expected a JSON object with a "method" string')
    return chosen["method"]


def run_choose_method(
    faithfulness_files: Sequence[str | os.PathLike[str]],
    methods: Sequence[str],
    method: str,
    faithfulness_path: str | os.PathLike[str],
    chosen_path: str | os.PathLike[str],
) -> str:
    """The ``choose_method`` rule: gather the tissues' curves, pick (or take the forced)
    method, write faithfulness.tsv and chosen_method.json."""
    table = pd.concat([read_faithfulness(p) for p in faithfulness_files], ignore_index=True)
    write_faithfulness(faithfulness_path, table)
    if method == "auto":
        chosen, details = choose_method(table, methods)
    else:
        medians = median_aopc(aopc_table(table), "val").reindex(list(methods))
        chosen, details = (
            method,
            {
                "val_margin_aopc": _finite(medians["aopc"]),
                "val_aopc_ratio": _finite(medians["aopc_ratio"]),
            },
        )
    record = {"method": chosen, "mode": method if method == "auto" else "forced", **details}
    write_chosen_method(chosen_path, record)
    log.info(
        "saliency method %s (%s); median validation margin AOPC per method: %s",
        chosen,
        record["mode"],
        ", ".join(f"{m} {v:.3g}" for m, v in details["val_margin_aopc"].items() if v is not None),
    )
    return chosen
