"""The agreement table: the pull of every estimate against its references."""

from __future__ import annotations

import logging

import pandas as pd

from fieldflow.analysis import pull
from fieldflow.lattice import gaussian_observables
from fieldflow.study.common import POINT, kind_of, reliable

log = logging.getLogger(__name__)

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

    At λ = 0 the reference is the exact Gaussian value, for every sampler. Elsewhere a flow
    estimate is compared with every Markov-chain baseline (``kinds[name] == "mcmc"``) at the
    same point, and the baselines with each other, each pair once (the later name in
    alphabetical order against the earlier). Estimators are ``mh`` (the sampler's chain)
    and ``reweighting`` (self-normalised importance weights on a flow's raw proposals).
    Estimates without a reference (no Markov chain in the study) are left out. A pull is
    ``reliable`` only if both its estimate and its reference are (:mod:`fieldflow.quality`).
    """
    frames = [observables.assign(estimator="mh")]
    if reweighted is not None and not reweighted.empty:
        frames.append(reweighted.assign(estimator="reweighting"))
    estimates = pd.concat(frames, ignore_index=True)
    baselines = observables[observables["sampler"].map(kinds) == "mcmc"]
    references = baselines.set_index([*POINT, "observable"]).sort_index()
    rows = []
    for r in estimates.itertuples(index=False):
        if r.lam == 0:
            exact = gaussian_observables(int(r.L), float(r.s)).get(r.observable)
            if exact is None:
                continue
            compared = [("exact", exact, 0.0, True)]
        else:
            key = (r.L, r.s, r.lam, r.observable)
            found = references.loc[[key]] if key in references.index else references.iloc[:0]
            compared = [
                (ref.sampler, ref.value, ref.error, reliable(ref))
                for ref in found.itertuples(index=False)
                if kind_of(kinds, r.sampler) == "flow" or ref.sampler < r.sampler
            ]
        for reference, value, error, trusted in compared:
            rows.append(
                [
                    r.L,
                    r.s,
                    r.lam,
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
    table = pd.DataFrame(rows, columns=AGREEMENT_COLUMNS)
    return table.sort_values(
        [*POINT, "sampler", "estimator", "reference"], kind="stable", ignore_index=True
    )


def large_pulls(table: pd.DataFrame, limit: float = PULL_LIMIT) -> pd.DataFrame:
    """Rows of an agreement table whose |pull| exceeds ``limit`` (or is not finite)."""
    return table[~(table["pull"].abs() <= limit)]


def report_large_pulls(table: pd.DataFrame) -> list[str]:
    """Log every pull beyond :data:`PULL_LIMIT` as a warning and return the messages."""
    messages = []
    for r in large_pulls(table).itertuples(index=False):
        unreliable = "" if reliable(r) else " [unreliable estimate or reference]"
        messages.append(
            f"pull {r.pull:+.2f} beyond ±{PULL_LIMIT:g}{unreliable}: {r.sampler} ({r.estimator}) "
            f"{r.observable} at L={r.L} s={r.s:g} lam={r.lam:g}: {r.value:.5g} ± {r.error:.2g} "
            f"vs {r.reference} {r.reference_value:.5g} ± {r.reference_error:.2g}"
        )
        log.warning(messages[-1])
    return messages
