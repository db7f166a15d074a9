# The Markov-chain baselines (config `mcmc`) at every point, one rule for all of them.


rule mcmc:
    output:
        ensemble=directory("results/ensembles/{mcmc}/{point}.zarr"),
    log:
        "logs/mcmc/{mcmc}/{point}.log",
    benchmark:
        "results/benchmarks/mcmc/{mcmc}/{point}.tsv"
    params:
        point=point_params,
        settings=lambda w: fieldflow.config.canonical(config[w.mcmc]),
        seed=lambda w: fieldflow.config.job_seed(config, w.mcmc, w.point),
    threads: config["threads"]
    conda:
        "../../envs/fieldflow.yaml"
    script:
        "../scripts/mcmc.py"
