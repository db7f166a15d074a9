"""Snakemake script: the training time saved by init_from (rule transfer)."""

from fieldflow.stages import log_to, transfer_stage

log_to(snakemake.log[0])
transfer_stage(runs=list(snakemake.params.runs), table_path=snakemake.output.table)
