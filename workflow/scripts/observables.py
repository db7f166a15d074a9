"""Snakemake script: observables with Gamma-method errors of one ensemble (rule observables)."""

from fieldflow.stages import log_to, observables_stage

log_to(snakemake.log[0])
observables_stage(
    snakemake.input.ensemble,
    snakemake.output.table,
    S=snakemake.params.S,
    reweighted_path=snakemake.output.reweighted,
    correlator_path=snakemake.output.correlator,
    tunnelling_path=snakemake.output.tunnelling,
    histogram_path=snakemake.output.histogram,
)
