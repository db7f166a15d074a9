"""Costs of the samplers as the study scales up: τ_int and seconds per independent sample
per point (:func:`scaling`), their growth with ξ₂ (:func:`dynamic_exponents`), and where a
flow becomes cheaper than a baseline (:func:`crossovers`).

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
CROSSOVER_COLUMNS = [
    "sampler",
    "baseline",
    "cost",
    "first_L",
    "largest_L",
    "reliable",
    "verdict",
]
#: A flow is cheaper or dearer than a baseline only by more than this many σ of the
#: difference of their costs (:func:`crossovers`).
CROSSOVER_SIGMA = 2.0


def scaling(observables: pd.DataFrame, samplers: pd.DataFrame) -> pd.DataFrame:
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
      measurement: :func:`crossovers` gives it the relative error
      :data:`~fieldflow.study.common.TIMING_SYSTEMATIC`, on top of δc.

    That is φ⁴ (χ₂, |M|, ξ₂); another theory's observables take their parts by its
    :class:`~fieldflow.study.roles.StudyRoles` (U(1): c from τ_int(Q), beside it
    τ_int(χ_t), no scale), read off the point columns of ``samplers``.
    """
    point_names = point_columns(samplers)
    roles = roles_of(samplers)
    obs = observables.set_index([*point_names, "sampler", "observable"])
    kinds = sampler_kinds(samplers)

    def get(point: tuple, sampler: str | None, observable: str | None, column: str) -> float:
        key = (*point, sampler, observable)
        return float(obs.loc[key, column]) if key in obs.index and column in obs else math.nan

    sources: dict[tuple, str | None] = {}
    rows = []
    for r in samplers.itertuples(index=False):
        point = tuple(getattr(r, name) for name in point_names)
        if point not in sources:
            sources[point] = xi_source(observables, kinds, point, roles.scale)
        source = sources[point]
        tau_chi2 = get(point, r.sampler, roles.cost, "tau_int")
        tau_chi2_error = get(point, r.sampler, roles.cost, "tau_int_error")
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
                "tau_absm": get(point, r.sampler, roles.second, "tau_int"),
                "tau_absm_error": get(point, r.sampler, roles.second, "tau_int_error"),
                "acceptance": r.acceptance,
                "ess": r.ess,
                "train_seconds": r.train_seconds,
                "seconds_per_sample": per_sample,
                "seconds_per_sample_error": per_sample_error,
                "seconds_per_independent": independent,
                "seconds_per_independent_error": independent_error,
                **costs,
                # τ_int and costs are only as good as the chain they come from.
                "reliable": all(
                    get(point, r.sampler, name, "reliable") != 0.0
                    for name in (roles.cost, roles.second)
                ),
            }
        )
    columns = [*point_names, *SCALING_COLUMNS[3:]]
    table = pd.DataFrame(rows, columns=columns)
    table = table.sort_values(["sampler", *point_names], kind="stable", ignore_index=True)
    # In the theory's names, without the scale columns where it has no scale.
    return table.rename(columns=dict(roles.names))[
        [*point_names, *roles.columns(SCALING_COLUMNS[3:])]
    ]


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


def crossovers(table: pd.DataFrame, k: float = CROSSOVER_SIGMA) -> pd.DataFrame:
    """Whether, and from which L, each flow's cost per independent sample beats a baseline's.

    One row per flow, Markov-chain baseline and cost column (sampling only, and each
    amortisation; a baseline is always taken at its sampling cost). At every point (L, s,
    λ), or (L, β), both have, with the flow's cost m ± δm (δm: its
    ``seconds_per_independent_error``, and for the amortised costs also
    :data:`~fieldflow.study.common.TIMING_SYSTEMATIC` times the amortised training time)
    and the baseline's b ± δb, σ = sqrt(δm² + δb²), the flow is

    - *cheaper* if b − m > k σ, *dearer* if m − b > k σ, else *undecided* (also whenever
      a cost or an error is NaN, and whenever either cost comes from an estimate marked
      unreliable, whose error bar its chain cannot support), with k = :data:`CROSSOVER_SIGMA`.

    Over the points at the largest points L (``largest_L``), ``verdict`` is

    - ``crossover`` if the flow is cheaper at all of them; ``first_L`` is then the
      smallest L such that the flow is cheaper at every point with that L or larger (an
      undecided point below it may hide an earlier crossover);
    - ``none`` if it is dearer at any of them: no crossover within this study;
    - ``undecided`` otherwise (an undecided point there, none dearer).

    ``first_L`` is NaN unless the verdict is ``crossover``. The table holds decisions
    only, no timed numbers (those are in the scaling table), so that two runs of one
    study give the same file unless a decision changes. ``reliable``: every cost compared
    comes from a reliable τ_int (:mod:`fieldflow.quality`).
    """
    rows = []
    point = point_columns(table)
    flows, baselines = table[table["kind"] == "flow"], table[table["kind"] == "mcmc"]
    for baseline, reference in baselines.groupby("sampler", sort=True):
        reference = reference.set_index(point)
        for sampler, group in flows.groupby("sampler", sort=False):
            group = group.set_index(point)
            points = group.index.intersection(reference.index).sort_values()
            if points.empty:
                continue
            sizes = np.array([p[0] for p in points], dtype=float)  # L comes first
            mine_error = group.loc[points, "seconds_per_independent_error"].to_numpy()
            theirs = reference.loc[points, "seconds_per_independent"].to_numpy()
            theirs_error = reference.loc[points, "seconds_per_independent_error"].to_numpy()
            both_reliable = group.loc[points, "reliable"].astype(bool) & reference.loc[
                points, "reliable"
            ].astype(bool)
            trusted = bool(
                group.loc[points, "reliable"].all() and reference.loc[points, "reliable"].all()
            )
            for cost in ("seconds_per_independent", *AMORTISATION):
                mine = group.loc[points, cost].to_numpy()
                # The amortised training time is one wall-clock time: the timing floor.
                training = mine - group.loc[points, "seconds_per_independent"].to_numpy()
                systematic = common.TIMING_SYSTEMATIC * training
                sigma = np.hypot(np.hypot(mine_error, systematic), theirs_error)
                # An unreliable cost cannot support a decision either way.
                decidable = both_reliable.to_numpy()
                cheaper = decidable & (theirs - mine > k * sigma)
                dearer = decidable & (mine - theirs > k * sigma)
                verdict, first = _verdict(sizes, cheaper, dearer)
                rows.append([sampler, baseline, cost, first, float(sizes[-1]), trusted, verdict])
    return pd.DataFrame(rows, columns=CROSSOVER_COLUMNS)


def _verdict(sizes: np.ndarray, cheaper: np.ndarray, dearer: np.ndarray) -> tuple[str, float]:
    """(verdict, first_L) of :func:`crossovers` from per-point flags, points sorted by L."""
    top = sizes == sizes[-1]
    if dearer[top].any():
        return "none", math.nan
    if not cheaper[top].all():
        return "undecided", math.nan
    # The smallest L above which no point fails to be decidedly cheaper.
    failing = sizes[~cheaper]
    first = sizes[sizes > failing.max()].min() if failing.size else sizes.min()
    return "crossover", float(first)
