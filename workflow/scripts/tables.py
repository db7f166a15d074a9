"""Snakemake script: gather the contract tables (rule tables)."""

from fieldflow.stages import log_to, tables_stage

log_to(snakemake.log[0])
tables_stage(
    observable_tables=list(snakemake.input.observables),
    ensemble_paths=list(snakemake.input.ensembles),
    observables_path=snakemake.output.observables,
    samplers_path=snakemake.output.samplers,
    parameters_path=snakemake.output.parameters,
)
