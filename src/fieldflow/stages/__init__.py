"""The pipeline's stages as plain functions over paths, so each workflow script is thin.

Each stage reads its inputs, calls the library and writes its outputs; none keeps state
between calls. The Snakemake rules in ``workflow/rules`` call these through their scripts:

- :mod:`~fieldflow.stages.training`: train a flow, tabulate what transfer saved;
- :mod:`~fieldflow.stages.sampling`: a flow's chains and the Markov-chain baselines;
- :mod:`~fieldflow.stages.observables`: the estimates of one ensemble;
- :mod:`~fieldflow.stages.tables`: the contract tables and the study's tables;
- :mod:`~fieldflow.stages.free_energy`: log Z of the flows and by thermodynamic integration;
- :mod:`~fieldflow.stages.jobs`: what every job shares (its log, device and point).
"""

from fieldflow.primaries import ensemble_primaries, stored_primaries
from fieldflow.stages.free_energy import free_energy_stage
from fieldflow.stages.jobs import log_to, point_of, resolve_device, script_setup
from fieldflow.stages.observables import observables_stage
from fieldflow.stages.sampling import mcmc_stage, sample_flow_stage
from fieldflow.stages.tables import study_stage, tables_stage
from fieldflow.stages.training import train_stage, transfer_stage

__all__ = [
    "ensemble_primaries",
    "free_energy_stage",
    "log_to",
    "mcmc_stage",
    "observables_stage",
    "point_of",
    "resolve_device",
    "sample_flow_stage",
    "script_setup",
    "stored_primaries",
    "study_stage",
    "tables_stage",
    "train_stage",
    "transfer_stage",
]
