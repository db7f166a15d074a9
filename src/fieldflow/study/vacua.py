"""The tunnelling table: crossings between the vacua and the cost of an independent
sample of M, per point and sampler, from the per-ensemble rows of :mod:`fieldflow.tunnelling`."""

from __future__ import annotations

import logging
import math

import pandas as pd

from fieldflow.analysis import pull
from fieldflow.errors import ResultFileError
from fieldflow.study import common
from fieldflow.study.common import independent_cost, order_tau, point_text
from fieldflow.study.pulls import PULL_LIMIT
from fieldflow.study.roles import ROLES, point_columns, roles_of, theory_of_columns

log = logging.getLogger(__name__)

#: φ⁴'s columns; another theory's start with its point columns and name the order
#: parameter's (:class:`~fieldflow.study.roles.StudyRoles`: U(1) ``tau_q``, ``charge``,
#: ``seconds_per_independent_q``).
TUNNELLING_COLUMNS = [
    "L",
    "s",
    "lam",
    "sampler",
    "kind",
    "crossings",
    "per_1000_updates",
    "per_second",
    "tunnel_updates",
    "tau_m",
    "tau_m_error",
    "magnetization",
    "magnetization_error",
    "pull",
    "seconds_per_independent_m",
    "seconds_per_independent_m_error",
    "bound",
    "cheapest",
    "reliable",
]


def tunnelling(
    crossings: pd.DataFrame, observables: pd.DataFrame, samplers: pd.DataFrame
) -> pd.DataFrame:
    """Tunnelling between the vacua and the cost of an independent sample of M, per point
    and sampler, in the columns :data:`TUNNELLING_COLUMNS`.

    For another theory the same of its order parameter, by its
    :class:`~fieldflow.study.roles.StudyRoles` (U(1): between topological sectors, of Q,
    the ``topological_charge`` rows), in its point columns and column names.

    Args:
        crossings: the per-ensemble tunnelling rows (``crossings``, ``per_1000_updates``,
            ``per_second``, ``tunnel_updates``, ``n_chains``, ``n_draws``, ``bound``) of
            :mod:`fieldflow.tunnelling`.
        observables: the observables table; its ``magnetization`` rows give ⟨M⟩/V, its
            error, τ_int (``tau_m``) and ``reliable``.
        samplers: the samplers table, for ``kind`` and the seconds per update.

    ``pull`` = ⟨M⟩/V over its error (the exact value is 0). Where no crossing was seen
    (``bound`` = ``lower``), ``tunnel_updates``, ``tau_m`` = max(τ_Γ, nN/6) (its error NaN)
    and ``seconds_per_independent_m`` are 95% lower bounds, not estimates: the Γ-method's
    τ_int of a chain in one vacuum measures only the fluctuations inside it
    (:func:`~fieldflow.study.common.order_tau`, shared with :func:`~fieldflow.study.scaling`).
    ``seconds_per_independent_m`` = t · 2 τ_m with t the seconds per update of
    :func:`~fieldflow.study.scaling` and the error from τ_m's and t's in quadrature.
    ``cheapest`` marks, per point, the lowest ``seconds_per_independent_m`` among rows
    without a bound.
    """
    point_names = point_columns(samplers)
    roles = roles_of(samplers)
    obs = observables[observables["observable"] == roles.order]
    obs = obs.set_index([*point_names, "sampler"])
    timing = samplers.set_index([*point_names, "sampler"])

    def get(key: tuple, column: str) -> float:
        return float(obs.loc[key, column]) if key in obs.index and column in obs else math.nan

    rows = []
    for r in crossings.itertuples(index=False):
        point = tuple(getattr(r, name) for name in point_names)
        key = (*point, r.sampler)
        if key not in timing.index:
            raise ResultFileError(
                f"sampler {r.sampler!r} at {point_text(r, point_names)} "
                "has a tunnelling row but no row in samplers.csv"
            )
        sampler_row = timing.loc[[key]].reset_index().iloc[0]
        tau, tau_error, bounded = order_tau(r, get(key, "tau_int"), get(key, "tau_int_error"))
        per_update, per_update_error = common.seconds_per_sample(sampler_row)
        cost, cost_error = independent_cost(per_update, per_update_error, tau, tau_error)
        value, error = get(key, "value"), get(key, "error")
        rows.append(
            {
                **dict(zip(point_names, point, strict=True)),
                "sampler": r.sampler,
                "kind": sampler_row["kind"],
                "crossings": r.crossings,
                "per_1000_updates": r.per_1000_updates,
                "per_second": r.per_second,
                "tunnel_updates": r.tunnel_updates,
                "tau_m": tau,
                "tau_m_error": tau_error,
                "magnetization": value,
                "magnetization_error": error,
                "pull": pull(value, error, 0.0),
                "seconds_per_independent_m": cost,
                "seconds_per_independent_m_error": cost_error,
                "bound": "lower" if bounded else "",
                "cheapest": False,
                "reliable": get(key, "reliable") == 1.0,
            }
        )
    table = pd.DataFrame(rows, columns=[*point_names, *TUNNELLING_COLUMNS[3:]])
    table = table.sort_values([*point_names, "sampler"], kind="stable", ignore_index=True)
    candidates = table[(table["bound"] != "lower") & table["seconds_per_independent_m"].notna()]
    if not candidates.empty:
        best = candidates.groupby(point_names)["seconds_per_independent_m"].idxmin()
        table.loc[best.to_numpy(), "cheapest"] = True
    return table.rename(columns=dict(roles.names))


def report_stuck(table: pd.DataFrame, limit: float = PULL_LIMIT) -> list[str]:
    """Warn about every tunnelling row whose order parameter (⟨M⟩/V, ⟨Q⟩) is more than
    ``limit`` errors from 0."""
    point_names = point_columns(table)
    theory = theory_of_columns(point_names)
    roles, stuck = ROLES[theory.name], theory.order_parameter.stuck
    value, error = roles.column("magnetization"), roles.column("magnetization_error")
    messages = []
    for r in table[table["pull"].abs() > limit].itertuples(index=False):
        messages.append(
            f"{r.sampler} at {point_text(r, point_names)}: {roles.order_text} = "
            f"{getattr(r, value):.4g} ± "
            f"{getattr(r, error):.2g}, pull {r.pull:+.1f} beyond ±{limit:g} with "
            f"{r.crossings} crossings: {stuck}?"
        )
        log.warning(messages[-1])
    return messages
