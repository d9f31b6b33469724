import os
import sys

from snakemake.utils import min_version

min_version("9.0")

# The workflow runs the package that sits beside it (src/), also inside conda environments
# where it is not installed: script jobs inherit this search path. (We set the variable
# rather than require it, so the envvars directive, which asserts user-set ones, is not
# what this needs.)
_SRC = os.path.join(workflow.basedir, "src")
sys.path.insert(0, _SRC)
os.environ.update(
    PYTHONPATH=os.pathsep.join(p for p in (_SRC, os.getenv("PYTHONPATH")) if p)
)

from rnaseq_saliency import gtex  # noqa: E402
from rnaseq_saliency.config import validate_config  # noqa: E402
from rnaseq_saliency.settings import (  # noqa: E402
    AugmentSettings,
    DemoSettings,
    EnrichmentSettings,
    EvaluateSettings,
    GeneSelectionSettings,
    MethodChoice,
    PcaFigureSettings,
    PredictSettings,
    SaliencySettings,
    ShortcutSettings,
    SplitSettings,
    TissueSelection,
    TopGenesSettings,
    TrainingSettings,
    ValidationSettings,
)
from rnaseq_saliency.resources import training_gpus, training_threads  # noqa: E402
from rnaseq_saliency.tissues import resolve_tissues  # noqa: E402
from rnaseq_saliency.settings import (  # noqa: E402
    MixtureEvaluationSettings,
    SampleCheckSettings,
)

validate_config(
    config, os.path.join(workflow.basedir, "workflow/schemas/config.schema.yaml")
)

DATA = config["data"]
TISSUES = resolve_tissues(DATA["tissues"])
RELEASE = DATA["release"]
if DATA["source"] == "demo" and RELEASE != "v8":
    raise ValueError(
        "config key data.release: the demo dataset is built on GTEx v8 (GENCODE v26 ids); "
        "use release v8 with data.source demo"
    )
# Every rule's config values travel in settings objects (rnaseq_saliency.settings), built from
# only the keys that rule reads, so a config edit reruns exactly what depends on it.
PCA_TISSUES = PcaFigureSettings.from_config(config).tissues
SALIENCY_METHODS = list(config["saliency"]["methods"])
# Replicate 0 is results/model/ itself; replicates 1.. live in results/model/replicates/{r}/.
REPLICATES = list(range(config["train"]["replicates"]))
# Replicate training jobs run side by side, each on an equal share of the cores (all of them with
# one replicate, as before); one that may train on a GPU asks for the gpu resource, so that one
# GPU trains one replicate at a time (rnaseq_saliency.resources).
TRAIN_THREADS = training_threads(workflow.cores, len(REPLICATES))
TRAIN_GPUS = training_gpus(config["train"]["device"])


def replicate_model_files():
    """model.safetensors and model.json of every replicate, replicate order (rule ensemble)."""
    files = list(MODEL_FILES)
    for r in REPLICATES[1:]:
        files += [
            f"results/model/replicates/{r}/model.safetensors",
            f"results/model/replicates/{r}/model.json",
        ]
    return files


MEASURE = DATA["measure"]
LAYOUT = DATA["layout"]


def raw_dir():
    """Where the GTEx-named input files live for the configured data source."""
    if DATA["source"] == "demo":
        return "resources/demo"
    if DATA["source"] == "gtex":
        return f"resources/gtex/{RELEASE}"
    if not DATA["local_dir"]:
        raise ValueError(
            "config key data.local_dir: required when data.source is 'local'"
        )
    return DATA["local_dir"]


def raw_tissue_file(wildcards):
    return os.path.join(
        raw_dir(), gtex.tissue_file_name(RELEASE, MEASURE, wildcards.tissue)
    )


def raw_matrix_file():
    return os.path.join(raw_dir(), gtex.matrix_file_name(RELEASE, MEASURE))


def raw_attributes_file():
    return os.path.join(raw_dir(), gtex.attributes_file_name(RELEASE))


def raw_subjects_file():
    """The subject phenotypes file (donor sex and age) of the configured data source."""
    return os.path.join(raw_dir(), gtex.subjects_file_name(RELEASE))


def raw_gtf_file():
    return os.path.join(raw_dir(), gtex.gtf_file_name(RELEASE))


def input_filter_files():
    """The id-list file of data.input_filter, so that editing it reruns gene selection."""
    if DATA["input_filter"] in ("protein_coding", "all"):
        return []
    return [DATA["input_filter"]]


def expression_files():
    return expand("results/expression/{tissue}.parquet", tissue=TISSUES)


def all_maps_files():
    """Every method's maps of every tissue (rule saliency), method by method."""
    return expand(
        "results/saliency/maps/{method}/{tissue}.parquet",
        method=SALIENCY_METHODS,
        tissue=TISSUES,
    )


def replicate_maps_files():
    """The maps of replicates 1.. by the chosen method, replicate by replicate ([] with one).

    Replicate 0's maps are the saliency job's, and nothing of replicate 0 reads this list.
    """
    return expand(
        "results/saliency/replicates/{replicate}/{tissue}.parquet",
        replicate=REPLICATES[1:],
        tissue=TISSUES,
    )


def augmented_files():
    return expand("results/augmented/{tissue}.parquet", tissue=TISSUES)


def training_config():
    """The config sections that shape a trained model, which a sweep's best_config.yaml holds
    (rule sweep_summary; the main workflow's rules take settings objects)."""
    return {
        key: config[key]
        for key in ("data", "demo", "split", "augment", "model", "train")
    }


MODEL_FILES = multiext("results/model/model", ".safetensors", ".json")


def final_targets():
    # New samples are classified only when the user names a file of them.
    predict = (
        [
            "results/predict/predictions.tsv",
            "results/predict/saliency_top_genes.tsv",
            "results/predict/figures",
        ]
        if config["predict"]["input"]
        else []
    )
    return [
        "results/genes/selected_genes.tsv",
        *expression_files(),
        "results/expression/summary.tsv",
        "results/split/samples.tsv",
        "results/split/summary.tsv",
        *augmented_files(),
        "results/figures/pca_augmentation.png",
        *MODEL_FILES,
        "results/model/history.tsv",
        "results/model/ensemble.json",
        "results/figures/training_curves.png",
        "results/evaluation/summary.json",
        "results/evaluation/confusion_matrix.png",
        "results/saliency/top_genes.tsv",
        "results/saliency/top_genes_per_tissue.tsv",
        *expand("results/saliency/heatmaps/{tissue}.png", tissue=TISSUES),
        "results/saliency/overview.png",
        "results/saliency/validation.tsv",
        "results/saliency/methods.tsv",
        "results/saliency/methods.png",
        *interpretation_targets(),
        # Issue 19: the novelty and mixture checks beside the model, and their evaluation.
        "results/model/sample_checks.json",
        "results/evaluation/sample_checks.tsv",
        "results/evaluation/mixtures.tsv",
        "results/evaluation/mixtures.png",
        *predict,
        *SWEEP_TARGETS,  # empty unless sweep.enabled (workflow/rules/sweep.smk)
        *REPLICATE_TARGETS,  # empty unless train.replicates > 1 (workflow/rules/saliency.smk)
    ]


def marker_sets_file():
    """The GMT of known tissue markers for saliency validation: shipped HPA set, a path, or none."""
    markers = config["saliency"]["marker_sets"]
    if markers is None:
        return []
    if markers == "hpa":
        return [os.path.join(_SRC, "rnaseq_saliency/data/hpa_tissue_enriched.gmt")]
    return [markers]


def gene_set_files():
    """The GMT files of saliency.gene_sets (``hpa``: the shipped HPA tissue-enriched sets)."""
    shipped = os.path.join(_SRC, "rnaseq_saliency/data/hpa_tissue_enriched.gmt")
    return [
        shipped if name == "hpa" else name for name in config["saliency"]["gene_sets"]
    ]


def interpretation_targets():
    """Issue 21: the enrichment (unless saliency.gene_sets is empty) and the shortcut check."""
    enrichment = ["results/enrichment/summary.png"] if gene_set_files() else []
    return [
        *enrichment,
        "results/saliency/shortcuts.tsv",
        "results/saliency/shortcuts.png",
    ]
