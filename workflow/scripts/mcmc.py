"""Snakemake script: one Markov-chain baseline at one point (rule mcmc)."""

import torch

from fieldflow.stages import log_to, mcmc_stage

log_to(snakemake.log[0])
torch.set_num_threads(snakemake.threads)
mcmc_stage(
    sampler=snakemake.wildcards.mcmc,
    point=snakemake.params.point,
    settings=dict(snakemake.params.settings),
    seed=snakemake.params.seed,
    ensemble_path=snakemake.output.ensemble,
)
