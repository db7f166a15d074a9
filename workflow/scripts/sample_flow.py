"""Snakemake script: flow proposals + independence Metropolis-Hastings (rule sample_flow)."""

from fieldflow.stages import sample_flow_stage, script_setup

script_setup(snakemake)
sample_flow_stage(
    model_path=snakemake.input.model,
    point=snakemake.params.point,
    sampling=dict(snakemake.params.sampling),
    device=snakemake.params.device,
    seed=snakemake.params.seed,
    ensemble_path=snakemake.output.ensemble,
    sampler=snakemake.wildcards.flow,
)
