# Observables with Gamma-method errors, the contract tables, and the figures.


rule observables:
    input:
        ensemble="results/ensembles/{sampler}/{point}.zarr",
    output:
        table="results/observables/{sampler}/{point}.csv",
    log:
        "logs/observables/{sampler}/{point}.log",
    params:
        S=config["analysis"]["S"],
    conda:
        "../../envs/fieldflow.yaml"
    script:
        "../scripts/observables.py"


rule tables:
    input:
        observables=expand("results/observables/{sampler}/{point}.csv", sampler=SAMPLERS, point=POINTS),
        ensembles=ensembles(),
        models=expand("results/models/{flow}/{point}.pt", flow=FLOWS, point=POINTS),
    output:
        observables="results/tables/observables.csv",
        samplers="results/tables/samplers.csv",
        parameters="results/tables/parameters.csv",
    log:
        "logs/tables.log",
    conda:
        "../../envs/fieldflow.yaml"
    script:
        "../scripts/tables.py"


rule figures:
    input:
        observables="results/tables/observables.csv",
        samplers="results/tables/samplers.csv",
        histories=expand("results/training/{flow}/{point}.csv", flow=FLOWS, point=POINTS),
        ensembles=ensembles(),
    output:
        FIGURES,
    log:
        "logs/figures.log",
    conda:
        "../../envs/fieldflow.yaml"
    script:
        "../scripts/figures.py"
