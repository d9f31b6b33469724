"""What each rule reads from the config: one settings object per stage, and the map of them.

A rule's ``params:`` hold its settings objects (built here from only the keys that stage uses)
and wildcard values, nothing else. Each settings class is a ``NamedTuple``: immutable, equal by
value, and written by ``repr`` as its values. That matters: Snakemake's params trigger records
the ``repr`` of tuples, dicts and plain values, and silently ignores any other object, so a
dataclass here would never rerun anything.

``RULE_SETTINGS`` is the one declared map of which config keys each rule reads through its
params (``rule_keys``); ``tests/test_settings.py`` holds it to the rules' real params (static)
and to what a dry run schedules after a change of each key (dynamic). Two kinds of keys are not
in it, on purpose, and are listed with the reason:

- ``RUNTIME_KEYS``: read by a job when it runs, not through params, because they change nothing
  it computes (retry policy, log verbosity): editing them reruns nothing;
- ``STRUCTURAL_KEYS``: they decide which files and jobs exist (the data source, the tissues):
  editing them changes the DAG itself, and Snakemake reruns what new or changed inputs need.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from rnaseq_saliency.tissues import resolve_tissues


def config_value(config: Mapping[str, Any], key: str) -> Any:
    """The value of a dotted ``key`` (``train.lr``); lists come back as tuples."""
    value: Any = config
    for part in key.split("."):
        if not isinstance(value, Mapping) or part not in value:
            raise KeyError(f"config key {key}: missing (is the config validated?)")
        value = value[part]
    return _frozen(value)


def _frozen(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return tuple(_frozen(item) for item in value)
    return value


def _from_keys(cls: type, config: Mapping[str, Any]) -> Any:
    """``cls`` with each field read from its key in ``cls.KEYS`` (same order as the fields)."""
    return cls(*(config_value(config, key) for key in cls.KEYS))


class DemoSettings(NamedTuple):
    """Rule ``demo``: what the demo dataset is drawn from."""

    seed: int
    n_genes: int
    sample_scale: float
    min_samples_per_tissue: int
    release: str
    measure: str

    KEYS = (
        "demo.seed",
        "demo.n_genes",
        "demo.sample_scale",
        "demo.min_samples_per_tissue",
        "data.release",
        "data.measure",
    )
    from_config = classmethod(_from_keys)


class GeneSelectionSettings(NamedTuple):
    """Rule ``select_genes``: the input filter."""

    input_filter: str

    KEYS = ("data.input_filter",)
    from_config = classmethod(_from_keys)


class TissueSelection(NamedTuple):
    """The configured tissue labels, ``all`` resolved (rules that name every tissue's file)."""

    labels: tuple[str, ...]

    KEYS = ("data.tissues",)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> TissueSelection:
        return cls(tuple(resolve_tissues(config_value(config, "data.tissues"))))


class SplitSettings(NamedTuple):
    """Rule ``split``."""

    test_fraction: float
    val_fraction: float
    group_by: str
    seed: int

    KEYS = ("split.test_fraction", "split.val_fraction", "split.group_by", "split.seed")
    from_config = classmethod(_from_keys)


class AugmentSettings(NamedTuple):
    """Rule ``augment``."""

    method: str
    min_samples: int
    noise_sigma: float
    smote_k_neighbors: int
    seed: int

    KEYS = (
        "augment.method",
        "augment.min_samples",
        "augment.noise_sigma",
        "augment.smote_k_neighbors",
        "augment.seed",
    )
    from_config = classmethod(_from_keys)


class PcaFigureSettings(NamedTuple):
    """Rule ``pca_augmentation``: the tissues drawn and the method named in the title.

    The configured ``pca_tissues`` that the run includes, or with none of them the first three
    tissues, so that choosing a few ``data.tissues`` does not clash with the default.
    """

    tissues: tuple[str, ...]
    method: str

    KEYS = ("augment.pca_tissues", "data.tissues", "augment.method")

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> PcaFigureSettings:
        run = resolve_tissues(config_value(config, "data.tissues"))
        wanted = resolve_tissues(list(config_value(config, "augment.pca_tissues")))
        chosen = tuple(t for t in wanted if t in run) or tuple(run[:3])
        return cls(chosen, config_value(config, "augment.method"))


class TrainingSettings(NamedTuple):
    """Rule ``train``: the model, the optimisation, and the unit of the input it learns."""

    preset: str
    hidden: tuple[int, ...]
    dropout: float
    activation: str
    device: str
    epochs: int
    batch_size: int
    lr: float
    weight_decay: float
    patience: int
    min_delta: float
    class_balance: str
    seed: int
    select_on: str
    label_smoothing: float
    input_dropout: float
    measure: str  # recorded in model.json: predict takes input in this unit

    KEYS = (
        "model.preset",
        "model.hidden",
        "model.dropout",
        "model.activation",
        "train.device",
        "train.epochs",
        "train.batch_size",
        "train.lr",
        "train.weight_decay",
        "train.patience",
        "train.min_delta",
        "train.class_balance",
        "train.seed",
        "train.select_on",
        "train.label_smoothing",
        "train.input_dropout",
        "data.measure",
    )
    from_config = classmethod(_from_keys)

    def section(self, name: str) -> dict[str, Any]:
        """The ``model`` or ``train`` config section these settings hold, as a plain dict."""
        prefix = f"{name}."
        return {
            key.removeprefix(prefix): list(value) if isinstance(value, tuple) else value
            for key, value in zip(self.KEYS, self, strict=True)
            if key.startswith(prefix)
        }

    def run_config(self) -> dict[str, Any]:
        """What model.json records of the configuration that made the model."""
        return {
            "model": self.section("model"),
            "train": self.section("train"),
            "data": {"measure": self.measure},
        }


class EvaluateSettings(NamedTuple):
    """Rule ``evaluate``: which held-out split is scored, and the baseline's seed.

    ``evaluate.test_opt`` 1 and 2 score the same split; 2 only also prints the report to the
    log, which the job reads at run time (``RUNTIME_KEYS``), so that 1 -> 2 reruns nothing.
    """

    score_test: bool
    seed: int

    KEYS = ("evaluate.test_opt", "train.seed")

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> EvaluateSettings:
        score_test = config_value(config, "evaluate.test_opt") != 0
        return cls(score_test, config_value(config, "train.seed"))

    def test_opt(self, runtime_config: Mapping[str, Any]) -> int:
        """The original switch for ``evaluate``: 0, or 1 / 2 as the run's config says."""
        if not self.score_test:
            return 0
        return 2 if config_value(runtime_config, "evaluate.test_opt") == 2 else 1


class SaliencySettings(NamedTuple):
    """How saliency maps are computed (rules ``saliency`` and ``predict``): every method of
    ``saliency.methods``, not which one is reported (``MethodChoice``), so that forcing
    another method reruns no map."""

    methods: tuple[str, ...]
    abs: bool
    batch_size: int
    ig_steps: int
    smoothgrad_samples: int
    smoothgrad_stdev: float
    seed: int

    KEYS = (
        "saliency.methods",
        "saliency.abs",
        "saliency.batch_size",
        "saliency.ig_steps",
        "saliency.smoothgrad_samples",
        "saliency.smoothgrad_stdev",
        "saliency.seed",
    )
    from_config = classmethod(_from_keys)

    def options_of(self, method: str) -> dict[str, Any]:
        """The options of ``method`` for ``saliency.attribute`` (ig_steps, ...)."""
        from rnaseq_saliency.saliency import method_options

        return method_options(method, self.ig_steps, self.smoothgrad_samples, self.smoothgrad_stdev)


# The config's defaults.
DEFAULT_SALIENCY = SaliencySettings(
    methods=("gradient", "input_x_gradient", "integrated_gradients", "smoothgrad"),
    abs=False,
    batch_size=512,
    ig_steps=16,
    smoothgrad_samples=8,
    smoothgrad_stdev=0.1,
    seed=0,
)


class MethodChoice(NamedTuple):
    """Rule ``choose_method``: ``auto`` (by validation faithfulness) or a forced method, among
    the computed ones."""

    method: str
    methods: tuple[str, ...]

    KEYS = ("saliency.method", "saliency.methods")
    from_config = classmethod(_from_keys)


class TopGenesSettings(NamedTuple):
    """How many top genes per tissue the tables and figures show."""

    top_n: int

    KEYS = ("saliency.top_n",)
    from_config = classmethod(_from_keys)


class ValidationSettings(NamedTuple):
    """Rule ``saliency_validation``: how many top genes each check looks at, and the batch size
    and seed of the randomised model's maps (method, sign and options come from the files)."""

    top_k: int
    batch_size: int
    seed: int

    KEYS = ("saliency.validation_top_k", "saliency.batch_size", "saliency.seed")
    from_config = classmethod(_from_keys)


class EnrichmentSettings(NamedTuple):
    """Rule ``enrichment``: GSEA prerank's permutations and seed (the GMT files are inputs)."""

    permutations: int
    seed: int

    KEYS = ("saliency.enrichment_permutations", "saliency.seed")
    from_config = classmethod(_from_keys)


class ShortcutSettings(NamedTuple):
    """Rule ``shortcuts``: how many top genes are checked, and the share that flags a tissue."""

    top_k: int
    max_share: float

    KEYS = ("saliency.shortcut_top_k", "saliency.shortcut_max_share")
    from_config = classmethod(_from_keys)


class PredictSettings(NamedTuple):
    """Rule ``predict``."""

    max_missing_fraction: float
    top_n: int

    KEYS = ("predict.max_missing_fraction", "predict.top_n")
    from_config = classmethod(_from_keys)


class SampleCheckSettings(NamedTuple):
    """Rule ``sample_checks``: the novelty and mixture checks fitted beside the model."""

    novelty_rate: float
    novelty_method: str
    mixture_rate: float
    seed: int

    KEYS = (
        "sample_checks.novelty_rate",
        "sample_checks.novelty_method",
        "sample_checks.mixture_rate",
        "sample_checks.seed",
    )
    from_config = classmethod(_from_keys)


class MixtureEvaluationSettings(NamedTuple):
    """Rule ``evaluate_checks``: the synthetic mixtures of test samples that test the checks."""

    pairs: int
    fractions: tuple[float, ...]
    seed: int

    KEYS = ("sample_checks.mixture_pairs", "sample_checks.mixture_fractions", "sample_checks.seed")
    from_config = classmethod(_from_keys)


# Rule -> the settings classes its params hold, in params order. Rules not listed read no
# config key through params (their inputs decide everything).
RULE_SETTINGS: dict[str, tuple[type, ...]] = {
    "demo": (DemoSettings,),
    "select_genes": (GeneSelectionSettings,),
    "ingest_matrix": (TissueSelection,),
    "expression_summary": (TissueSelection,),
    "split": (TissueSelection, SplitSettings),
    "augment": (AugmentSettings,),
    "pca_augmentation": (PcaFigureSettings,),
    "train": (TrainingSettings,),
    "train_replicate": (TrainingSettings,),
    "evaluate": (EvaluateSettings,),
    "de_statistic": (TissueSelection,),
    "saliency": (SaliencySettings,),
    "choose_method": (MethodChoice,),
    "top_genes": (TissueSelection,),
    "top_genes_per_tissue": (TopGenesSettings,),
    "saliency_heatmap": (TopGenesSettings,),
    "saliency_overview": (TopGenesSettings,),
    "saliency_validation": (TissueSelection, ValidationSettings),
    "saliency_methods": (TissueSelection, TopGenesSettings),
    "predict": (SaliencySettings, PredictSettings),
    "enrichment": (TissueSelection, EnrichmentSettings),
    "enrichment_summary": (TissueSelection,),
    "shortcuts": (TissueSelection, ShortcutSettings),
    "sample_checks": (SampleCheckSettings,),
    "evaluate_checks": (MixtureEvaluationSettings,),
    "replicate_saliency": (SaliencySettings,),
    "replicate_stability": (TissueSelection, TopGenesSettings),
}

RUNTIME_KEYS: dict[str, str] = {
    "data.download.retries": "rule download: how often a failed transfer is retried",
    "data.download.backoff_seconds": "rule download: the wait between retries",
    "data.download.timeout_seconds": "rule download: the socket timeout",
    "data.base_url": "rule download: where the same files are fetched from (a mirror)",
    "evaluate.test_opt": "rule evaluate: 2 also prints the report to the log (0 vs 1 and 2 "
    "is in EvaluateSettings)",
}

STRUCTURAL_KEYS: dict[str, str] = {
    "data.source": "which rule provides the input files (demo, download, a local directory)",
    "data.local_dir": "where the input files of data.source: local are",
    "data.release": "the input files' names (and the demo's params)",
    "data.measure": "the input files' names (and the demo's and train's params)",
    "data.layout": "per-tissue files and ingest jobs, or one matrix file and one job",
    "data.tissues": "which per-tissue jobs exist (and the all-tissue rules' params)",
    "augment.pca_tissues": "which augmented files the PCA figure reads (and its params)",
    "saliency.marker_sets": "the marker GMT file that saliency_validation reads",
    "saliency.gene_sets": "the GMT files that rule enrichment reads (inputs, not params)",
    "predict.input": "whether rule predict runs, on which file",
    "train.replicates": "which replicate training jobs exist (replicate r: seed train.seed + r)",
}


def rule_keys(rule: str) -> tuple[str, ...]:
    """The config keys that ``rule`` reads through its params (none for unlisted rules)."""
    keys: list[str] = []
    for settings in RULE_SETTINGS.get(rule, ()):
        keys.extend(key for key in settings.KEYS if key not in keys)
    return tuple(keys)
