"""Hyper-parameter sweeps: many training runs side by side, the best chosen on validation only.

The ``sweep`` config section lists values for some of ``SWEEP_KEYS``. Every combination of them
(or ``sweep.samples`` combinations drawn at random from that grid) is one training run with the
combination's values put over the base configuration. The workflow (workflow/rules/sweep.smk)
turns the table of combinations into a Snakemake ``Paramspace``, so each run is its own set of
file targets under ``results/sweep/<column~value/...>/``; adding a value to one list adds runs
and leaves the existing ones alone.

Runs are compared by their **validation** macro-F1 only (``summary.tsv``); the test set is used
once, for the best run, after the choice is made (``evaluate_best_run``).
"""

from __future__ import annotations

import copy
import itertools
import json
import logging
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
import yaml

from rnaseq_saliency.fileio import atomic_path

log = logging.getLogger(__name__)

# Dotted config key -> Paramspace column, which is also the wildcard name and the directory
# prefix in results/sweep/. The order fixes the directory nesting, whatever the YAML order.
SWEEP_KEYS: dict[str, str] = {
    "model.hidden": "hidden",
    "model.dropout": "dropout",
    "model.activation": "activation",
    "train.lr": "lr",
    "train.batch_size": "batch_size",
    "train.weight_decay": "weight_decay",
    "augment.method": "augment_method",
    "augment.min_samples": "augment_min_samples",
}
COLUMN_KEYS = {column: key for key, column in SWEEP_KEYS.items()}
# Keys whose values change the augmented training files: a run that sweeps them needs its own.
AUGMENT_KEYS = ("augment.method", "augment.min_samples")
_FLOAT_KEYS = frozenset({"model.dropout", "train.lr", "train.weight_decay"})
_INT_KEYS = frozenset({"train.batch_size", "augment.min_samples"})
_ARCHITECTURE_KEYS = ("model.hidden", "model.dropout", "model.activation")
METRICS = ("macro_f1", "accuracy", "loss", "weighted_f1", "balanced_accuracy")
SUMMARY_FIXED = ["rank", "run"]
SUMMARY_METRICS = [
    "val_macro_f1",
    "val_accuracy",
    "val_loss",
    "val_weighted_f1",
    "val_balanced_accuracy",
    "n_val_samples",
    "best_epoch",
    "epochs_run",
]

Combination = dict[str, Any]  # dotted config key -> config value, e.g. {"train.lr": 0.001}


# ----------------------------------------------------------------------------- combinations


def swept_values(sweep_cfg: Mapping[str, Any]) -> dict[str, list[Any]]:
    """The non-empty value lists of the ``sweep`` section, by dotted key in ``SWEEP_KEYS`` order."""
    values: dict[str, list[Any]] = {}
    for key in SWEEP_KEYS:
        section, name = key.split(".")
        listed = list((sweep_cfg.get(section) or {}).get(name) or [])
        if listed:
            values[key] = listed
    return values


def grid_combinations(values: Mapping[str, Sequence[Any]]) -> list[Combination]:
    """Every combination of the value lists, the last key varying fastest."""
    keys = list(values)
    return [dict(zip(keys, chosen, strict=True)) for chosen in itertools.product(*values.values())]


def random_combinations(
    values: Mapping[str, Sequence[Any]], n: int, seed: int
) -> list[Combination]:
    """``n`` distinct combinations drawn at random from the grid of ``values``.

    Each draw picks one value per key, and a combination drawn before is skipped. The draws
    depend only on ``seed`` and the list lengths, so raising ``n`` keeps the runs drawn before
    (their results are reused), and the grid is never built in memory.
    """
    keys = list(values)
    sizes = [len(values[key]) for key in keys]
    total = math.prod(sizes)
    if n < 1:
        raise ValueError(f"config key sweep.samples: expected >= 1 random combinations, got {n}")
    if n > total:
        raise ValueError(
            f"config key sweep.samples: {n} random combinations asked for, but the lists give "
            f"only {total}; lower sweep.samples, or set it to 0 for the whole grid"
        )
    rng = np.random.default_rng(seed)
    seen: set[tuple[int, ...]] = set()
    drawn: list[Combination] = []
    while len(drawn) < n:
        index = tuple(int(rng.integers(size)) for size in sizes)
        if index in seen:
            continue
        seen.add(index)
        drawn.append({key: values[key][i] for key, i in zip(keys, index, strict=True)})
    return drawn


def sweep_combinations(
    sweep_cfg: Mapping[str, Any], base_config: Mapping[str, Any]
) -> list[Combination]:
    """The runs of an enabled sweep: the grid, or ``sweep.samples`` random combinations."""
    values = swept_values(sweep_cfg)
    if not values:
        listed = ", ".join(f"sweep.{key}" for key in SWEEP_KEYS)
        raise ValueError(
            f"config key sweep.enabled: true, but no value list is given; fill one of {listed}"
        )
    if base_config["model"]["preset"] == "original":
        architecture = [key for key in _ARCHITECTURE_KEYS if key in values]
        if architecture:
            raise ValueError(
                f"config key sweep.{architecture[0]}: model.preset is 'original', which ignores "
                "model.hidden, model.dropout and model.activation; sweep them with "
                "model.preset: default"
            )
    samples = int(sweep_cfg.get("samples") or 0)
    if samples:
        return random_combinations(values, samples, int(sweep_cfg.get("seed") or 0))
    return grid_combinations(values)


# ----------------------------------------------------------------------------- values and table


def encode_value(key: str, value: Any) -> Any:
    """A config value as it appears in the paramspace table and in paths: ``[64, 32, 16]`` ->
    ``"64-32-16"``; numbers as float or int by key; words as str."""
    if key == "model.hidden":
        return "-".join(str(int(width)) for width in value)
    if key in _FLOAT_KEYS:
        return float(value)
    if key in _INT_KEYS:
        return int(value)
    return str(value)


def decode_value(key: str, value: Any) -> Any:
    """The config value (plain Python types, never numpy) of a table cell or wildcard string."""
    if key == "model.hidden":
        return [int(width) for width in str(value).split("-")]
    if key in _FLOAT_KEYS:
        return float(value)
    if key in _INT_KEYS:
        return int(value)
    return str(value)


def paramspace_table(combinations: Sequence[Combination]) -> pd.DataFrame:
    """One row per run, one column per swept key (named by ``SWEEP_KEYS``), for ``Paramspace``.

    Columns are typed by key (float, int, str) so a value is written the same way in every path
    and ``Paramspace.instance`` reads it back with the right type.
    """
    if not combinations:
        raise ValueError("a sweep needs at least one combination")
    keys = [key for key in SWEEP_KEYS if key in combinations[0]]
    for combination in combinations:
        if set(combination) != set(keys):
            raise ValueError(f"combinations differ in their keys: {sorted(combination)} vs {keys}")
    columns = {}
    for key in keys:
        cells = [encode_value(key, combination[key]) for combination in combinations]
        dtype = "float64" if key in _FLOAT_KEYS else "int64" if key in _INT_KEYS else object
        columns[SWEEP_KEYS[key]] = pd.Series(cells, dtype=dtype)
    table = pd.DataFrame(columns)
    if table.duplicated().any():
        raise ValueError("the sweep has repeated combinations; remove repeated list values")
    return table


def combination_from_instance(instance: Mapping[str, Any]) -> Combination:
    """A ``Paramspace.instance(wildcards)`` (column -> value) as a combination of config values."""
    unknown = sorted(set(instance) - set(COLUMN_KEYS))
    if unknown:
        raise ValueError(f"not sweep columns: {unknown}; known: {sorted(COLUMN_KEYS)}")
    combination = {
        COLUMN_KEYS[column]: decode_value(COLUMN_KEYS[column], value)
        for column, value in instance.items()
    }
    return {key: combination[key] for key in SWEEP_KEYS if key in combination}


def augment_columns(table: pd.DataFrame) -> list[str]:
    """The table's columns that change augmentation (runs that differ there need own files)."""
    return [SWEEP_KEYS[key] for key in AUGMENT_KEYS if SWEEP_KEYS[key] in table.columns]


def value_order(combinations: Sequence[Combination]) -> dict[str, list[Any]]:
    """Each swept key's encoded values in order of first appearance (the config's list order
    for a grid), for the figure's axes."""
    order: dict[str, list[Any]] = {}
    for combination in combinations:
        for key, value in combination.items():
            cell = encode_value(key, value)
            if cell not in order.setdefault(key, []):
                order[key].append(cell)
    return order


def _label(value: Any) -> str:
    """An encoded value as text, as Paramspace writes it into paths (``str``)."""
    return str(value)


def _typed(key: str, cell: Any) -> Any:
    """A summary cell or encoded value with the key's type, so ``0.0010`` and ``0.001`` match."""
    if key in _FLOAT_KEYS:
        return float(cell)
    if key in _INT_KEYS:
        return int(cell)
    return str(cell)


def merge_combination(config: Mapping[str, Any], combination: Combination) -> dict[str, Any]:
    """A deep copy of ``config`` with the combination's values put over it."""
    merged = copy.deepcopy(dict(config))
    for key, value in combination.items():
        if key not in SWEEP_KEYS:
            raise ValueError(f"{key!r} is not a sweep key; known: {list(SWEEP_KEYS)}")
        section, name = key.split(".")
        merged.setdefault(section, {})[name] = copy.deepcopy(value)
    return merged


# ----------------------------------------------------------------------------- workflow plan

# The sweep's final files (rule all asks for them when sweep.enabled).
SWEEP_TARGETS = (
    "results/sweep/summary.tsv",
    "results/sweep/best_config.yaml",
    "results/sweep/validation_f1.png",
    "results/sweep/best/evaluation/summary.json",
)
AUGMENTED_TEMPLATE = "results/sweep/augmented/{augment}/{tissue}.parquet"


def train_resources(n_runs: int, device: str, cores: int | None) -> tuple[int, int]:
    """``(gpu, threads)`` of one training run.

    A ``cpu`` run never touches a GPU, so it does not hold the ``gpu`` resource, and the cores
    are shared out so that up to ``cores`` runs train side by side. Any other device may be a
    GPU: the run holds ``gpu=1`` (with ``--resources gpu=1`` one run at a time trains) and, as
    it runs alone, takes every core, as rule ``train`` does.
    """
    cores = max(1, int(cores or 1))
    if device != "cpu":
        return 1, cores
    return 0, max(1, cores // max(1, min(n_runs, cores)))


class SweepPlan:
    """The runs of an enabled sweep, as workflow/rules/sweep.smk needs them.

    ``space`` is the Snakemake ``Paramspace`` over the combinations (one column per swept key);
    ``runs`` are its instance patterns (``lr~0.001/augment_min_samples~40``), each run's path
    below results/sweep/. Where augment keys are swept, ``augment_space`` is the Paramspace of
    their distinct values: runs that share them share augmented files. Methods that take
    ``wildcards`` serve as input and params functions.
    """

    def __init__(
        self,
        config: Mapping[str, Any],
        tissues: Sequence[str],
        shared_augmented: Sequence[str],
        training_sections: Sequence[str] = ("data", "demo", "split", "augment", "model", "train"),
    ) -> None:
        from snakemake.utils import Paramspace

        self.config = config
        self.tissues = list(tissues)
        self.shared_augmented = list(shared_augmented)
        self.training_sections = tuple(training_sections)
        self.combinations = sweep_combinations(config["sweep"], config)
        self.table = paramspace_table(self.combinations)
        self.space = Paramspace(self.table)
        self.runs: list[str] = list(self.space.instance_patterns)
        self.augment_columns = augment_columns(self.table)
        self.augment_space = None
        self._augment_of_run: dict[str, str] = {}
        if self.augment_columns:
            augment_table = self.table[self.augment_columns]
            self.augment_space = Paramspace(augment_table.drop_duplicates().reset_index(drop=True))
            self._augment_of_run = dict(
                zip(self.runs, Paramspace(augment_table).instance_patterns, strict=True)
            )

    @property
    def pattern(self) -> str:
        """The runs' wildcard pattern, e.g. ``lr~{lr}/dropout~{dropout}``."""
        return str(self.space.wildcard_pattern)

    @property
    def augment_pattern(self) -> str:
        if self.augment_space is None:
            raise ValueError("no augment key is swept: the runs share results/augmented/")
        return str(self.augment_space.wildcard_pattern)

    @property
    def wildcard_constraints(self) -> dict[str, str]:
        """Each column's wildcard matches within one directory level."""
        return {str(column): "[^/]+" for column in self.table.columns}

    def run(self, wildcards: Mapping[str, Any]) -> str:
        """The run of a job's wildcards (its path below results/sweep/)."""
        values = dict(wildcards.items())
        return self.pattern.format(**{column: values[column] for column in self.table.columns})

    def combination(self, wildcards: Mapping[str, Any]) -> Combination:
        """The run's swept values by dotted config key, as plain config values."""
        return combination_from_instance(self.space.instance(dict(wildcards.items())))

    def run_config(self, wildcards: Mapping[str, Any]) -> dict[str, Any]:
        """The training sections of the config with the run's values put over them."""
        base = {key: self.config[key] for key in self.training_sections}
        return merge_combination(base, self.combination(wildcards))

    def augmented_of(self, run: str) -> list[str]:
        """The augmented training files of a run: shared unless augment keys are swept."""
        if not self.augment_columns:
            return list(self.shared_augmented)
        augment = self._augment_of_run[run]
        return [AUGMENTED_TEMPLATE.format(augment=augment, tissue=t) for t in self.tissues]

    def augmented_files(self, wildcards: Mapping[str, Any]) -> list[str]:
        return self.augmented_of(self.run(wildcards))

    def all_augmented_files(self) -> list[str]:
        """Every run's augmented files, each once, in run order."""
        return list(dict.fromkeys(f for run in self.runs for f in self.augmented_of(run)))

    def augment_settings(self, wildcards: Mapping[str, Any]) -> dict[str, Any]:
        """The ``augment`` section for augmented files of the swept augment values."""
        if self.augment_space is None:
            raise ValueError("no augment key is swept: the runs share results/augmented/")
        combination = combination_from_instance(
            self.augment_space.instance(dict(wildcards.items()))
        )
        return merge_combination({"augment": self.config["augment"]}, combination)["augment"]

    def evaluation_inputs(self, model_dir: str = "results/sweep/{run}/model") -> dict[str, Any]:
        """Per run: its model directory and augmented files, for ``evaluate_best_run``."""
        return {
            run: {"model_dir": model_dir.format(run=run), "augmented": self.augmented_of(run)}
            for run in self.runs
        }

    def value_order(self) -> dict[str, list[Any]]:
        return value_order(self.combinations)


# ----------------------------------------------------------------------------- validation


class SweepClassifier(Protocol):
    """What validation needs of ``rnaseq_saliency.model.TrainedModel``."""

    tissues: list[str]
    gene_ids: list[str]
    network: Any
    metadata: dict[str, Any]

    def scale(self, raw: np.ndarray) -> np.ndarray: ...

    def predict_proba(self, raw: np.ndarray) -> np.ndarray: ...

    def logits(self, raw: np.ndarray) -> np.ndarray: ...


def mean_cross_entropy(logits: np.ndarray, true_index: np.ndarray) -> float:
    """Mean of -log softmax(logits)[true class], computed stably from the logits."""
    logits = np.asarray(logits, dtype=np.float64)
    if logits.shape[0] != len(true_index) or logits.shape[0] == 0:
        raise ValueError(f"{logits.shape[0]} rows of logits for {len(true_index)} labels")
    peak = logits.max(axis=1, keepdims=True)
    log_norm = np.log(np.exp(logits - peak).sum(axis=1)) + peak[:, 0]
    return float(np.mean(log_norm - logits[np.arange(len(true_index)), true_index]))


def validation_metrics(
    model: SweepClassifier,
    expression_files: Sequence[str | os.PathLike[str]],
    samples_tsv: str | os.PathLike[str],
) -> dict[str, Any]:
    """Macro-F1, accuracy, weighted F1, balanced accuracy and mean cross-entropy of ``model``
    on the real **validation** samples of ``samples_tsv``; no test sample is read.

    The loss is the unweighted cross-entropy, comparable between runs whatever their
    ``train.class_balance``.
    """
    from rnaseq_saliency.datasets import load_split_rows, read_samples
    from rnaseq_saliency.evaluate import (
        classification_report_table,
        predictions_table,
        report_metrics,
    )

    samples = read_samples(samples_tsv)
    rows = load_split_rows(expression_files, samples, "val")
    if not rows.sample_ids:
        raise ValueError(
            f"{samples_tsv}: no validation samples; a sweep chooses its best run on the "
            "validation split, so set split.val_fraction above 0"
        )
    predictions = predictions_table(model, {"val": rows})
    labels = list(model.tissues)
    report = classification_report_table(
        predictions["tissue"].tolist(), predictions["predicted"].tolist(), labels
    )
    index = {tissue: i for i, tissue in enumerate(labels)}
    true_index = np.asarray([index[tissue] for tissue in rows.tissues], dtype=np.int64)
    metrics: dict[str, Any] = dict(report_metrics(report))
    metrics["loss"] = mean_cross_entropy(model.logits(rows.matrix), true_index)
    metrics["n_samples"] = len(rows.sample_ids)
    return metrics


def write_run_validation(
    model_dir: str | os.PathLike[str],
    expression_files: Sequence[str | os.PathLike[str]],
    samples_tsv: str | os.PathLike[str],
    run: str,
    combination: Combination,
    out_json: str | os.PathLike[str],
) -> dict[str, Any]:
    """Rule ``sweep_validate``: one run's validation metrics and values as JSON."""
    from rnaseq_saliency.model import load_model

    model = load_model(model_dir)
    metrics = validation_metrics(model, expression_files, samples_tsv)
    training = model.metadata.get("training", {})
    record = {
        "run": run,
        "params": dict(combination),
        "split": "val",
        "metrics": metrics,
        "best_epoch": training.get("best_epoch"),
        "epochs_run": training.get("epochs_run"),
    }
    with atomic_path(out_json) as tmp:
        tmp.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    log.info(
        "run %s: validation macro-F1 %.4f, accuracy %.4f, loss %.4f (%d samples)",
        run,
        metrics["macro_f1"],
        metrics["accuracy"],
        metrics["loss"],
        metrics["n_samples"],
    )
    return record


# ----------------------------------------------------------------------------- summary


def read_validation(path: str | os.PathLike[str]) -> dict[str, Any]:
    """One run's validation.json, checked."""
    record = json.loads(Path(path).read_text(encoding="utf-8"))
    missing = [key for key in ("run", "params", "metrics") if key not in record]
    if missing:
        raise ValueError(f"{path}: missing key(s) {missing}; not a sweep validation file")
    return record


def summary_table(records: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per run, best first: by validation macro-F1, then lower validation loss, then
    run name (so ties always rank the same way). ``rank`` starts at 1.

    Parameter columns are named by dotted key and hold the value as text (hidden as
    ``64-32-16``), as in the run's path.
    """
    if not records:
        raise ValueError("no sweep runs to summarise")
    keys = [key for key in SWEEP_KEYS if key in records[0]["params"]]
    rows = []
    for record in records:
        if set(record["params"]) != set(keys):
            raise ValueError(
                f"run {record['run']}: swept keys {sorted(record['params'])} differ from {keys}"
            )
        metrics = record["metrics"]
        row: dict[str, Any] = {"run": record["run"]}
        # Text, so that the TSV holds every digit of a value (metrics are rounded on writing).
        row.update({key: _label(encode_value(key, record["params"][key])) for key in keys})
        row.update({f"val_{name}": float(metrics[name]) for name in METRICS})
        row["n_val_samples"] = int(metrics["n_samples"])
        row["best_epoch"] = record.get("best_epoch")
        row["epochs_run"] = record.get("epochs_run")
        rows.append(row)
    table = pd.DataFrame(rows)
    if table["run"].duplicated().any():
        raise ValueError(f"runs repeat: {sorted(table.loc[table['run'].duplicated(), 'run'])}")
    table = table.sort_values(
        ["val_macro_f1", "val_loss", "run"], ascending=[False, True, True], kind="mergesort"
    ).reset_index(drop=True)
    table.insert(0, "rank", np.arange(1, len(table) + 1))
    return table[[*SUMMARY_FIXED, *keys, *SUMMARY_METRICS]]


def best_config(base_config: Mapping[str, Any], combination: Combination) -> dict[str, Any]:
    """The configuration of the best run: the training sections of the base config with the
    combination put over them, and ``sweep.enabled: false`` so that using it trains that one
    model rather than the sweep again."""
    merged = merge_combination(base_config, combination)
    merged["sweep"] = {"enabled": False}
    return merged


def write_summary(
    validation_files: Sequence[str | os.PathLike[str]],
    base_config: Mapping[str, Any],
    summary_tsv: str | os.PathLike[str],
    best_config_yaml: str | os.PathLike[str],
) -> pd.DataFrame:
    """Rule ``sweep_summary``: rank the runs by validation macro-F1; write the best run's config."""
    records = [read_validation(path) for path in validation_files]
    table = summary_table(records)
    with atomic_path(summary_tsv) as tmp:
        table.to_csv(tmp, sep="\t", index=False, float_format="%.6g", lineterminator="\n")
    best_run = str(table.loc[0, "run"])
    best = next(record for record in records if record["run"] == best_run)
    config = best_config(base_config, best["params"])
    header = (
        f"# Best run of the hyper-parameter sweep: {best_run}\n"
        f"# validation macro-F1 {table.loc[0, 'val_macro_f1']:.4f}, accuracy "
        f"{table.loc[0, 'val_accuracy']:.4f}, loss {table.loc[0, 'val_loss']:.4f} "
        f"({len(table)} runs, ranked in results/sweep/summary.tsv).\n"
        "# Chosen on the validation split only; its test-set evaluation is in\n"
        "# results/sweep/best/evaluation/. Train the main model with these values:\n"
        "#   snakemake --cores N --configfile config/config.yaml results/sweep/best_config.yaml\n"
    )
    with atomic_path(best_config_yaml) as tmp:
        tmp.write_text(
            header + yaml.safe_dump(config, sort_keys=False),
            encoding="utf-8",
        )
    log.info(
        "%d runs; best %s with validation macro-F1 %.4f",
        len(table),
        best_run,
        table.loc[0, "val_macro_f1"],
    )
    return table


def read_summary(path: str | os.PathLike[str]) -> pd.DataFrame:
    """summary.tsv, checked; parameter columns are read as text so labels stay as written."""
    table = pd.read_csv(path, sep="\t", dtype={key: str for key in SWEEP_KEYS})
    missing = [column for column in [*SUMMARY_FIXED, "val_macro_f1"] if column not in table]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing}; not a sweep summary")
    if table.empty:
        raise ValueError(f"{path}: no runs")
    return table


# ----------------------------------------------------------------------------- figure


def spread_offsets(groups: Sequence[Any], width: float = 0.4) -> np.ndarray:
    """Horizontal offsets that spread the points of each group evenly over ``width``, in row
    order, so runs with the same value and a similar score do not hide each other (no jitter:
    the figure is the same on every run)."""
    offsets = np.zeros(len(groups))
    members: dict[Any, list[int]] = {}
    for i, group in enumerate(groups):
        members.setdefault(group, []).append(i)
    for rows in members.values():
        if len(rows) > 1:
            offsets[rows] = np.linspace(-width / 2, width / 2, len(rows))
    return offsets


def plot_validation_f1(
    summary: pd.DataFrame,
    order: Mapping[str, Sequence[Any]],
    out_png: str | os.PathLike[str],
) -> None:
    """Validation macro-F1 per parameter value: one panel per swept key (values in ``order``),
    a dot per run, a bar at the mean of each value, the best run as a red star."""
    from rnaseq_saliency.plotting import pyplot, save_png

    plt = pyplot()
    keys = [key for key in order if key in summary.columns]
    if not keys:
        raise ValueError(f"none of the swept keys {list(order)} is a column of the summary")
    summary = summary.sort_values("rank", kind="mergesort").reset_index(drop=True)
    f1 = summary["val_macro_f1"].to_numpy(dtype=float)
    figure, axes = plt.subplots(
        1, len(keys), figsize=(3.2 * len(keys) + 1.0, 3.8), sharey=True, squeeze=False
    )
    for axis, key in zip(axes[0], keys, strict=True):
        cells = [_label(_typed(key, value)) for value in summary[key]]
        labels = [_label(_typed(key, value)) for value in order[key]]
        # Values of the runs only (a random draw may miss some), in the config's order.
        present = [label for label in dict.fromkeys(labels + cells) if label in cells]
        position = {label: i for i, label in enumerate(present)}
        x = np.asarray([position[cell] for cell in cells], dtype=float) + spread_offsets(cells)
        axis.scatter(x[1:], f1[1:], s=28, alpha=0.7, color="tab:blue", zorder=2)
        axis.scatter(x[:1], f1[:1], marker="*", s=180, color="tab:red", zorder=4)
        for label, i in position.items():
            mean = float(np.mean([v for v, c in zip(f1, cells, strict=True) if c == label]))
            axis.hlines(mean, i - 0.3, i + 0.3, color="black", linewidth=1.5, zorder=3)
        axis.set_xticks(range(len(present)), present, rotation=30 if len(present) > 4 else 0)
        axis.set_xlim(-0.6, len(present) - 0.4)
        axis.set_xlabel(key)
        axis.grid(axis="y", alpha=0.3)
    axes[0][0].set_ylabel("validation macro-F1")
    figure.suptitle(
        f"Hyper-parameter sweep, {len(summary)} runs: validation macro-F1\n"
        "dots: runs; red star: best run; bars: mean of the runs with that value",
        fontsize=10,
    )
    figure.tight_layout()
    save_png(figure, out_png, dpi=150)
    plt.close(figure)


def plot_sweep(
    summary_tsv: str | os.PathLike[str],
    order: Mapping[str, Sequence[Any]],
    out_png: str | os.PathLike[str],
) -> None:
    """Rule ``sweep_figure``: ``plot_validation_f1`` from summary.tsv."""
    plot_validation_f1(read_summary(summary_tsv), order, out_png)


# ----------------------------------------------------------------------------- best run


def best_run(summary: pd.DataFrame) -> str:
    """The run ranked first."""
    return str(summary.sort_values("rank", kind="mergesort").iloc[0]["run"])


def evaluate_best_run(
    summary_tsv: str | os.PathLike[str],
    runs: Mapping[str, Mapping[str, Any]],
    expression_files: Sequence[str | os.PathLike[str]],
    samples_tsv: str | os.PathLike[str],
    outputs: Mapping[str, str | os.PathLike[str]],
    test_opt: int,
    seed: int,
    threads: int | None = None,
) -> dict[str, Any]:
    """Rule ``sweep_evaluate_best``: the full (test-set) evaluation of the best run only.

    ``runs`` maps each run to its ``model_dir`` and ``augmented`` training files. The run is
    taken from summary.tsv, which ranks by validation metrics: the test set is read only here,
    after the choice. Its summary.json also names the run (``sweep_run``).
    """
    from rnaseq_saliency.evaluate import run_evaluation, write_evaluation_summary

    chosen = best_run(read_summary(summary_tsv))
    if chosen not in runs:
        raise ValueError(
            f"{summary_tsv}: best run {chosen!r} is not a run of the current sweep; the summary "
            "is out of date"
        )
    files = runs[chosen]
    log.info("evaluating the best run %s (model %s)", chosen, files["model_dir"])
    result = run_evaluation(
        model_dir=files["model_dir"],
        augmented_files=list(files["augmented"]),
        expression_files=list(expression_files),
        samples_tsv=samples_tsv,
        outputs=outputs,
        test_opt=test_opt,
        seed=seed,
        threads=threads,
    )
    # run_evaluation writes summary.json without knowing about sweeps; add which run it was.
    result = {"sweep_run": chosen, **result}
    write_evaluation_summary(result, outputs["summary"])
    return result
