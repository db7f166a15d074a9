# The free energy: log Z of every flow from its raw proposals, and its check by
# thermodynamic integration with a Markov-chain sampler (config free_energy).


rule integration:
    output:
        ensemble=directory("results/integration/{point}/{node}.zarr"),
    log:
        "logs/integration/{point}/{node}.log",
    benchmark:
        "results/benchmarks/integration/{point}/{node}.tsv"
    params:
        point=integration_node,
        sampler=(config["free_energy"] or {}).get("sampler"),
        settings=lambda w: fieldflow.config.canonical(fieldflow.config.integration_settings(config)),
        seed=lambda w: fieldflow.config.job_seed(config, "integration", w.point, w.node),
    threads: config["threads"]
    conda:
        "../../envs/fieldflow.yaml"
    script:
        "../scripts/mcmc.py"


rule free_energy:
    input:
        flows=expand("results/ensembles/{flow}/{point}.zarr", flow=FLOWS, point=POINTS),
        nodes=[p for nodes in integration_ensembles().values() for p in nodes.values()],
    output:
        table="results/tables/free_energy.csv",
    log:
        "logs/free_energy.log",
    params:
        paths={key: vars(path) for key, path in INTEGRATION_PATHS.items()},
        nodes=integration_ensembles(),
        sampler=(config["free_energy"] or {}).get("sampler"),
    conda:
        "../../envs/fieldflow.yaml"
    script:
        "../scripts/free_energy.py"
