"""Gathering stages: the per-ensemble tables into the contract tables of results/tables,
and those into the study-level tables of :mod:`fieldflow.study`.

Any theory's study: the tables start with its point columns (φ⁴: L, s, lam; U(1): L,
beta; :func:`fieldflow.stages.observables.columns_for`), read off the ensembles and the
per-ensemble tables. A study is of one theory: tables of two are refused, naming them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from fieldflow import analysis, errors, reader, samplers, study
from fieldflow.stages.observables import (
    HISTOGRAM_COLUMNS,
    OBSERVABLE_COLUMNS,
    TUNNELLING_COLUMNS,
    columns_for,
)
from fieldflow.study.common import point_text
from fieldflow.theory import PHI4, Theory

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
    The columns start with the point columns of the study's theory, that of every
    ensemble and every table (:func:`_one_theory`); φ⁴'s are DESIGN.md's.
    """
    frames = [pd.read_csv(path) for path in observable_tables]
    theory = _one_theory(
        {str(path): _theory(f) for path, f in zip(observable_tables, frames, strict=True)}
    )
    observable_columns = columns_for(OBSERVABLE_COLUMNS, theory)
    sampler_columns = columns_for(SAMPLER_COLUMNS, theory)
    for path, frame in zip(observable_tables, frames, strict=True):
        missing = [column for column in observable_columns if column not in frame]
        if missing:
            raise errors.ResultFileError(
                f"{path} lacks the columns {missing} (written by an older "
                "fieldflow): rerun with --forcerun observables"
            )
    observables = pd.concat(frames, ignore_index=True)[observable_columns]
    rows = []
    for path in ensemble_paths:
        dataset = reader.read_ensemble(path)
        if reader.theory_of(dataset) is not theory:
            _one_theory({str(path): reader.theory_of(dataset), "the observables": theory})
        row = {key: dataset.attrs.get(key, np.nan) for key in sampler_columns}
        # Ensembles written before samplers declared a kind.
        row["kind"] = dataset.attrs.get("kind") or samplers.kind(dataset.attrs["sampler"])
        row["n_samples"] = dataset.sizes["chain"] * dataset.sizes["draw"]
        row["n_chains"] = dataset.sizes["chain"]
        rows.append(row)
    table = pd.DataFrame(rows, columns=sampler_columns)
    order = [*study.point_columns(table), "sampler"]
    for frame, path in ((observables, observables_path), (table, samplers_path)):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        frame.sort_values(order, kind="stable").to_csv(path, index=False)
    if parameters_path is not None:
        flows = table[table["kind"] == "flow"][["sampler", "L", "parameters"]]
        flows = flows.drop_duplicates().sort_values(["sampler", "L"])
        flows.astype({"parameters": int}).to_csv(parameters_path, index=False)


def _theory(frame: pd.DataFrame) -> Theory | None:
    """The theory of a per-ensemble table by its point columns; None where they are not
    one theory's (then the check of its columns names what it lacks)."""
    try:
        return study.theory_of(frame)
    except errors.ResultFileError:
        return None


def _one_theory(theories: dict[str, Theory | None]) -> Theory:
    """The one theory of a study's files (path: its theory or None); φ⁴ where none has one.

    Raises:
        ResultFileError: files of two theories, naming one of each.
    """
    by_name = {t.name: (path, t) for path, t in theories.items() if t is not None}
    if len(by_name) > 1:
        named = ", ".join(f"{path} ({name})" for name, (path, _) in sorted(by_name.items()))
        raise errors.ResultFileError(f"a study is of one theory, but its files are not: {named}")
    return next(iter(by_name.values()))[1] if by_name else PHI4


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
    theory = _one_theory(
        {
            str(observables_path): study.theory_of(observables),
            str(samplers_path): study.theory_of(sampler_table),
        }
    )
    kinds = study.sampler_kinds(sampler_table)
    frames = [
        f for f in map(pd.read_csv, reweighted_tables) if not f.empty
    ]  # empty for Markov chains
    reweighted = (
        pd.concat(frames, ignore_index=True)
        if frames
        else pd.DataFrame(columns=columns_for(OBSERVABLE_COLUMNS, theory))
    )
    point = [*study.point_columns(observables), "sampler", "observable"]
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
    crossings = _gather(tunnelling_tables, columns_for(TUNNELLING_COLUMNS, theory))
    # The order parameter's τ_int is a bound where a chain never changed sector.
    scaling = study.scaling(observables, sampler_table, crossings)
    tables = {
        "reweighting": comparison,
        "correlators": correlators,
        "agreement": agreement,
        "scaling": scaling,
        "exponents": study.dynamic_exponents(scaling),
        "crossover": study.crossovers(scaling),
        "tunnelling": study.tunnelling(crossings, observables, sampler_table),
        "magnetization_histograms": _gather(
            histogram_tables, columns_for(HISTOGRAM_COLUMNS, theory)
        ),
    }
    for name, frame in tables.items():
        Path(outputs[name]).parent.mkdir(parents=True, exist_ok=True)
        frame.to_csv(outputs[name], index=False)
    at = study.point_columns(observables)
    for r in observables[~observables["reliable"].astype(bool)].itertuples():
        log.warning(
            "unreliable: %s %s at %s: %s", r.sampler, r.observable, point_text(r, at), r.reason
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
    roles, symbol = study.roles_of(observables), theory.order_parameter.symbol
    for r in tables["tunnelling"][tables["tunnelling"]["bound"] == "lower"].itertuples():
        log.info(
            "%s at %s: no %s change; tau_int(%s) > %.0f",
            r.sampler,
            point_text(r, at),
            theory.order_parameter.change,
            symbol,
            getattr(r, roles.column("tau_m")),
        )
    return study.report_large_pulls(agreement) + study.report_stuck(tables["tunnelling"])


def _gather(paths: Sequence[str | Path], columns: list[str]) -> pd.DataFrame:
    """The per-ensemble CSV files at ``paths`` as one table (``columns`` if there are none)."""
    frames = [pd.read_csv(path) for path in paths]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)
