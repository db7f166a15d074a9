"""Where a flow's cost per independent sample beats a Markov-chain baseline's
(:func:`crossovers`): along L, per coupling where a theory's studies scan couplings (U(1)'s β).

Flows and Markov chains are told apart by their ``kind`` (:mod:`fieldflow.samplers`).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from fieldflow.study import common
from fieldflow.study.common import AMORTISATION
from fieldflow.study.roles import point_columns, roles_of

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


def verdict_columns(table: pd.DataFrame) -> list[str]:
    """The point columns besides ``L`` that a crossover verdict is made per; none for one
    verdict along L over the whole study.

    φ⁴ studies follow lines of constant physics (E1 → E5: the couplings change with L), and
    their one verdict says from which L a flow wins. A U(1) study scans β
    (:attr:`~fieldflow.study.roles.StudyRoles.verdict_per_coupling`): it gets a verdict
    per β, along L where it has several.
    """
    return point_columns(table)[1:] if roles_of(table).verdict_per_coupling else []


def crossovers(table: pd.DataFrame, k: float = CROSSOVER_SIGMA) -> pd.DataFrame:
    """Whether, and from which L, each flow's cost per independent sample beats a baseline's.

    One row per flow, Markov-chain baseline and cost column (sampling only, and each
    amortisation; a baseline is always taken at its sampling cost), and, where the
    theory's studies scan couplings, per coupling: they lead the row (:func:`verdict_columns`,
    U(1)'s ``beta``). At every point (L, s, λ), or (L, β), both have, with the flow's cost m ± δm
    (δm: its ``seconds_per_independent_error``, and for the amortised costs also
    :data:`~fieldflow.study.common.TIMING_SYSTEMATIC` times the amortised training time)
    and the baseline's b ± δb, σ = sqrt(δm² + δb²), the flow is

    - *cheaper* if b − m > k σ, *dearer* if m − b > k σ, else *undecided* (also whenever
      a cost or an error is NaN, and whenever either cost comes from an estimate marked
      unreliable, whose error bar its chain cannot support), with k = :data:`CROSSOVER_SIGMA`.
      A baseline whose chains never changed sector (``bound`` = ``lower``: its cost is the
      lower bound of :func:`~fieldflow.study.common.order_tau`, without an error) is
      unreliable but costs at least b: a reliable flow with b − m > k sqrt(δm² + δt²)
      (δt: the bound's timing error alone) is *cheaper*; a flow is never *dearer* than a
      baseline priced at a bound.

    Over the points of the row (the whole study, or one coupling) at its largest L
    (``largest_L``), ``verdict`` is

    - ``crossover`` if the flow is cheaper at all of them; ``first_L`` is then the
      smallest L such that the flow is cheaper at every point with that L or larger (an
      undecided point below it may hide an earlier crossover); at a single L, that L;
    - ``none`` if it is dearer at any of them: no crossover within this study;
    - ``undecided`` otherwise (an undecided point there, none dearer).

    ``first_L`` is NaN unless the verdict is ``crossover``. The table holds decisions
    only, no timed numbers (those are in the scaling table), so that two runs of one
    study give the same file unless a decision changes. ``reliable``: every cost compared
    comes from a reliable τ_int (:mod:`fieldflow.quality`) or a baseline's lower bound.
    """
    rows = []
    point, along = point_columns(table), verdict_columns(table)
    flows, baselines = table[table["kind"] == "flow"], table[table["kind"] == "mcmc"]
    for baseline, reference in baselines.groupby("sampler", sort=True):
        reference = reference.set_index(point)
        for sampler, group in flows.groupby("sampler", sort=False):
            group = group.set_index(point)
            shared = group.index.intersection(reference.index).sort_values()
            for at, points in _groups(shared, point, along):
                decided = _decide(group.loc[points], reference.loc[points], points, k)
                rows.extend([*at, sampler, baseline, *row] for row in decided)
    table = pd.DataFrame(rows, columns=[*along, *CROSSOVER_COLUMNS])
    # A verdict per point: the rows of one point together, as in the other tables.
    return table.sort_values(along, kind="stable", ignore_index=True) if along else table


def _groups(points: pd.Index, names: list[str], along: list[str]) -> list[tuple[tuple, list]]:
    """(values of ``along``, the points with them, sorted by L) of the sorted ``points``,
    a MultiIndex of the point columns ``names``; one group of every point where ``along``
    is empty."""
    if points.empty:
        return []
    if not along:
        return [((), list(points))]
    positions = [names.index(name) for name in along]
    found: dict[tuple, list] = {}
    for p in points:
        found.setdefault(tuple(p[i] for i in positions), []).append(p)
    return sorted(found.items())


def _decide(mine: pd.DataFrame, theirs: pd.DataFrame, points: list, k: float) -> list[list]:
    """[cost, first_L, largest_L, reliable, verdict] per cost column of a flow's rows
    ``mine`` against a baseline's ``theirs`` at ``points`` (sorted by L, which comes first)."""
    sizes = np.array([p[0] for p in points], dtype=float)
    mine_error = mine["seconds_per_independent_error"].to_numpy()
    base = theirs["seconds_per_independent"].to_numpy()
    base_error = theirs["seconds_per_independent_error"].to_numpy()
    mine_reliable = mine["reliable"].astype(bool).to_numpy()
    # A baseline frozen in one sector is priced at its τ_int's lower bound: no error, and
    # no decision of its own, but a flow cheaper than the bound is cheaper than the chain.
    bounded = (
        (theirs["bound"] == "lower").to_numpy()
        if "bound" in theirs
        else np.zeros_like(base, dtype=bool)
    )
    # An unreliable cost cannot support a decision either way.
    decidable = mine_reliable & theirs["reliable"].astype(bool).to_numpy()
    trusted = bool(
        mine_reliable.all() and (theirs["reliable"].astype(bool).to_numpy() | bounded).all()
    )
    # A bound has no statistical error; its seconds per update keep theirs.
    if {"seconds_per_sample", "seconds_per_sample_error"} <= set(theirs.columns):
        per_update = theirs["seconds_per_sample"].to_numpy()
        timing = np.nan_to_num(base * theirs["seconds_per_sample_error"].to_numpy() / per_update)
    else:
        timing = np.zeros_like(base)
    rows = []
    for cost in ("seconds_per_independent", *AMORTISATION):
        flow = mine[cost].to_numpy()
        # The amortised training time is one wall-clock time: the timing floor.
        systematic = common.TIMING_SYSTEMATIC * (flow - mine["seconds_per_independent"].to_numpy())
        flow_sigma = np.hypot(mine_error, systematic)
        sigma = np.hypot(flow_sigma, base_error)
        below_bound = mine_reliable & bounded & (base - flow > k * np.hypot(flow_sigma, timing))
        cheaper = (decidable & (base - flow > k * sigma)) | below_bound
        dearer = decidable & (flow - base > k * sigma)
        verdict, first = _verdict(sizes, cheaper, dearer)
        rows.append([cost, first, float(sizes[-1]), trusted, verdict])
    return rows


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
