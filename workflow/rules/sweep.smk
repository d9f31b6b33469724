# Hyper-parameter sweeps (config `sweep`, off by default; see config/README.md). Every
# combination of the listed values is one training run with its own file targets,
# results/sweep/<key~value/...>/, through Snakemake's Paramspace (SWEEP.space): adding a value
# to a list adds runs and leaves the finished ones alone. Runs share ingestion and the split;
# they get their own augmented files only where augment values are swept. Runs are ranked by
# validation macro-F1, and only the best one is evaluated on the test set. The run logic lives
# in rnaseq_saliency.sweep.SweepPlan.

from rnaseq_saliency import sweep as sweep_lib

# Rule all asks for these (final_targets in common.smk).
SWEEP_TARGETS = list(sweep_lib.SWEEP_TARGETS) if config["sweep"]["enabled"] else []

if config["sweep"]["enabled"]:
    SWEEP = sweep_lib.SweepPlan(config, TISSUES, augmented_files())
    # A cpu run does not hold the gpu resource and shares the cores with other runs; any other
    # device holds gpu=1, so `--resources gpu=1` trains one run at a time, with all cores.
    SWEEP_GPU, SWEEP_TRAIN_THREADS = sweep_lib.train_resources(
        len(SWEEP.runs), config["train"]["device"], workflow.cores
    )

    wildcard_constraints:
        **SWEEP.wildcard_constraints,

    if SWEEP.augment_columns:

        rule sweep_augment:
            input:
                expression="results/expression/{tissue}.parquet",
                samples="results/split/samples.tsv",
            output:
                f"results/sweep/augmented/{SWEEP.augment_pattern}/{{tissue}}.parquet",
            log:
                f"logs/sweep/augment/{SWEEP.augment_pattern}/{{tissue}}.log",
            benchmark:
                f"benchmarks/sweep_augment/{SWEEP.augment_pattern}/{{tissue}}.tsv"
            conda:
                "../../envs/data.yaml"
            params:
                tissue=lambda wildcards: wildcards.tissue,
                settings=lambda wildcards: AugmentSettings.from_config(
                    {
                        "augment": {
                            **config["augment"],
                            **SWEEP.augment_settings(wildcards),
                        }
                    }
                ),
            script:
                "../../scripts/augment.py"

    rule sweep_train:
        input:
            augmented=SWEEP.augmented_files,
            expression=expression_files(),
            samples="results/split/samples.tsv",
            genes="results/genes/selected_genes.tsv",
        output:
            weights=f"results/sweep/{SWEEP.pattern}/model/model.safetensors",
            model_json=f"results/sweep/{SWEEP.pattern}/model/model.json",
            history=f"results/sweep/{SWEEP.pattern}/model/history.tsv",
            tensorboard=directory(f"results/tensorboard/sweep/{SWEEP.pattern}"),
        log:
            f"logs/sweep/train/{SWEEP.pattern}.log",
        benchmark:
            f"benchmarks/sweep_train/{SWEEP.pattern}.tsv"
        conda:
            "../../envs/torch.yaml"
        threads: SWEEP_TRAIN_THREADS
        resources:
            gpu=SWEEP_GPU,
        params:
            settings=lambda wildcards: TrainingSettings.from_config(
                SWEEP.run_config(wildcards)
            ),
        script:
            "../../scripts/train.py"

    rule sweep_validate:
        input:
            weights=f"results/sweep/{SWEEP.pattern}/model/model.safetensors",
            model_json=f"results/sweep/{SWEEP.pattern}/model/model.json",
            expression=expression_files(),
            samples="results/split/samples.tsv",
        output:
            f"results/sweep/{SWEEP.pattern}/validation.json",
        log:
            f"logs/sweep/validate/{SWEEP.pattern}.log",
        benchmark:
            f"benchmarks/sweep_validate/{SWEEP.pattern}.tsv"
        conda:
            "../../envs/torch.yaml"
        params:
            run=SWEEP.run,
            combination=SWEEP.combination,
        script:
            "../../scripts/sweep_validate.py"

    rule sweep_summary:
        input:
            expand("results/sweep/{run}/validation.json", run=SWEEP.runs),
        output:
            summary="results/sweep/summary.tsv",
            best_config="results/sweep/best_config.yaml",
        log:
            "logs/sweep/summary.log",
        benchmark:
            "benchmarks/sweep_summary.tsv"
        conda:
            "../../envs/data.yaml"
        params:
            base_config=training_config(),
        script:
            "../../scripts/sweep_summary.py"

    rule sweep_figure:
        input:
            "results/sweep/summary.tsv",
        output:
            report(
                "results/sweep/validation_f1.png",
                caption="../report/sweep.rst",
                category="6. Sweep",
            ),
        log:
            "logs/sweep/figure.log",
        benchmark:
            "benchmarks/sweep_figure.tsv"
        conda:
            "../../envs/data.yaml"
        params:
            order=SWEEP.value_order(),
        script:
            "../../scripts/sweep_figure.py"

    # Every run is an input, since any may rank first; the script evaluates only the run that
    # summary.tsv (validation metrics) ranks first.
    rule sweep_evaluate_best:
        input:
            summary="results/sweep/summary.tsv",
            weights=expand(
                "results/sweep/{run}/model/model.safetensors", run=SWEEP.runs
            ),
            model_json=expand("results/sweep/{run}/model/model.json", run=SWEEP.runs),
            augmented=SWEEP.all_augmented_files(),
            expression=expression_files(),
            samples="results/split/samples.tsv",
        output:
            predictions="results/sweep/best/evaluation/predictions.tsv",
            report_tsv="results/sweep/best/evaluation/classification_report.tsv",
            report_html="results/sweep/best/evaluation/classification_report.html",
            confusion_tsv="results/sweep/best/evaluation/confusion_matrix.tsv",
            confusion_png="results/sweep/best/evaluation/confusion_matrix.png",
            top_confusions="results/sweep/best/evaluation/top_confusions.tsv",
            baseline="results/sweep/best/evaluation/baseline_report.tsv",
            summary="results/sweep/best/evaluation/summary.json",
            calibration_png="results/sweep/best/evaluation/calibration.png",
        log:
            "logs/sweep/evaluate_best.log",
        benchmark:
            "benchmarks/sweep_evaluate_best.tsv"
        conda:
            "../../envs/torch.yaml"
        threads: workflow.cores
        params:
            runs=SWEEP.evaluation_inputs(),
            test_opt=config["evaluate"]["test_opt"],
            seed=config["train"]["seed"],
        script:
            "../../scripts/sweep_evaluate_best.py"
