"""Snakemake script: agreement, scaling, tunnelling and correlator tables (rule study)."""

from fieldflow.stages import log_to, study_stage

log_to(snakemake.log[0])
study_stage(
    observables_path=snakemake.input.observables,
    samplers_path=snakemake.input.samplers,
    reweighted_tables=list(snakemake.input.reweighted),
    correlator_tables=list(snakemake.input.correlators),
    outputs=dict(snakemake.output),
    tunnelling_tables=list(snakemake.input.tunnelling),
    histogram_tables=list(snakemake.input.histograms),
)
