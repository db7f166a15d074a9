"""What the study tables share: the point columns, sampler kinds, and the wall-clock cost
of an update and of an effectively independent sample."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from fieldflow.errors import ResultFileError
from fieldflow.tunnelling import tau_int_lower_bound

#: The columns that name a point of a φ⁴ study; any theory's are the columns of its tables
#: before ``sampler`` (:func:`fieldflow.study.roles.point_columns`).
POINT = ["L", "s", "lam"]
#: Number of independent samples over which a flow's training time is amortised.
AMORTISATION = {"cost_1e4": 1e4, "cost_1e6": 1e6}
#: Relative error of a job's seconds per update beyond the spread of its own batches: two
#: smoke studies run at once on 2 cores (load 7) gave CPU-time costs per update within
#: 1 % for the Markov chains but 13-34 % apart for the flows, whose within-job errors
#: were 1-10 % (docs/decisions.md).
TIMING_SYSTEMATIC = 0.25


def sampler_kinds(samplers: pd.DataFrame) -> dict[str, str]:
    """``{sampler: kind}`` from the samplers table (columns ``sampler`` and ``kind``)."""
    return dict(zip(samplers["sampler"], samplers["kind"], strict=True))


def kind_of(kinds: dict[str, str], sampler: str) -> str:
    """The kind of ``sampler``; a :class:`ResultFileError` if samplers.csv lacks it."""
    if sampler not in kinds:
        raise ResultFileError(f"sampler {sampler!r} has observables but no row in samplers.csv")
    return kinds[sampler]


def reliable(row: tuple) -> bool:
    """An estimate's ``reliable`` flag (tables without the column count as reliable)."""
    flag = getattr(row, "reliable", True)
    return bool(flag) if not pd.isna(flag) else False


def point_text(row: tuple, point: list[str]) -> str:
    """The point of a table row in words, e.g. ``L=8 s=-4 lam=6`` or ``L=8 beta=2``."""
    return " ".join(
        f"{name}={int(getattr(row, name))}" if name == "L" else f"{name}={getattr(row, name):g}"
        for name in point
    )


def seconds_per_sample(r: tuple) -> tuple[float, float]:
    """(t, δt) per update of a samplers.csv row: its timed ``seconds_per_update``, else
    the job's mean (per stored draw; older ensembles were never thinned).

    δt adds :data:`TIMING_SYSTEMATIC` · t in quadrature to the error from the spread of
    the job's timed batches, which does not see what differs from one job to the next.
    """
    timed = float(getattr(r, "seconds_per_update", math.nan))
    if math.isfinite(timed):
        within = float(getattr(r, "seconds_per_update_error", math.nan))
        return timed, math.hypot(within, TIMING_SYSTEMATIC * timed)
    return r.sample_seconds / r.n_samples, math.nan


def relative(error: float, value: float) -> float:
    """δx/|x|; NaN where x is zero or not finite."""
    return error / abs(value) if value != 0 and math.isfinite(value) else math.nan


def independent_cost(
    per_update: float, per_update_error: float, tau: float, tau_error: float
) -> tuple[float, float]:
    """(c, δc): the seconds per effectively independent sample, c = t · 2 τ_int.

    δc = c · sqrt((δτ/τ)² + (δt/t)²) from the errors of τ_int and of the seconds per
    update t.
    """
    cost = per_update * 2.0 * tau
    return cost, cost * math.hypot(relative(tau_error, tau), relative(per_update_error, per_update))


def order_tau(crossing: Any, tau: float, tau_error: float) -> tuple[float, float, bool]:
    """(τ, δτ, bounded): the τ_int to price the order parameter with (M, Q), one ensemble.

    ``crossing`` is the ensemble's tunnelling row (:mod:`fieldflow.tunnelling`: ``bound``,
    ``n_chains``, ``n_draws``, ``thin``), None if there is none; ``tau`` ± ``tau_error``
    the Γ-method's τ_int of the order parameter. Where no chain changed sector in nN
    updates (``bound`` = ``lower``) the Γ-method has seen the fluctuations inside one
    sector only (of an integer Q: none, τ_int NaN), while the true τ_int exceeds nN/6 at
    95% confidence (:func:`~fieldflow.tunnelling.tau_int_lower_bound`): τ = max(τ_Γ, nN/6)
    with δτ NaN, a lower bound, so that a frozen chain never looks cheaper than it is.
    Otherwise (τ_Γ, δτ_Γ), not a bound. Every study table that prices the order parameter
    takes its τ from here (tunnelling.csv's ``tau_m``, and scaling.csv's where the cost
    observable is the order parameter, U(1)'s ``tau_q``).
    """
    if crossing is None or getattr(crossing, "bound", "") != "lower":
        return tau, tau_error, False
    thin = getattr(crossing, "thin", 1)  # absent (NaN) in files before session 5
    updates = int(crossing.n_chains) * int(crossing.n_draws) * (int(thin) if pd.notna(thin) else 1)
    bound = tau_int_lower_bound(updates)
    return (tau if tau > bound else bound), math.nan, True
