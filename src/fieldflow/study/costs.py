"""Costs of the samplers as the study scales up: τ_int and seconds per independent sample
per point (:func:`scaling`) and their growth with ξ₂ (:func:`dynamic_exponents`); where a
flow becomes cheaper than a baseline is :mod:`fieldflow.study.crossover`'s.

Flows and Markov chains are told apart by their ``kind`` (:mod:`fieldflow.samplers`).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from fieldflow import analysis
from fieldflow.study import common
from fieldflow.study.common import AMORTISATION, independent_cost, sampler_kinds
from fieldflow.study.roles import point_columns, roles_of

#: φ⁴'s columns; another theory's start with its point columns and name the τ_int after
#: its observables (:class:`~fieldflow.study.roles.StudyRoles`: U(1) ``tau_q``,
#: ``tau_chi_t``, no ``xi2``).
SCALING_COLUMNS = [
    "L",
    "s",
    "lam",
    "sampler",
    "kind",
    "xi2",
    "xi2_error",
    "tau_chi2",
    "tau_chi2_error",
    "tau_absm",
    "tau_absm_error",
    "acceptance",
    "ess",
    "train_seconds",
    "seconds_per_sample",
    "seconds_per_sample_error",
    "seconds_per_independent",
    "seconds_per_independent_error",
    "cost_1e4",
    "cost_1e6",
    "reliable",
]
EXPONENT_COLUMNS = [
    "sampler",
    "observable",
    "z",
    "z_error",
    "amplitude",
    "chi2_dof",
    "n_points",
    "reliable",
]


def scaling(
    observables: pd.DataFrame, samplers: pd.DataFrame, crossings: pd.DataFrame | None = None
) -> pd.DataFrame:
    """τ_int, acceptance and the cost of an independent sample per point and sampler.

    ξ₂ at a point is one sampler's for every sampler there, so all τ_int are set against
    the same ξ₂: the Markov-chain baseline with the smallest error, else the flow with the
    smallest error (:func:`xi_source`). Costs, in wall-clock seconds:

    - ``seconds_per_sample`` t (± δt): per update (flow proposal, HMC trajectory of one
      chain, cluster update of one chain; τ_int counts updates, thinned or not), the
      median over the run's timed batches, ``seconds_per_update`` of ``samplers.csv``.
      Tables without it (older ensembles) fall back to ``sample_seconds / n_samples``,
      one time of the whole job, with δt NaN.
    - ``seconds_per_independent`` c = t · 2 τ_int(χ₂), per effectively independent
      sample of χ₂, with δc = c · sqrt((δτ/τ)² + (δt/t)²).
    - ``cost_1e4``, ``cost_1e6``: c plus a flow's training time spread over 10⁴ and 10⁶
      independent samples (c itself for a Markov chain). Training is one wall-clock
      measurement: :func:`~fieldflow.study.crossover.crossovers` gives it the relative error
      :data:`~fieldflow.study.common.TIMING_SYSTEMATIC`, on top of δc.

    That is φ⁴ (χ₂, |M|, ξ₂); another theory's observables take their parts by its
    :class:`~fieldflow.study.roles.StudyRoles` (U(1): c from τ_int(Q), beside it
    τ_int(χ_t), no scale), read off the point columns of ``samplers``.

    Where a τ_int column is of the order parameter (U(1)'s ``tau_q``; none of φ⁴'s), it
    comes from :func:`~fieldflow.study.common.order_tau` with the ensemble's row of
    ``crossings`` (the per-ensemble tunnelling rows): from a chain that never changed
    sector, max(τ_Γ, nN/6) with its error NaN, the row's ``bound`` ``lower`` and
    ``reliable`` False, so that c is a lower bound too. Such a table has the column
    ``bound`` before ``reliable`` (:meth:`~fieldflow.study.roles.StudyRoles.columns`).
    """
    point_names = point_columns(samplers)
    roles = roles_of(samplers)
    obs = observables.set_index([*point_names, "sampler", "observable"])
    kinds = sampler_kinds(samplers)
    tunnelled = {} if crossings is None else _by_ensemble(crossings, point_names)

    def get(point: tuple, sampler: str | None, observable: str | None, column: str) -> float:
        key = (*point, sampler, observable)
        return float(obs.loc[key, column]) if key in obs.index and column in obs else math.nan

    def tau(point: tuple, sampler: str, observable: str) -> tuple[float, float, bool]:
        found = get(point, sampler, observable, "tau_int")
        error = get(point, sampler, observable, "tau_int_error")
        if observable != roles.order:
            return found, error, False
        return common.order_tau(tunnelled.get((*point, sampler)), found, error)

    sources: dict[tuple, str | None] = {}
    rows = []
    for r in samplers.itertuples(index=False):
        point = tuple(getattr(r, name) for name in point_names)
        if point not in sources:
            sources[point] = xi_source(observables, kinds, point, roles.scale)
        source = sources[point]
        tau_chi2, tau_chi2_error, cost_bound = tau(point, r.sampler, roles.cost)
        tau_absm, tau_absm_error, second_bound = tau(point, r.sampler, roles.second)
        per_sample, per_sample_error = common.seconds_per_sample(r)
        independent, independent_error = independent_cost(
            per_sample, per_sample_error, tau_chi2, tau_chi2_error
        )
        train = 0.0 if r.kind == "mcmc" or pd.isna(r.train_seconds) else r.train_seconds
        costs = {name: independent + train / n for name, n in AMORTISATION.items()}
        rows.append(
            {
                **dict(zip(point_names, point, strict=True)),
                "sampler": r.sampler,
                "kind": r.kind,
                "xi2": get(point, source, roles.scale, "value"),
                "xi2_error": get(point, source, roles.scale, "error"),
                "tau_chi2": tau_chi2,
                "tau_chi2_error": tau_chi2_error,
                "tau_absm": tau_absm,
                "tau_absm_error": tau_absm_error,
                "acceptance": r.acceptance,
                "ess": r.ess,
                "train_seconds": r.train_seconds,
                "seconds_per_sample": per_sample,
                "seconds_per_sample_error": per_sample_error,
                "seconds_per_independent": independent,
                "seconds_per_independent_error": independent_error,
                **costs,
                "bound": "lower" if cost_bound or second_bound else "",
                # τ_int and costs are only as good as the chain they come from; a bound
                # is not an estimate.
                "reliable": not (cost_bound or second_bound)
                and all(
                    get(point, r.sampler, name, "reliable") != 0.0
                    for name in (roles.cost, roles.second)
                ),
            }
        )
    columns = [*point_names, *SCALING_COLUMNS[3:-1], "bound", "reliable"]
    table = pd.DataFrame(rows, columns=columns)
    table = table.sort_values(["sampler", *point_names], kind="stable", ignore_index=True)
    # In the theory's names, without the scale columns where it has no scale, and without
    # ``bound`` where no τ_int is of the order parameter (φ⁴).
    return table.rename(columns=dict(roles.names))[
        [*point_names, *roles.columns([*SCALING_COLUMNS[3:-1], "bound", "reliable"])]
    ]


def _by_ensemble(crossings: pd.DataFrame, point_names: list[str]) -> dict[tuple, tuple]:
    """The per-ensemble tunnelling rows by (*point, sampler)."""
    return {
        (*(getattr(r, name) for name in point_names), r.sampler): r
        for r in crossings.itertuples(index=False)
    }


def xi_source(
    observables: pd.DataFrame,
    kinds: dict[str, str],
    point: tuple,
    scale: str | None = "correlation_length",
) -> str | None:
    """The sampler whose ξ₂ stands for the point (L, s, lam) in the scaling table.

    Among samplers with a finite ξ₂ there: Markov chains before flows, then a finite
    error before none, then the smaller error, then the name. None if no sampler has one.
    ``point`` is in the point columns of ``observables`` (any theory's); ``scale`` the
    observable that stands for ξ₂, None where the theory has none.
    """
    if scale is None:
        return None
    named = zip(point_columns(observables), point, strict=True)
    at = np.all([observables[name] == value for name, value in named], axis=0)
    rows = observables[at & (observables["observable"] == scale) & observables["value"].notna()]

    def rank(r: tuple) -> tuple:
        finite = math.isfinite(r.error)
        return (kinds.get(r.sampler) != "mcmc", not finite, r.error if finite else 0.0, r.sampler)

    ranked = sorted(rows.itertuples(index=False), key=rank)
    return ranked[0].sampler if ranked else None


#: Exponent fits of :func:`dynamic_exponents`: (``observable`` label, scaling column).
EXPONENT_FITS = (
    ("susceptibility", "tau_chi2"),
    ("abs_magnetization", "tau_absm"),
    ("cost", "seconds_per_independent"),
)


def dynamic_exponents(table: pd.DataFrame) -> pd.DataFrame:
    """Fit y ∝ ξ₂^z per sampler (needs ≥ 2 distinct ξ₂), for each of :data:`EXPONENT_FITS`.

    For τ_int of χ₂ and |M| this is the dynamic exponent per update (trajectory, cluster
    update, proposal). Updates of different samplers cost differently, and ``hmc_tuned``'s
    trajectories lengthen with ξ₂; the ``cost`` row (seconds per independent χ₂ sample,
    error from τ_int's) is the exponent to compare between samplers. ``reliable``: every
    fitted point's τ_int comes from a chain that supports it (:mod:`fieldflow.quality`).
    """
    rows = []
    if "xi2" not in table:  # a theory without a scale (U(1)): nothing to fit against
        return pd.DataFrame(rows, columns=EXPONENT_COLUMNS)
    for sampler, group in table.groupby("sampler", sort=False):
        for observable, tau in EXPONENT_FITS:
            ok = group[(group["xi2"] > 0) & (group[tau] > 0) & (group[f"{tau}_error"] > 0)]
            if ok["xi2"].nunique() < 2:
                continue
            fit = analysis.fit_power_law(
                ok["xi2"], ok[tau], ok[f"{tau}_error"], x_error=ok["xi2_error"].fillna(0.0)
            )
            rows.append(
                [
                    sampler,
                    observable,
                    fit.exponent,
                    fit.exponent_error,
                    fit.amplitude,
                    fit.chi2_dof,
                    fit.n_points,
                    bool(ok["reliable"].all()),
                ]
            )
    return pd.DataFrame(rows, columns=EXPONENT_COLUMNS)
