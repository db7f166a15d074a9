"""The agreement table: the pull of every estimate against its references."""

from __future__ import annotations

import logging

import pandas as pd

from fieldflow.analysis import pull
from fieldflow.study.common import kind_of, point_text, reliable
from fieldflow.study.roles import exact_values, point_columns, theory_of_columns

log = logging.getLogger(__name__)

#: φ⁴'s columns; any theory's start with its point columns (``L, beta`` for U(1)).
AGREEMENT_COLUMNS = [
    "L",
    "s",
    "lam",
    "sampler",
    "estimator",
    "observable",
    "value",
    "error",
    "reference",
    "reference_value",
    "reference_error",
    "pull",
    "reliable",
]
#: Pulls beyond this many σ are reported loudly.
PULL_LIMIT = 4.0


def agreement(
    observables: pd.DataFrame, kinds: dict[str, str], reweighted: pd.DataFrame | None = None
) -> pd.DataFrame:
    """The pull of every estimate against its references, one row per (estimate, reference).

    Where the theory knows the exact value of an observable at a point
    (:attr:`fieldflow.theory.Theory.exact`: φ⁴'s Gaussian values at λ = 0, s > 0; U(1)'s
    character expansion everywhere) it is the reference, for every sampler. Elsewhere a
    flow estimate is compared with every Markov-chain baseline (``kinds[name] == "mcmc"``)
    at the same point, and the baselines with each other, each pair once (the later name in
    alphabetical order against the earlier). Estimators are ``mh`` (the sampler's chain)
    and ``reweighting`` (self-normalised importance weights on a flow's raw proposals).
    Estimates without a reference (no Markov chain in the study) are left out. A pull is
    ``reliable`` only if both its estimate and its reference are (:mod:`fieldflow.quality`).

    The point columns are those of ``observables`` (:func:`~fieldflow.study.roles.point_columns`),
    and so is the theory, whose point columns they must be.
    """
    point = point_columns(observables)
    theory = theory_of_columns(point)
    frames = [observables.assign(estimator="mh")]
    if reweighted is not None and not reweighted.empty:
        frames.append(reweighted.assign(estimator="reweighting"))
    estimates = pd.concat(frames, ignore_index=True)
    baselines = observables[observables["sampler"].map(kinds) == "mcmc"]
    references = baselines.set_index([*point, "observable"]).sort_index()
    exact: dict[tuple, dict[str, float]] = {}
    rows = []
    for r in estimates.itertuples(index=False):
        at = tuple(getattr(r, c) for c in point)
        if at not in exact:
            exact[at] = exact_values(theory, at)
        if r.observable in exact[at]:
            compared = [("exact", exact[at][r.observable], 0.0, True)]
        else:
            key = (*at, r.observable)
            found = references.loc[[key]] if key in references.index else references.iloc[:0]
            compared = [
                (ref.sampler, ref.value, ref.error, reliable(ref))
                for ref in found.itertuples(index=False)
                if kind_of(kinds, r.sampler) == "flow" or ref.sampler < r.sampler
            ]
        for reference, value, error, trusted in compared:
            rows.append(
                [
                    *at,
                    r.sampler,
                    r.estimator,
                    r.observable,
                    r.value,
                    r.error,
                    reference,
                    value,
                    error,
                    pull(r.value, r.error, value, error),
                    reliable(r) and trusted,
                ]
            )
    table = pd.DataFrame(rows, columns=[*point, *AGREEMENT_COLUMNS[3:]])
    return table.sort_values(
        [*point, "sampler", "estimator", "reference"], kind="stable", ignore_index=True
    )


def large_pulls(table: pd.DataFrame, limit: float = PULL_LIMIT) -> pd.DataFrame:
    """Rows of an agreement table whose |pull| exceeds ``limit`` (or is not finite)."""
    return table[~(table["pull"].abs() <= limit)]


def report_large_pulls(table: pd.DataFrame) -> list[str]:
    """Log every pull beyond :data:`PULL_LIMIT` as a warning and return the messages."""
    messages = []
    point = point_columns(table)
    for r in large_pulls(table).itertuples(index=False):
        unreliable = "" if reliable(r) else " [unreliable estimate or reference]"
        messages.append(
            f"pull {r.pull:+.2f} beyond ±{PULL_LIMIT:g}{unreliable}: {r.sampler} ({r.estimator}) "
            f"{r.observable} at {point_text(r, point)}: {r.value:.5g} ± {r.error:.2g} "
            f"vs {r.reference} {r.reference_value:.5g} ± {r.reference_error:.2g}"
        )
        log.warning(messages[-1])
    return messages
