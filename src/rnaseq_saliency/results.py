"""Who owns each results file: the one module that writes it and reads it back.

The workflow's rules keep their literal paths (each rule reads as one line of the data-flow
diagram, as in the Snakemake workflow catalog's reference shape); this table is where a reader
finds, for any path under ``results/``, the module that holds its writer, its reader (when a
later step reads it; figures and report tables are read by people) and its columns. Everything
else goes through those functions. ``tests/test_results.py`` checks that every results path a
rule declares is listed here and that each named function exists in its module.

``{...}`` stands for a wildcard or a sweep run's directories.
"""

from __future__ import annotations

from typing import NamedTuple


class Owner(NamedTuple):
    module: str  # rnaseq_saliency.<module>
    writer: str
    reader: str | None  # None: only people read it (figures, report tables)


_EVALUATION = {
    "predictions.tsv": Owner("evaluate", "write_predictions", "read_predictions"),
    "summary.json": Owner("evaluate", "write_evaluation_summary", "read_evaluation_summary"),
    "classification_report.tsv": Owner("evaluate", "run_evaluation", None),
    "classification_report.html": Owner("evaluate", "run_evaluation", None),
    "confusion_matrix.tsv": Owner("evaluate", "write_confusion", None),
    "confusion_matrix.png": Owner("evaluate", "run_evaluation", None),
    "top_confusions.tsv": Owner("evaluate", "run_evaluation", None),
    "baseline_report.tsv": Owner("evaluate", "run_evaluation", None),
    "calibration.png": Owner("calibration", "plot_reliability", None),
}
_MODEL = {
    "model.safetensors": Owner("model", "save_model", "load_model"),
    "model.json": Owner("model", "save_model", "load_model"),
    "history.tsv": Owner("history", "write_history", "read_history"),
}

OWNERS: dict[str, Owner] = {
    "results/genes/selected_genes.tsv": Owner(
        "genes", "write_selected_genes", "read_selected_genes"
    ),
    "results/expression/{}.parquet": Owner("expression", "write_expression", "read_expression"),
    "results/expression/summary.tsv": Owner("ingest", "summarise_expression", None),
    "results/split/samples.tsv": Owner("datasets", "write_samples", "read_samples"),
    "results/split/summary.tsv": Owner("split", "write_split", None),
    "results/augmented/{}.parquet": Owner("expression", "write_expression", "read_expression"),
    "results/figures/pca_augmentation.png": Owner(
        "figures_augmentation", "plot_pca_augmentation", None
    ),
    "results/figures/training_curves.png": Owner("figures_training", "plot_training_curves", None),
    **{f"results/model/{name}": owner for name, owner in _MODEL.items()},
    # Replicates 1.. of train.replicates: model directories of their own; the ensemble of all.
    **{f"results/model/replicates/{{}}/{name}": owner for name, owner in _MODEL.items()},
    "results/model/ensemble.json": Owner("ensemble", "write_ensemble", "read_ensemble"),
    **{f"results/evaluation/{name}": owner for name, owner in _EVALUATION.items()},
    # Issue 19: the sample checks beside the model, and their evaluation (rule evaluate_checks).
    "results/model/sample_checks.json": Owner(
        "sample_checks", "write_sample_checks", "read_sample_checks"
    ),
    "results/model/sample_checks.safetensors": Owner(
        "sample_checks", "write_sample_checks", "read_sample_checks"
    ),
    "results/evaluation/sample_checks.tsv": Owner(
        "evaluate_checks", "write_held_out", "read_held_out"
    ),
    "results/evaluation/mixtures.tsv": Owner("evaluate_checks", "write_mixtures", "read_mixtures"),
    "results/evaluation/mixtures.png": Owner("evaluate_checks", "plot_mixtures", None),
    "results/saliency/de_statistic.parquet": Owner(
        "differential", "write_de_table", "read_de_table"
    ),
    "results/saliency/maps/{}/{}.parquet": Owner(
        "saliency", "write_tissue_saliency", "read_tissue_saliency"
    ),
    "results/saliency/faithfulness/{}.tsv": Owner(
        "faithfulness", "write_faithfulness", "read_faithfulness"
    ),
    "results/saliency/faithfulness.tsv": Owner(
        "faithfulness", "write_faithfulness", "read_faithfulness"
    ),
    "results/saliency/chosen_method.json": Owner(
        "faithfulness", "write_chosen_method", "read_chosen_method"
    ),
    "results/saliency/methods.tsv": Owner("method_comparison", "run_saliency_methods", None),
    "results/saliency/methods.png": Owner("method_comparison", "plot_methods", None),
    "results/saliency/top_genes_by_method.tsv": Owner(
        "method_comparison", "run_saliency_methods", None
    ),
    "results/saliency/top_genes.tsv": Owner("saliency", "write_top_genes", "read_top_genes"),
    "results/saliency/top_genes_per_tissue.tsv": Owner(
        "saliency", "write_top_genes", "read_top_genes"
    ),
    "results/saliency/mean_saliency.parquet": Owner(
        "saliency", "write_mean_matrix", "read_mean_matrix"
    ),
    # Replicate models 1.. (rule replicate_saliency reads them): the format of results/model/.
    **{f"results/model/replicates/{{}}/{name}": _MODEL[name] for name in _MODEL if "model" in name},
    # Replicates 1..: the maps format of rule saliency (path: consensus.replicate_maps_path).
    "results/saliency/replicates/{}/{}.parquet": Owner(
        "saliency", "write_tissue_saliency", "read_tissue_saliency"
    ),
    "results/saliency/replicate_stability.tsv": Owner(
        "consensus", "write_stability", "read_stability"
    ),
    "results/saliency/replicate_stability.png": Owner("consensus", "plot_stability", None),
    "results/saliency/heatmaps/{}.png": Owner("figures_saliency", "run_tissue_heatmap", None),
    "results/saliency/overview.png": Owner("figures_saliency", "run_overview", None),
    "results/saliency/validation.tsv": Owner(
        "saliency_validation", "write_validation", "read_validation"
    ),
    # Issue 21: what the salient genes mean, and whether they are shortcuts.
    "results/enrichment/{}.tsv": Owner("enrichment", "write_enrichment", "read_enrichment"),
    "results/enrichment/summary.png": Owner("enrichment", "plot_enrichment_summary", None),
    "results/saliency/shortcuts.tsv": Owner("shortcuts", "write_shortcuts", "read_shortcuts"),
    "results/saliency/shortcuts.png": Owner("shortcuts", "plot_shortcuts", None),
    "results/predict/predictions.tsv": Owner("predict", "write_sample_predictions", None),
    "results/predict/saliency_top_genes.tsv": Owner("predict", "write_sample_top_genes", None),
    "results/predict/figures": Owner("predict", "write_figures", None),
    # The sweep's runs: the same formats as the main run's files of the same name.
    "results/sweep/augmented/{}/{}.parquet": Owner(
        "expression", "write_expression", "read_expression"
    ),
    **{f"results/sweep/{{}}/model/{name}": owner for name, owner in _MODEL.items()},
    "results/sweep/{}/validation.json": Owner("sweep", "write_run_validation", "read_validation"),
    "results/sweep/summary.tsv": Owner("sweep", "write_summary", "read_summary"),
    "results/sweep/best_config.yaml": Owner("sweep", "write_summary", None),
    "results/sweep/validation_f1.png": Owner("sweep", "plot_sweep", None),
    **{f"results/sweep/best/evaluation/{name}": owner for name, owner in _EVALUATION.items()},
    "results/tensorboard/sweep/{}": Owner("training", "train", None),
}
