# Observables with Gamma-method errors, the contract tables, and the figures.


rule observables:
    input:
        ensemble="results/ensembles/{sampler}/{point}.zarr",
    output:
        table="results/observables/{sampler}/{point}.csv",
        reweighted="results/observables/{sampler}/{point}.reweighted.csv",
        correlator="results/observables/{sampler}/{point}.correlator.csv",
        tunnelling="results/observables/{sampler}/{point}.tunnelling.csv",
        histogram="results/observables/{sampler}/{point}.histogram.csv",
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


rule study:
    input:
        observables="results/tables/observables.csv",
        samplers="results/tables/samplers.csv",
        reweighted=expand("results/observables/{sampler}/{point}.reweighted.csv", sampler=SAMPLERS, point=POINTS),
        correlators=expand("results/observables/{sampler}/{point}.correlator.csv", sampler=SAMPLERS, point=POINTS),
        tunnelling=expand("results/observables/{sampler}/{point}.tunnelling.csv", sampler=SAMPLERS, point=POINTS),
        histograms=expand("results/observables/{sampler}/{point}.histogram.csv", sampler=SAMPLERS, point=POINTS),
    output:
        **STUDY_TABLES,
    log:
        "logs/study.log",
    conda:
        "../../envs/fieldflow.yaml"
    script:
        "../scripts/study.py"


rule transfer:
    input:
        runs=[path for run in transfer_runs() for path in
              (run["transferred"], run["scratch"], run["source_model"])],
    output:
        table="results/tables/transfer.csv",
    params:
        runs=transfer_runs(),
    log:
        "logs/transfer.log",
    conda:
        "../../envs/fieldflow.yaml"
    script:
        "../scripts/transfer.py"


rule figures:
    input:
        transfer=["results/tables/transfer.csv"] if TRANSFERRED else [],
        observables="results/tables/observables.csv",
        samplers="results/tables/samplers.csv",
        histories=expand("results/training/{flow}/{point}.csv", flow=FLOWS, point=POINTS),
        ensembles=ensembles(),
        **STUDY_TABLES,
    output:
        figure_outputs(),
    params:
        transfer_runs=transfer_runs(),
    log:
        "logs/figures.log",
    conda:
        "../../envs/fieldflow.yaml"
    script:
        "../scripts/figures.py"
