# Flows: train by reverse KL, then sample with independence Metropolis-Hastings.


rule train:
    input:
        unpack(init_model),
    output:
        model="results/models/{flow}/{point}.pt",
        history="results/training/{flow}/{point}.csv",
    log:
        "logs/train/{flow}/{point}.log",
    benchmark:
        "results/benchmarks/train/{flow}/{point}.tsv"
    params:
        point=point_params,
        hyperparameters=lambda w: fieldflow.config.canonical(
            fieldflow.config.flow_settings(config, w.flow)[0]
        ),
        training=lambda w: fieldflow.config.canonical(
            fieldflow.config.flow_settings(config, w.flow)[1]
        ),
        device=config["device"],
        seed=lambda w: fieldflow.config.job_seed(config, "train", w.flow, w.point),
        checkpoint="results/checkpoints/{flow}/{point}.pt",
    threads: config["threads"]
    resources:
        gpu=1 if USE_GPU else 0,
    conda:
        "../../envs/fieldflow.yaml"
    script:
        "../scripts/train.py"


# The from-scratch baseline of a transferred point (config transfer_baseline): same budget
# and seed as rule train, no init_from; only its training history is kept.
use rule train as train_scratch with:
    input:
        [],
    output:
        model=temp("results/models/{flow}/{point}.scratch.pt"),
        history="results/training/{flow}/{point}.scratch.csv",
    log:
        "logs/train/{flow}/{point}.scratch.log",
    benchmark:
        "results/benchmarks/train/{flow}/{point}.scratch.tsv"
    params:
        checkpoint="results/checkpoints/{flow}/{point}.scratch.pt",


rule sample_flow:
    input:
        model="results/models/{flow}/{point}.pt",
    output:
        ensemble=directory("results/ensembles/{flow}/{point}.zarr"),
    log:
        "logs/sample/{flow}/{point}.log",
    benchmark:
        "results/benchmarks/sample/{flow}/{point}.tsv"
    params:
        point=point_params,
        sampling=fieldflow.config.canonical(config["sampling"]),
        device=config["device"],
        seed=lambda w: fieldflow.config.job_seed(config, "sample", w.flow, w.point),
    threads: config["threads"]
    resources:
        gpu=1 if USE_GPU else 0,
    conda:
        "../../envs/fieldflow.yaml"
    script:
        "../scripts/sample_flow.py"
