"""Study-level tables built from the per-ensemble ones: agreement, scaling, crossovers,
tunnelling.

Flows and Markov chains are told apart by their ``kind`` (:mod:`fieldflow.samplers`).
Everything here takes and returns :class:`pandas.DataFrame` in the column layouts of its
module, so the stages only read and write CSV files:

- :mod:`~fieldflow.study.pulls`: every estimate against its references (:func:`agreement`);
- :mod:`~fieldflow.study.costs`: τ_int and the cost of an independent sample per point
  (:func:`scaling`) and their exponents in ξ₂;
- :mod:`~fieldflow.study.crossover`: the crossovers of flows and baselines, along L or
  per point of a scan at fixed L (:func:`crossovers`);
- :mod:`~fieldflow.study.vacua`: tunnelling between the vacua (:func:`tunnelling`);
- :mod:`~fieldflow.study.common`: what they share (timing errors, sampler kinds);
- :mod:`~fieldflow.study.roles`: a table's theory, read off its point columns (φ⁴: L, s,
  lam; U(1): L, beta), and the parts its observables play (:class:`StudyRoles`).
"""

from fieldflow.study.common import (
    AMORTISATION,
    TIMING_SYSTEMATIC,
    independent_cost,
    sampler_kinds,
    seconds_per_sample,
)
from fieldflow.study.costs import (
    EXPONENT_COLUMNS,
    EXPONENT_FITS,
    SCALING_COLUMNS,
    dynamic_exponents,
    scaling,
    xi_source,
)
from fieldflow.study.crossover import (
    CROSSOVER_COLUMNS,
    CROSSOVER_SIGMA,
    crossovers,
    verdict_columns,
)
from fieldflow.study.pulls import (
    AGREEMENT_COLUMNS,
    PULL_LIMIT,
    agreement,
    large_pulls,
    report_large_pulls,
)
from fieldflow.study.roles import (
    ROLES,
    StudyRoles,
    exact_values,
    point_columns,
    roles_of,
    theory_of,
    theory_of_columns,
)
from fieldflow.study.vacua import TUNNELLING_COLUMNS, report_stuck, tunnelling

__all__ = [
    "AGREEMENT_COLUMNS",
    "AMORTISATION",
    "CROSSOVER_COLUMNS",
    "CROSSOVER_SIGMA",
    "EXPONENT_COLUMNS",
    "EXPONENT_FITS",
    "PULL_LIMIT",
    "ROLES",
    "SCALING_COLUMNS",
    "TIMING_SYSTEMATIC",
    "TUNNELLING_COLUMNS",
    "StudyRoles",
    "agreement",
    "crossovers",
    "dynamic_exponents",
    "exact_values",
    "independent_cost",
    "large_pulls",
    "point_columns",
    "report_large_pulls",
    "report_stuck",
    "roles_of",
    "sampler_kinds",
    "scaling",
    "seconds_per_sample",
    "theory_of",
    "theory_of_columns",
    "tunnelling",
    "verdict_columns",
    "xi_source",
]
