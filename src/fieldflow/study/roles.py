"""Which of a theory's observables play which part in the study tables and figures.

The tables of :mod:`fieldflow.study` are written once for every theory; what differs is
which observable prices an independent sample, which one sets the scale, which one is the
order parameter, and what the columns named after them are called. A study's theory is
read off its tables: their point columns (φ⁴: L, s, lam; U(1): L, beta) are ``L`` and
exactly one theory's parameters (:func:`theory_of_columns`).

These roles belong with the theory (:class:`fieldflow.theory.Theory`); they live here
until it carries them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pandas as pd

from fieldflow.errors import ResultFileError
from fieldflow.theory import THEORIES, Theory


@dataclass(frozen=True)
class StudyRoles:
    """The parts a theory's observables play in the study tables.

    Attributes:
        cost: the observable whose τ_int prices an independent sample, c = t · 2 τ_int
            (φ⁴: χ₂; U(1): Q, the slowest mode once topology freezes).
        second: a second τ_int beside it (φ⁴: |M|; U(1): χ_t).
        scale: the observable τ_int is fitted against, τ ∝ scale^z (φ⁴: ξ₂); None where the
            study has none (U(1)), and then no exponents and no scale columns.
        order: the observable of the order parameter, exactly 0 by symmetry, whose τ_int
            counts tunnelling (φ⁴: ⟨M⟩/V; U(1): ⟨Q⟩).
        order_text: the order parameter's estimate in messages (``<M>/V``, ``<Q>``).
        names: the φ⁴ names of the table columns that this theory calls otherwise.
        verdict_per_coupling: whether crossover.csv gives a verdict per coupling (U(1)'s
            β, along L within each) instead of one along L over the whole study (φ⁴'s lines
            of constant physics, whose couplings change with L).
    """

    cost: str
    second: str
    scale: str | None
    order: str
    order_text: str
    names: Mapping[str, str] = field(default_factory=dict)
    verdict_per_coupling: bool = False

    def column(self, name: str) -> str:
        """This theory's name of the φ⁴ column ``name`` (``tau_chi2`` → ``tau_q`` for U(1))."""
        return self.names.get(name, name)

    @property
    def prices_order(self) -> bool:
        """Whether a τ_int of the scaling table is of the order parameter (U(1)'s Q), whose
        τ_int is then a bound where no chain changed sector (φ⁴'s χ₂ and |M| are not)."""
        return self.order in (self.cost, self.second)

    def columns(self, names: Sequence[str]) -> list[str]:
        """:meth:`column` of each of ``names``, without the scale columns where there is no
        scale, and without ``bound`` where the table prices no order parameter."""
        kept = [
            n
            for n in names
            if (self.scale is not None or n not in SCALE_COLUMNS)
            and (self.prices_order or n not in ORDER_COLUMNS)
        ]
        return [self.column(n) for n in kept]


#: The φ⁴ columns of the scale, left out where a theory has none.
SCALE_COLUMNS = ("xi2", "xi2_error")
#: The columns of a scaling table that prices the order parameter, left out where it
#: does not (:attr:`StudyRoles.prices_order`).
ORDER_COLUMNS = ("bound",)

#: The roles by theory name.
ROLES: Mapping[str, StudyRoles] = {
    "phi4": StudyRoles(
        cost="susceptibility",
        second="abs_magnetization",
        scale="correlation_length",
        order="magnetization",
        order_text="<M>/V",
    ),
    "u1": StudyRoles(
        cost="topological_charge",
        second="topological_susceptibility",
        scale=None,
        order="topological_charge",
        order_text="<Q>",
        names={
            "tau_chi2": "tau_q",
            "tau_chi2_error": "tau_q_error",
            "tau_absm": "tau_chi_t",
            "tau_absm_error": "tau_chi_t_error",
            "tau_m": "tau_q",
            "tau_m_error": "tau_q_error",
            "magnetization": "charge",
            "magnetization_error": "charge_error",
            "seconds_per_independent_m": "seconds_per_independent_q",
            "seconds_per_independent_m_error": "seconds_per_independent_q_error",
        },
        verdict_per_coupling=True,
    ),
}


def point_columns(table: pd.DataFrame) -> list[str]:
    """The columns of ``table`` that name a point: ``L`` and its theory's parameters
    (:func:`theory_of`), in key order."""
    return ["L", *theory_of(table).parameters]


def theory_of_columns(columns: Sequence[str]) -> Theory:
    """The one theory whose point columns, ``L`` and its parameters, are among ``columns``.

    Raises:
        ResultFileError: none, or more than one, e.g. the columns ``L, s, lam, beta`` of
            two theories' tables put together: a study is of one theory.
    """
    found = [t for t in THEORIES.values() if {"L", *t.parameters} <= set(columns)]
    if len(found) != 1:
        known = {name: ["L", *t.parameters] for name, t in THEORIES.items()}
        raise ResultFileError(
            f"a results table with the columns {list(columns)} is not of one theory "
            f"(point columns by theory: {known}); a study's tables are of one theory"
        )
    return found[0]


def theory_of(table: pd.DataFrame) -> Theory:
    """The theory of a results table, from its columns (:func:`theory_of_columns`)."""
    return theory_of_columns(table.columns)


def roles_of(table: pd.DataFrame) -> StudyRoles:
    """The :class:`StudyRoles` of the theory of a results table."""
    return ROLES[theory_of(table).name]


def exact_values(theory: Theory, point: Sequence) -> Mapping[str, float]:
    """The theory's exact values at ``point`` = (L, *parameters); empty where unknown."""
    L, *parameters = point
    made = theory.point(int(L), **dict(zip(theory.parameters, map(float, parameters), strict=True)))
    return theory.exact(made) or {}
