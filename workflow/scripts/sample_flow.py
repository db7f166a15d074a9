"""Snakemake script: flow proposals + independence Metropolis-Hastings (rule sample_flow)."""

import torch

from fieldflow.stages import log_to, sample_flow_stage

log_to(snakemake.log[0])
torch.set_num_threads(snakemake.threads)
sample_flow_stage(
    model_path=snakemake.input.model,
    point=snakemake.params.point,
    sampling=dict(snakemake.params.sampling),
    device=snakemake.params.device,
    seed=snakemake.params.seed,
    ensemble_path=snakemake.output.ensemble,
    sampler=snakemake.wildcards.flow,
)
