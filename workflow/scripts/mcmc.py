"""Snakemake script: one Markov-chain ensemble at one point (rules mcmc and integration)."""

from fieldflow.stages import mcmc_stage, script_setup

script_setup(snakemake)
params = snakemake.params
mcmc_stage(params.sampler, params.point, dict(params.settings), params.seed, snakemake.output[0])
