"""Snakemake script: one Markov-chain ensemble at one point (rules mcmc and integration)."""

from fieldflow.stages import mcmc_stage, script_setup

script_setup(snakemake)
params = snakemake.params
sampler = snakemake.wildcards.get("mcmc") or params.sampler  # rule mcmc, or rule integration
mcmc_stage(sampler, params.point, dict(params.settings), params.seed, snakemake.output[0])
