"""Snakemake script: results/tables/free_energy.csv (rule free_energy)."""

from fieldflow.stages import free_energy as stage
from fieldflow.stages import log_to

log_to(snakemake.log[0])
paths = stage.paths_from(snakemake.params.paths)
nodes, sampler = snakemake.params.nodes, snakemake.params.sampler
stage.free_energy_stage(list(snakemake.input.flows), paths, nodes, sampler, snakemake.output.table)
