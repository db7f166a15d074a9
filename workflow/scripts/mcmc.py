"""Snakemake script: the HMC baseline at one point (rule hmc)."""

import torch

from fieldflow.stages import hmc_stage, log_to

log_to(snakemake.log[0])
torch.set_num_threads(snakemake.threads)
hmc_stage(
    point=snakemake.params.point,
    settings=dict(snakemake.params.hmc),
    seed=snakemake.params.seed,
    ensemble_path=snakemake.output.ensemble,
)
