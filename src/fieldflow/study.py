"""Study-level tables built from the per-ensemble ones: agreement, scaling, crossovers,
tunnelling.

Flows and Markov chains are told apart by their ``kind`` (:mod:`fieldflow.samplers`).

Everything here takes and returns :class:`pandas.DataFrame` in the column layouts below,
so the stages only read and write CSV files.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import pandas as pd

from fieldflow import analysis
from fieldflow.errors import ResultFileError
from fieldflow.lattice import gaussian_observables
from fieldflow.tunnelling import tau_int_lower_bound

log = logging.getLogger(__name__)

AGREEMENT_COLUMNS = [
    "L", "s", "lam", "sampler", "estimator", "observable", "value", "error",
    "reference", "reference_value", "reference_error", "pull", "reliable",
]  # fmt: skip
SCALING_COLUMNS = [
    "L", "s", "lam", "sampler", "kind", "xi2", "xi2_error", "tau_chi2", "tau_chi2_error",
    "tau_absm", "tau_absm_error", "acceptance", "ess", "train_seconds", "seconds_per_sample",
    "seconds_per_sample_error", "seconds_per_independent", "seconds_per_independent_error",
    "cost_1e4", "cost_1e6", "reliable",
]  # fmt: skip
EXPONENT_COLUMNS = [
    "sampler", "observable", "z", "z_error", "amplitude", "chi2_dof", "n_points", "reliable",
]  # fmt: skip
CROSSOVER_COLUMNS = [
    "sampler", "baseline", "cost", "first_L", "largest_L", "reliable", "verdict",
]  # fmt: skip
TUNNELLING_COLUMNS = [
    "L", "s", "lam", "sampler", "kind", "crossings", "per_1000_updates", "per_second",
    "tunnel_updates", "tau_m", "tau_m_error", "magnetization", "magnetization_error", "pull",
    "seconds_per_independent_m", "seconds_per_independent_m_error", "bound", "cheapest",
    "reliable",
]  # fmt: skip

#: Number of independent samples over which a flow's training time is amortised.
AMORTISATION = {"cost_1e4": 1e4, "cost_1e6": 1e6}
#: Pulls beyond this many σ are reported loudly.
PULL_LIMIT = 4.0
#: A flow is cheaper or dearer than a baseline only by more than this many σ of the
#: difference of their costs (:func:`crossovers`).
CROSSOVER_SIGMA = 2.0
#: Relative error of a job's seconds per update beyond the spread of its own batches: two
#: smoke studies run at once on 2 cores (load 7) gave CPU-time costs per update within
#: 1 % for the Markov chains but 13-34 % apart for the flows, whose within-job errors
#: were 1-10 % (docs/decisions.md).
TIMING_SYSTEMATIC = 0.25

_POINT = ["L", "s", "lam"]


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
    references = baselines.set_index([*_POINT, "observable"]).sort_index()
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
                (ref.sampler, ref.value, ref.error, _reliable(ref))
                for ref in found.itertuples(index=False)
                if _kind(kinds, r.sampler) == "flow" or ref.sampler < r.sampler
            ]
        for reference, value, error, trusted in compared:
            both = math.hypot(r.error, error)
            pull = (r.value - value) / both if both > 0 else math.nan
            rows.append([r.L, r.s, r.lam, r.sampler, r.estimator, r.observable, r.value,
                         r.error, reference, value, error, pull,
                         _reliable(r) and trusted])  # fmt: skip
    table = pd.DataFrame(rows, columns=AGREEMENT_COLUMNS)
    return table.sort_values([*_POINT, "sampler", "estimator", "reference"], kind="stable",
                             ignore_index=True)  # fmt: skip


def _reliable(row: tuple) -> bool:
    """An estimate's ``reliable`` flag (tables without the column count as reliable)."""
    flag = getattr(row, "reliable", True)
    return bool(flag) if not pd.isna(flag) else False


def _kind(kinds: dict[str, str], sampler: str) -> str:
    if sampler not in kinds:
        raise ResultFileError(f"sampler {sampler!r} has observables but no row in samplers.csv")
    return kinds[sampler]


def large_pulls(table: pd.DataFrame, limit: float = PULL_LIMIT) -> pd.DataFrame:
    """Rows of an agreement table whose |pull| exceeds ``limit`` (or is not finite)."""
    return table[~(table["pull"].abs() <= limit)]


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
      :data:`TIMING_SYSTEMATIC`, on top of δc.
    """
    obs = observables.set_index([*_POINT, "sampler", "observable"])
    kinds = sampler_kinds(samplers)

    def get(point: tuple, sampler: str, observable: str, column: str) -> float:
        key = (*point, sampler, observable)
        return float(obs.loc[key, column]) if key in obs.index and column in obs else math.nan

    sources: dict[tuple, str | None] = {}
    rows = []
    for r in samplers.itertuples(index=False):
        point = (r.L, r.s, r.lam)
        if point not in sources:
            sources[point] = xi_source(observables, kinds, point)
        source = sources[point]
        tau_chi2 = get(point, r.sampler, "susceptibility", "tau_int")
        tau_chi2_error = get(point, r.sampler, "susceptibility", "tau_int_error")
        per_sample, per_sample_error = _seconds_per_sample(r)
        independent = per_sample * 2.0 * tau_chi2
        independent_error = independent * math.hypot(
            _relative(tau_chi2_error, tau_chi2), _relative(per_sample_error, per_sample)
        )
        train = 0.0 if r.kind == "mcmc" or pd.isna(r.train_seconds) else r.train_seconds
        costs = {name: independent + train / n for name, n in AMORTISATION.items()}
        rows.append({
            "L": r.L, "s": r.s, "lam": r.lam, "sampler": r.sampler, "kind": r.kind,
            "xi2": get(point, source, "correlation_length", "value"),
            "xi2_error": get(point, source, "correlation_length", "error"),
            "tau_chi2": tau_chi2,
            "tau_chi2_error": tau_chi2_error,
            "tau_absm": get(point, r.sampler, "abs_magnetization", "tau_int"),
            "tau_absm_error": get(point, r.sampler, "abs_magnetization", "tau_int_error"),
            "acceptance": r.acceptance, "ess": r.ess, "train_seconds": r.train_seconds,
            "seconds_per_sample": per_sample, "seconds_per_sample_error": per_sample_error,
            "seconds_per_independent": independent,
            "seconds_per_independent_error": independent_error, **costs,
            # τ_int and costs are only as good as the chain they come from.
            "reliable": all(get(point, r.sampler, name, "reliable") != 0.0
                            for name in ("susceptibility", "abs_magnetization")),
        })  # fmt: skip
    table = pd.DataFrame(rows, columns=SCALING_COLUMNS)
    return table.sort_values(["sampler", *_POINT], kind="stable", ignore_index=True)


def _seconds_per_sample(r: tuple) -> tuple[float, float]:
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


def _relative(error: float, value: float) -> float:
    """δx/|x|; NaN where x is zero or not finite."""
    return error / abs(value) if value != 0 and math.isfinite(value) else math.nan


def sampler_kinds(samplers: pd.DataFrame) -> dict[str, str]:
    """``{sampler: kind}`` from the samplers table (columns ``sampler`` and ``kind``)."""
    return dict(zip(samplers["sampler"], samplers["kind"], strict=True))


def xi_source(observables: pd.DataFrame, kinds: dict[str, str], point: tuple) -> str | None:
    """The sampler whose ξ₂ stands for the point (L, s, lam) in the scaling table.

    Among samplers with a finite ξ₂ there: Markov chains before flows, then a finite
    error before none, then the smaller error, then the name. None if no sampler has one.
    """
    rows = observables[(observables["L"] == point[0]) & (observables["s"] == point[1])
                       & (observables["lam"] == point[2])
                       & (observables["observable"] == "correlation_length")
                       & observables["value"].notna()]  # fmt: skip

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
    for sampler, group in table.groupby("sampler", sort=False):
        for observable, tau in EXPONENT_FITS:
            ok = group[(group["xi2"] > 0) & (group[tau] > 0) & (group[f"{tau}_error"] > 0)]
            if ok["xi2"].nunique() < 2:
                continue
            fit = analysis.fit_power_law(ok["xi2"], ok[tau], ok[f"{tau}_error"],
                                         x_error=ok["xi2_error"].fillna(0.0))  # fmt: skip
            rows.append([sampler, observable, fit.exponent, fit.exponent_error, fit.amplitude,
                         fit.chi2_dof, fit.n_points, bool(ok["reliable"].all())])  # fmt: skip
    return pd.DataFrame(rows, columns=EXPONENT_COLUMNS)


def crossovers(table: pd.DataFrame, k: float = CROSSOVER_SIGMA) -> pd.DataFrame:
    """Whether, and from which L, each flow's cost per independent sample beats a baseline's.

    One row per flow, Markov-chain baseline and cost column (sampling only, and each
    amortisation; a baseline is always taken at its sampling cost). At every point (L, s,
    λ) both have, with the flow's cost m ± δm (δm: its ``seconds_per_independent_error``,
    and for the amortised costs also :data:`TIMING_SYSTEMATIC` times the amortised
    training time) and the baseline's b ± δb, σ = sqrt(δm² + δb²), the flow is

    - *cheaper* if b − m > k σ, *dearer* if m − b > k σ, else *undecided* (also whenever
      a cost or an error is NaN, and whenever either cost comes from an estimate marked
      unreliable, whose error bar its chain cannot support), with k = :data:`CROSSOVER_SIGMA`.

    Over the points at the largest common L (``largest_L``), ``verdict`` is

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
    flows, baselines = table[table["kind"] == "flow"], table[table["kind"] == "mcmc"]
    for baseline, reference in baselines.groupby("sampler", sort=True):
        reference = reference.set_index(_POINT)
        for sampler, group in flows.groupby("sampler", sort=False):
            group = group.set_index(_POINT)
            common = group.index.intersection(reference.index).sort_values()
            if common.empty:
                continue
            sizes = np.array([L for L, _, _ in common], dtype=float)
            mine_error = group.loc[common, "seconds_per_independent_error"].to_numpy()
            theirs = reference.loc[common, "seconds_per_independent"].to_numpy()
            theirs_error = reference.loc[common, "seconds_per_independent_error"].to_numpy()
            both_reliable = (group.loc[common, "reliable"].astype(bool)
                             & reference.loc[common, "reliable"].astype(bool))  # fmt: skip
            trusted = bool(group.loc[common, "reliable"].all()
                           and reference.loc[common, "reliable"].all())  # fmt: skip
            for cost in ("seconds_per_independent", *AMORTISATION):
                mine = group.loc[common, cost].to_numpy()
                # The amortised training time is one wall-clock time: the timing floor.
                training = mine - group.loc[common, "seconds_per_independent"].to_numpy()
                sigma = np.hypot(np.hypot(mine_error, TIMING_SYSTEMATIC * training), theirs_error)
                # An unreliable cost cannot support a decision either way.
                decidable = both_reliable.to_numpy()
                cheaper = decidable & (theirs - mine > k * sigma)
                dearer = decidable & (mine - theirs > k * sigma)
                verdict, first = _verdict(sizes, cheaper, dearer)
                rows.append([sampler, baseline, cost, first, float(sizes[-1]), trusted,
                             verdict])  # fmt: skip
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


def tunnelling(
    crossings: pd.DataFrame, observables: pd.DataFrame, samplers: pd.DataFrame
) -> pd.DataFrame:
    """Tunnelling between the vacua and the cost of an independent sample of M, per point
    and sampler, in the columns :data:`TUNNELLING_COLUMNS`.

    Args:
        crossings: the per-ensemble tunnelling rows (``crossings``, ``per_1000_updates``,
            ``per_second``, ``tunnel_updates``, ``n_chains``, ``n_draws``, ``bound``) of
            :mod:`fieldflow.tunnelling`.
        observables: the observables table; its ``magnetization`` rows give ⟨M⟩/V, its
            error, τ_int (``tau_m``) and ``reliable``.
        samplers: the samplers table, for ``kind`` and the seconds per update.

    ``pull`` = ⟨M⟩/V over its error (the exact value is 0). Where no crossing was seen
    (``bound`` = ``lower``), ``tunnel_updates``, ``tau_m`` = nN/6 (its error NaN) and
    ``seconds_per_independent_m`` are 95% lower bounds, not estimates: the Γ-method's τ_int
    of a chain in one vacuum measures only the fluctuations inside it.
    ``seconds_per_independent_m`` = t · 2 τ_m with t the seconds per update of
    :func:`scaling` and the error from τ_m's and t's in quadrature. ``cheapest`` marks, per
    point, the lowest ``seconds_per_independent_m`` among rows without a bound.
    """
    obs = observables[observables["observable"] == "magnetization"]
    obs = obs.set_index([*_POINT, "sampler"])
    timing = samplers.set_index([*_POINT, "sampler"])

    def get(key: tuple, column: str) -> float:
        return float(obs.loc[key, column]) if key in obs.index and column in obs else math.nan

    rows = []
    for r in crossings.itertuples(index=False):
        key = (r.L, r.s, r.lam, r.sampler)
        if key not in timing.index:
            raise ResultFileError(f"sampler {r.sampler!r} at L={r.L} s={r.s:g} lam={r.lam:g} "
                                  "has a tunnelling row but no row in samplers.csv")  # fmt: skip
        sampler_row = timing.loc[[key]].reset_index().iloc[0]
        bounded = r.bound == "lower"
        if bounded:
            thin = getattr(r, "thin", 1)  # absent (NaN) in files before session 5
            updates = int(r.n_chains) * int(r.n_draws) * (int(thin) if pd.notna(thin) else 1)
            tau, tau_error = tau_int_lower_bound(updates), math.nan
        else:
            tau, tau_error = get(key, "tau_int"), get(key, "tau_int_error")
        per_update, per_update_error = _seconds_per_sample(sampler_row)
        cost = per_update * 2.0 * tau
        cost_error = cost * math.hypot(_relative(tau_error, tau),
                                       _relative(per_update_error, per_update))  # fmt: skip
        value, error = get(key, "value"), get(key, "error")
        rows.append({
            "L": r.L, "s": r.s, "lam": r.lam, "sampler": r.sampler, "kind": sampler_row["kind"],
            "crossings": r.crossings, "per_1000_updates": r.per_1000_updates,
            "per_second": r.per_second, "tunnel_updates": r.tunnel_updates,
            "tau_m": tau, "tau_m_error": tau_error,
            "magnetization": value, "magnetization_error": error,
            "pull": value / error if error > 0 else math.nan,
            "seconds_per_independent_m": cost, "seconds_per_independent_m_error": cost_error,
            "bound": "lower" if bounded else "", "cheapest": False,
            "reliable": get(key, "reliable") == 1.0,
        })  # fmt: skip
    table = pd.DataFrame(rows, columns=TUNNELLING_COLUMNS)
    table = table.sort_values([*_POINT, "sampler"], kind="stable", ignore_index=True)
    candidates = table[(table["bound"] != "lower") & table["seconds_per_independent_m"].notna()]
    if not candidates.empty:
        best = candidates.groupby(_POINT)["seconds_per_independent_m"].idxmin()
        table.loc[best.to_numpy(), "cheapest"] = True
    return table


def report_stuck(table: pd.DataFrame, limit: float = PULL_LIMIT) -> list[str]:
    """Warn about every tunnelling row whose ⟨M⟩ is more than ``limit`` errors from 0."""
    messages = []
    for r in table[table["pull"].abs() > limit].itertuples(index=False):
        messages.append(
            f"{r.sampler} at L={r.L} s={r.s:g} lam={r.lam:g}: <M>/V = {r.magnetization:.4g} ± "
            f"{r.magnetization_error:.2g}, pull {r.pull:+.1f} beyond ±{limit:g} with "
            f"{r.crossings} crossings: stuck in one vacuum?"
        )
        log.warning(messages[-1])
    return messages


def report_large_pulls(table: pd.DataFrame) -> list[str]:
    """Log every pull beyond :data:`PULL_LIMIT` as a warning and return the messages."""
    messages = []
    for r in large_pulls(table).itertuples(index=False):
        unreliable = "" if _reliable(r) else " [unreliable estimate or reference]"
        messages.append(
            f"pull {r.pull:+.2f} beyond ±{PULL_LIMIT:g}{unreliable}: {r.sampler} ({r.estimator}) "
            f"{r.observable} at L={r.L} s={r.s:g} lam={r.lam:g}: {r.value:.5g} ± {r.error:.2g} "
            f"vs {r.reference} {r.reference_value:.5g} ± {r.reference_error:.2g}"
        )
        log.warning(messages[-1])
    return messages
