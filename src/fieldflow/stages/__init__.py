"""The pipeline's stages as plain functions over paths, so each workflow script is thin.

Each stage reads its inputs, calls the library and writes its outputs; none keeps state
between calls. The Snakemake rules in ``workflow/rules`` call these through their scripts:

- :mod:`~fieldflow.stages.training`: train a flow, tabulate what transfer saved;
- :mod:`~fieldflow.stages.sampling`: a flow's chains and the Markov-chain baselines;
- :mod:`~fieldflow.stages.observables`: the estimates of one ensemble;
- :mod:`~fieldflow.stages.tables`: the contract tables and the study's tables;
- :mod:`~fieldflow.stages.free_energy`: log Z of the flows and by thermodynamic integration;
- :mod:`~fieldflow.stages.jobs`: what every job shares (its log, device and point).

The names below are imported on first use (PEP 562), so a job imports only its own
stage's dependencies: a training job does not load pyerrors, an observables job not the
flows. Every workflow job is a fresh process, and the imports were most of a small job.
"""

from __future__ import annotations

import importlib
from typing import Any

#: Public name → the module that defines it.
_WHERE = {
    "ensemble_primaries": "fieldflow.primaries",
    "stored_primaries": "fieldflow.primaries",
    "free_energy_stage": "fieldflow.stages.free_energy",
    "log_to": "fieldflow.stages.jobs",
    "point_of": "fieldflow.stages.jobs",
    "resolve_device": "fieldflow.stages.jobs",
    "script_setup": "fieldflow.stages.jobs",
    "observables_stage": "fieldflow.stages.observables",
    "mcmc_stage": "fieldflow.stages.sampling",
    "sample_flow_stage": "fieldflow.stages.sampling",
    "study_stage": "fieldflow.stages.tables",
    "tables_stage": "fieldflow.stages.tables",
    "train_stage": "fieldflow.stages.training",
    "transfer_stage": "fieldflow.stages.training",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_WHERE[name]), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *_WHERE])
