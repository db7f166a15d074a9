"""Gathering stages: the per-ensemble tables into the contract tables of results/tables,
and those into the study-level tables of :mod:`fieldflow.study`."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from fieldflow import analysis, errors, reader, samplers, study
from fieldflow.stages.observables import HISTOGRAM_COLUMNS, OBSERVABLE_COLUMNS, TUNNELLING_COLUMNS

log = logging.getLogger(__name__)

SAMPLER_COLUMNS = [
    "L",
    "s",
    "lam",
    "sampler",
    "acceptance",
    "ess",
    "train_seconds",
    "sample_seconds",
    "n_samples",
    "kind",
    "n_chains",
    "n_proposals",
    "step_size",
    "n_leapfrog",
    "trajectory_length",
    "local_sweeps",
    "variant",
    "train_steps",
    "parameters",
    "discretisation_error",
    "seconds_per_update",
    "seconds_per_update_error",
    "thin",
]


def tables_stage(
    observable_tables: list[str | Path],
    ensemble_paths: list[str | Path],
    observables_path: str | Path,
    samplers_path: str | Path,
    parameters_path: str | Path | None = None,
) -> None:
    """Gather per-ensemble results into results/tables/{observables,samplers}.csv.

    With ``parameters_path``, also write each flow's parameter count per lattice size.
    """
    frames = [pd.read_csv(path) for path in observable_tables]
    for path, frame in zip(observable_tables, frames, strict=True):
        missing = [column for column in OBSERVABLE_COLUMNS if column not in frame]
        if missing:
            raise errors.ResultFileError(
                f"{path} lacks the columns {missing} (written by an older "
                "fieldflow): rerun with --forcerun observables"
            )
    observables = pd.concat(frames, ignore_index=True)[OBSERVABLE_COLUMNS]
    rows = []
    for path in ensemble_paths:
        dataset = reader.read_ensemble(path)
        row = {key: dataset.attrs.get(key, np.nan) for key in SAMPLER_COLUMNS}
        # Ensembles written before samplers declared a kind.
        row["kind"] = dataset.attrs.get("kind") or samplers.kind(dataset.attrs["sampler"])
        row["n_samples"] = dataset.sizes["chain"] * dataset.sizes["draw"]
        row["n_chains"] = dataset.sizes["chain"]
        rows.append(row)
    table = pd.DataFrame(rows, columns=SAMPLER_COLUMNS)
    for frame, path in ((observables, observables_path), (table, samplers_path)):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        frame.sort_values(["L", "s", "lam", "sampler"], kind="stable").to_csv(path, index=False)
    if parameters_path is not None:
        flows = table[table["kind"] == "flow"][["sampler", "L", "parameters"]]
        flows = flows.drop_duplicates().sort_values(["sampler", "L"])
        flows.astype({"parameters": int}).to_csv(parameters_path, index=False)


def study_stage(
    observables_path: str | Path,
    samplers_path: str | Path,
    reweighted_tables: list[str | Path],
    correlator_tables: list[str | Path],
    outputs: dict[str, str | Path],
    tunnelling_tables: Sequence[str | Path] = (),
    histogram_tables: Sequence[str | Path] = (),
) -> list[str]:
    """The study-level tables of :mod:`fieldflow.study`, from the gathered contract tables.

    ``outputs`` maps ``reweighting``, ``correlators``, ``agreement``, ``scaling``,
    ``exponents``, ``crossover``, ``tunnelling`` and ``magnetization_histograms`` to their
    CSV paths; the last two gather the per-ensemble ``tunnelling_tables`` and
    ``histogram_tables`` of :func:`observables_stage`. Pulls beyond 4σ (against a
    reference, and of ⟨M⟩ against 0) are logged as warnings and returned.
    """
    observables = pd.read_csv(observables_path)
    sampler_table = pd.read_csv(samplers_path)
    kinds = study.sampler_kinds(sampler_table)
    frames = [
        f for f in map(pd.read_csv, reweighted_tables) if not f.empty
    ]  # empty for Markov chains
    reweighted = (
        pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=OBSERVABLE_COLUMNS)
    )
    point = ["L", "s", "lam", "sampler", "observable"]
    comparison = reweighted[[*point, "value", "error"]].merge(
        observables[[*point, "value", "error"]], on=point, suffixes=("_rw", "_mh")
    )
    comparison["difference_sigma"] = analysis.pull(
        comparison["value_rw"],
        comparison["error_rw"],
        comparison["value_mh"],
        comparison["error_mh"],
    )
    correlators = pd.concat([pd.read_csv(path) for path in correlator_tables], ignore_index=True)
    agreement = study.agreement(observables, kinds, reweighted)
    scaling = study.scaling(observables, sampler_table)
    crossings = _gather(tunnelling_tables, TUNNELLING_COLUMNS)
    tables = {
        "reweighting": comparison,
        "correlators": correlators,
        "agreement": agreement,
        "scaling": scaling,
        "exponents": study.dynamic_exponents(scaling),
        "crossover": study.crossovers(scaling),
        "tunnelling": study.tunnelling(crossings, observables, sampler_table),
        "magnetization_histograms": _gather(histogram_tables, HISTOGRAM_COLUMNS),
    }
    for name, frame in tables.items():
        Path(outputs[name]).parent.mkdir(parents=True, exist_ok=True)
        frame.to_csv(outputs[name], index=False)
    for r in observables[~observables["reliable"].astype(bool)].itertuples():
        log.warning(
            "unreliable: %s %s at L=%d s=%g lam=%g: %s",
            r.sampler,
            r.observable,
            r.L,
            r.s,
            r.lam,
            r.reason,
        )
    for r in tables["exponents"].itertuples():
        log.info(
            "%s: tau_int(%s) ~ xi2^z, z = %.2f +- %.2f (chi2/dof %.2f, %d points)",
            r.sampler,
            r.observable,
            r.z,
            r.z_error,
            r.chi2_dof,
            r.n_points,
        )
    for r in tables["tunnelling"][tables["tunnelling"]["bound"] == "lower"].itertuples():
        log.info(
            "%s at L=%d s=%g lam=%g: no crossing between the vacua; tau_int(M) > %.0f",
            r.sampler,
            r.L,
            r.s,
            r.lam,
            r.tau_m,
        )
    return study.report_large_pulls(agreement) + study.report_stuck(tables["tunnelling"])


def _gather(paths: Sequence[str | Path], columns: list[str]) -> pd.DataFrame:
    """The per-ensemble CSV files at ``paths`` as one table (``columns`` if there are none)."""
    frames = [pd.read_csv(path) for path in paths]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)
