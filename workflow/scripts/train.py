"""Snakemake script: train one flow at one point (rule train)."""

from fieldflow.stages import script_setup, train_stage

script_setup(snakemake)
train_stage(
    point=snakemake.params.point,
    family=snakemake.wildcards.flow,
    hyperparameters=dict(snakemake.params.hyperparameters),
    training=dict(snakemake.params.training),
    device=snakemake.params.device,
    seed=snakemake.params.seed,
    model_path=snakemake.output.model,
    history_path=snakemake.output.history,
    checkpoint=snakemake.params.checkpoint,
    init_model=snakemake.input.get("init"),
)
