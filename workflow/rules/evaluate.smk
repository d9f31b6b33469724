rule evaluate:
    input:
        weights="results/model/model.safetensors",
        model_json="results/model/model.json",
        ensemble="results/model/ensemble.json",
        augmented=augmented_files(),
        expression=expression_files(),
        samples="results/split/samples.tsv",
    output:
        predictions="results/evaluation/predictions.tsv",
        report_tsv=report(
            "results/evaluation/classification_report.tsv",
            caption="../report/classification_report.rst",
            category="4. Evaluation",
        ),
        report_html=report(
            "results/evaluation/classification_report.html",
            caption="../report/classification_report.rst",
            category="4. Evaluation",
        ),
        confusion_tsv="results/evaluation/confusion_matrix.tsv",
        confusion_png=report(
            "results/evaluation/confusion_matrix.png",
            caption="../report/confusion_matrix.rst",
            category="4. Evaluation",
        ),
        top_confusions=report(
            "results/evaluation/top_confusions.tsv",
            caption="../report/top_confusions.rst",
            category="4. Evaluation",
        ),
        baseline=report(
            "results/evaluation/baseline_report.tsv",
            caption="../report/baseline_report.rst",
            category="4. Evaluation",
        ),
        summary=report(
            "results/evaluation/summary.json",
            caption="../report/evaluation_summary.rst",
            category="4. Evaluation",
        ),
        calibration_png=report(
            "results/evaluation/calibration.png",
            caption="../report/calibration.rst",
            category="4. Evaluation",
        ),
    log:
        "logs/evaluate.log",
    benchmark:
        "benchmarks/evaluate.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: workflow.cores
    params:
        settings=EvaluateSettings.from_config(config),
    script:
        "../../scripts/evaluate.py"


rule evaluate_checks:
    input:
        weights="results/model/model.safetensors",
        model_json="results/model/model.json",
        ensemble="results/model/ensemble.json",
        checks="results/model/sample_checks.json",
        arrays="results/model/sample_checks.safetensors",
        expression=expression_files(),
        samples="results/split/samples.tsv",
    output:
        held_out="results/evaluation/sample_checks.tsv",
        table=report(
            "results/evaluation/mixtures.tsv",
            caption="../report/mixtures.rst",
            category="4. Evaluation",
        ),
        figure=report(
            "results/evaluation/mixtures.png",
            caption="../report/mixtures.rst",
            category="4. Evaluation",
        ),
    log:
        "logs/evaluate_checks.log",
    benchmark:
        "benchmarks/evaluate_checks.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: workflow.cores
    params:
        settings=MixtureEvaluationSettings.from_config(config),
    script:
        "../../scripts/evaluate_checks.py"
