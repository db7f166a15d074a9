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
    benchmark:
        "results/benchmarks/observables/{sampler}/{point}.tsv"
    params:
        S=config["analysis"]["S"],
    # One thread, not config `threads`: Snakemake passes it on as OMP_NUM_THREADS, and the
    # Gamma-method sums then keep the order that makes every table bit-identical.
    threads: 1
    conda:
        "../../envs/fieldflow.yaml"
    script:
        "../scripts/observables.py"


rule tables:
    input:
        observables=per_ensemble(""),
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
        reweighted=per_ensemble(".reweighted"),
        correlators=per_ensemble(".correlator"),
        tunnelling=per_ensemble(".tunnelling"),
        histograms=per_ensemble(".histogram"),
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
        runs=[
            path
            for run in transfer_runs()
            for path in (run["transferred"], run["scratch"], run["source_model"])
        ],
    output:
        table="results/tables/transfer.csv",
    log:
        "logs/transfer.log",
    params:
        runs=transfer_runs(),
    conda:
        "../../envs/fieldflow.yaml"
    script:
        "../scripts/transfer.py"


rule figures:
    input:
        **STUDY_TABLES,
        free_energy="results/tables/free_energy.csv",
        transfer=["results/tables/transfer.csv"] if TRANSFERRED else [],
        observables="results/tables/observables.csv",
        samplers="results/tables/samplers.csv",
        histories=expand("results/training/{flow}/{point}.csv", flow=FLOWS, point=POINTS),
        ensembles=ensembles(),
    output:
        figure_outputs(),
    log:
        "logs/figures.log",
    params:
        transfer_runs=transfer_runs(),
    conda:
        "../../envs/fieldflow.yaml"
    script:
        "../scripts/figures.py"
