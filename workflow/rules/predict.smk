rule predict:
    input:
        weights="results/model/model.safetensors",
        model_json="results/model/model.json",
        checks="results/model/sample_checks.json",
        checks_arrays="results/model/sample_checks.safetensors",
        ensemble="results/model/ensemble.json",
        chosen="results/saliency/chosen_method.json",
        # Without predict.input the job has no samples and stops with a message saying so.
        expression=config["predict"]["input"] or [],
    output:
        predictions=report(
            "results/predict/predictions.tsv",
            caption="../report/predict.rst",
            category="6. New samples",
        ),
        top_genes=report(
            "results/predict/saliency_top_genes.tsv",
            caption="../report/predict.rst",
            category="6. New samples",
        ),
        figures=report(
            directory("results/predict/figures"),
            patterns=["{sample}.png"],
            caption="../report/predict.rst",
            category="6. New samples",
            subcategory="Per sample",
            labels={"sample": "{sample}"},
        ),
    log:
        "logs/predict.log",
    benchmark:
        "benchmarks/predict.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: workflow.cores
    params:
        saliency=SaliencySettings.from_config(config),
        settings=PredictSettings.from_config(config),
    script:
        "../../scripts/predict.py"
