# The Hybrid Monte Carlo baseline at every point.


rule hmc:
    output:
        ensemble=directory("results/ensembles/hmc/{point}.zarr"),
    log:
        "logs/hmc/{point}.log",
    benchmark:
        "results/benchmarks/hmc/{point}.tsv"
    params:
        point=point_params,
        hmc=config["hmc"],
        seed=lambda w: fieldflow.config.job_seed(config, "hmc", w.point),
    threads: config["threads"]
    conda:
        "../../envs/fieldflow.yaml"
    script:
        "../scripts/hmc.py"
