r"""Statistics: Γ-method means, errors and integrated autocorrelation times, and the ESS.

Errors and τ_int follow Wolff's Γ-method with automatic windowing (hep-lat/0306017,
S = 2) as implemented by pyerrors; the chains of an ensemble enter as replicas. τ_int is
½ for uncorrelated data. Derived observables (the Binder cumulant and the second-moment
correlation length; U(1)'s χ_t = ⟨Q²⟩/V) are built from primary means so that their errors
are propagated; each theory says how (:attr:`fieldflow.theory.Theory.derive`).
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyerrors as pe
from numpy.typing import ArrayLike

from fieldflow.lattice import second_moment_length
from fieldflow.theory import PHI4, PHI4_OBSERVABLES, Theory
from fieldflow.weights import ess as ess  # re-exported: analysis.ess is the public name

log = logging.getLogger(__name__)

#: Observable names of DESIGN.md §1, in table order (then ``pole_mass``, from C(t)).
OBSERVABLES = PHI4_OBSERVABLES[:-1]


@dataclass(frozen=True)
class Estimate:
    """Mean with its Γ-method error and integrated autocorrelation time."""

    value: float
    error: float
    tau_int: float
    tau_int_error: float


def _obs(chains: np.ndarray, ensemble: str) -> pe.Obs:
    chains = np.asarray(chains, dtype=np.float64)
    if chains.ndim != 2:
        raise ValueError(f"expected chains of shape (chain, draw), got {chains.shape}")
    names = [f"{ensemble}|r{i}" for i in range(chains.shape[0])]
    return pe.Obs(list(chains), names)


@contextmanager
def _replica_means_outside_the_domain() -> Iterator[None]:
    """Silence numpy's warning about a derived observable at one chain's own means.

    pyerrors evaluates a derived observable, besides at the total means, at the means of
    each replica (chain) alone. A short or stuck chain's means can lie outside the
    function's domain (χ₂/F − 1 < 0 under ξ₂'s square root, a ratio below 1 under m_eff's
    arccosh) where the total means do not: that replica's value is NaN, is used by no
    estimate here, and numpy's "invalid value encountered in sqrt/arccosh" about it is
    noise. Where the total means are outside the domain too, the observable is left out
    (``correlation_length``) or undefined (m_eff(t), None) instead.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore",
            message="invalid value encountered in (sqrt|arccosh)",
            category=RuntimeWarning,
        )
        yield


def _estimate(obs: pe.Obs, ensemble: str, S: float, tau_exp: float = 0.0) -> Estimate:
    """The Γ-method estimate of ``obs``; error and τ_int NaN where no chain fluctuates.

    pyerrors gives a series with Γ(0) = 0 (every chain constant: a charge frozen in its
    sector, a flow that accepted nothing) the error 0 and τ_int = ½: a confident statement
    that the chain cannot support. Such a chain has measured no fluctuation, so it has no
    error and no τ_int; :func:`fieldflow.quality.judge` then flags it ("no τ_int").
    ``tau_exp`` > 0 attaches the tail of a slow mode (:func:`observables`).
    """
    obs.gamma_method(S=S, tau_exp=tau_exp)
    if not np.isfinite(obs.value):
        return Estimate(math.nan, math.nan, math.nan, math.nan)
    if not obs.dvalue > 0:
        return Estimate(float(obs.value), math.nan, math.nan, math.nan)
    tau = obs.e_tauint.get(ensemble, 0.5)
    dtau = obs.e_dtauint.get(ensemble, 0.0)
    return Estimate(float(obs.value), float(obs.dvalue), float(tau), float(dtau))


def gamma_estimate(chains: np.ndarray, S: float = 2.0) -> Estimate:
    """Γ-method estimate of the mean of one series per chain, shape (chain, draw)."""
    return _estimate(_obs(chains, "ens"), "ens", S)


def observables(
    primaries: dict[str, np.ndarray],
    L: int,
    S: float = 2.0,
    log_weights: np.ndarray | None = None,
    theory: Theory = PHI4,
    tau_exp: Mapping[str, float] | None = None,
) -> dict[str, Estimate]:
    r"""Every observable of a theory (φ⁴: DESIGN.md §1; U(1): §2b) from its primaries.

    Args:
        primaries: the theory's per-configuration measurements
            (:attr:`fieldflow.theory.Theory.measurements`), each of shape (chain, draw), or
            (chain, draw, t) for a correlator.
        L: lattice size, for the correlation length (φ⁴) or the volume V = L² (U(1)).
        S: the Γ-method's windowing parameter.
        log_weights: if given, shape (chain, draw): the configurations are raw flow
            proposals with importance weights w = exp(log_weights), and every primary
            average becomes the self-normalised ratio ⟨wO⟩_q / ⟨w⟩_q, whose error the
            Γ-method propagates through the ratio (the delta method).
        theory: how the observables derive from the primaries' means
            (:attr:`~fieldflow.theory.Theory.derive`).
        tau_exp: per observable, the exponential autocorrelation time (in draws) of a slow
            mode it couples to; its Γ-method then attaches the tail ρ(W) τ_exp where ρ is
            first within 1σ of 0 (Schaefer, Sommer & Virotta arXiv:1009.5228, pyerrors'
            ``tau_exp``), which the windowed sum alone misses (:func:`with_slow_mode`).
    Returns:
        an :class:`Estimate` per observable, in table order: φ⁴'s :data:`OBSERVABLES`, then
        ``pole_mass`` if the primaries hold a ``correlator`` (:func:`phi4_observables`);
        U(1)'s ``plaquette``, ``topological_susceptibility``, ``topological_charge``. An
        undefined estimate is NaN.
    """
    ens = "ens"
    o = _primary_obs(primaries, log_weights, ens)
    nan = Estimate(math.nan, math.nan, math.nan, math.nan)
    tails = tau_exp or {}
    return {
        name: nan if obs is None else _estimate(obs, ens, S, tails.get(name, 0.0))
        for name, obs in theory.derive(o, L).items()
    }


def phi4_observables(o: Mapping[str, Any], L: int) -> dict[str, pe.Obs | None]:
    r"""φ⁴'s observables (DESIGN.md §1) from the Γ-method means ``o`` of its primaries.

    :data:`OBSERVABLES`, then ``pole_mass`` if ``o`` holds a ``correlator``; None where
    undefined: ``correlation_length`` where χ₂/F − 1 ≤ 0, ``pole_mass`` without an effective
    mass on the plateau, ``magnetization`` from primaries without ``m`` (the raw proposals
    of an ensemble written before fieldflow stored them).

    U = 1 − ⟨M⁴⟩/(3⟨M²⟩²) and ξ₂ = sqrt(χ₂/F − 1) / (2 sin(π/L)).
    """
    derived = {
        "phi2": o["phi2"],
        "abs_magnetization": o["abs_m"],
        "susceptibility": o["m2"],
        "ising_energy": o["ising_energy"],
        "binder": 1.0 - o["m4"] / (3.0 * o["m2"] * o["m2"]),
    }
    ratio = o["m2"] / o["f_first"] - 1.0
    if ratio.value > 0:
        with _replica_means_outside_the_domain():
            derived["correlation_length"] = second_moment_length(ratio, L)
    else:
        log.warning("chi2/F - 1 = %.3g <= 0: correlation length undefined", ratio.value)
    if "m" in o:
        derived["magnetization"] = o["m"]
    mass = _pole_mass(o["correlator"], L) if "correlator" in o else None
    if mass is not None:
        derived["pole_mass"] = mass
    names = OBSERVABLES + (("pole_mass",) if "correlator" in o else ())
    return {name: derived.get(name) for name in names}


def _primary_obs(
    primaries: dict[str, np.ndarray], log_weights: np.ndarray | None, ens: str
) -> dict[str, Any]:
    """pyerrors Obs of every primary's mean (a list over t for the correlator).

    With ``log_weights`` each mean is the self-normalised ratio ⟨wO⟩/⟨w⟩.
    """
    if log_weights is None:
        mean = lambda values: _obs(values, ens)  # noqa: E731
    else:
        lw = np.asarray(log_weights, dtype=np.float64)
        w = np.exp(lw - lw.max())  # the scale cancels in the ratio
        norm = _obs(w, ens)
        mean = lambda values: _obs(w * values, ens) / norm  # noqa: E731
    o: dict[str, Any] = {}
    for name, values in primaries.items():
        values = np.asarray(values, dtype=np.float64)
        if values.ndim == 3:  # (chain, draw, t)
            o[name] = [mean(values[..., t]) for t in range(values.shape[-1])]
        else:
            o[name] = mean(values)
    return o


def _effective_masses(correlator: list[pe.Obs]) -> list[pe.Obs | None]:
    """m_eff(t) = arccosh((C(t−1) + C(t+1)) / (2 C(t))), t = 0 … L/2 (None where undefined).

    Exact for a single state on a periodic lattice, C(t) ∝ cosh(m (t − L/2)). pyerrors'
    ``Corr.m_eff("arccosh")``: undefined at t = 0, and where the ratio is below 1.
    """
    L = len(correlator)
    with _replica_means_outside_the_domain():
        try:
            masses = pe.Corr(correlator).m_eff("arccosh")
        except ValueError:  # undefined at every t
            return [None] * (L // 2 + 1)
    return [None if m is None else m[0] for m in masses.content[: L // 2 + 1]]


def plateau_range(L: int) -> tuple[int, int]:
    """Time slices [t_min, t_max] whose effective masses average to the pole mass."""
    return max(1, L // 4), max(1, L // 2 - 1)


def _pole_mass(correlator: list[pe.Obs], L: int) -> pe.Obs | None:
    """Pole mass: the mean of the defined effective masses over :func:`plateau_range`.

    pyerrors' ``Corr.plateau`` (method ``avg``) of ``Corr.m_eff("arccosh")``; errors are
    propagated through the (correlated) average by the Γ-method.
    """
    t_min, t_max = plateau_range(L)
    with _replica_means_outside_the_domain():
        try:
            return pe.Corr(correlator).m_eff("arccosh").plateau([t_min, t_max], method="avg")
        except ValueError:  # no effective mass defined in the range, or at all
            log.warning(
                "no effective mass defined in t = %d..%d: pole mass undefined", t_min, t_max
            )
            return None


def correlator_rows(
    correlator: np.ndarray, S: float = 2.0, log_weights: np.ndarray | None = None
) -> list[dict[str, float]]:
    """C(t) and m_eff(t) with Γ-method errors from per-configuration C(t), (chain, draw, L).

    Returns one dict per t = 0 … L/2: t, correlator, correlator_error, m_eff, m_eff_error
    (NaN where the effective mass is undefined).
    """
    o = _primary_obs({"correlator": correlator}, log_weights, "ens")["correlator"]
    masses = _effective_masses(o)
    rows = []
    for t in range(len(o) // 2 + 1):
        c = _estimate(o[t], "ens", S)
        m = _estimate(masses[t], "ens", S) if masses[t] is not None else None
        rows.append(
            {
                "t": t,
                "correlator": c.value,
                "correlator_error": c.error,
                "m_eff": m.value if m else math.nan,
                "m_eff_error": m.error if m else math.nan,
            }
        )
    return rows


def pull(
    value: ArrayLike, error: ArrayLike, reference: ArrayLike, reference_error: ArrayLike = 0.0
) -> float | np.ndarray:
    r"""(value − reference) / sqrt(error² + reference_error²): the deviation in σ.

    NaN where both errors are 0 (or NaN). Floats give a float, arrays or Series an array,
    element by element. The root is ``math.hypot`` for floats and ``numpy.hypot`` for
    arrays: the two differ in the last bit now and then, and each is the one its tables
    (agreement, reweighting) were computed with.
    """
    if all(np.ndim(x) == 0 for x in (value, error, reference, reference_error)):
        both = math.hypot(error, reference_error)
        return float((value - reference) / both) if both > 0 else math.nan
    both = np.hypot(error, reference_error)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(both > 0, (value - reference) / both, np.nan)


def with_slow_mode(
    primaries: dict[str, np.ndarray],
    L: int,
    S: float,
    theory: Theory,
    estimates: dict[str, Estimate],
) -> dict[str, Estimate]:
    r"""A Markov chain's ``estimates`` again, with the tail of the order parameter's slow mode.

    Where a theory's sectors differ in what they weigh (U(1)'s |Q|,
    :attr:`~fieldflow.theory.OrderParameter.sectors_differ`), every observable couples to
    the slowest mode, the charge's. The Γ-method's window ends where an observable's own
    autocorrelation has decayed into noise and misses the small, long tail that coupling
    leaves; the error is then too small around a value biased towards the sectors the chain
    has seen (HMC's plaquette at β = 6 was 4.5σ off the exact value). Each other observable
    is estimated again with that tail attached, τ_exp = τ_int of the order parameter
    (whose autocorrelation is close to one exponential), by Schaefer, Sommer & Virotta's
    method (arXiv:1009.5228; :func:`observables`' ``tau_exp``): ``tau_int`` is then the
    windowed sum plus the tail, and the error follows from it; where that error comes out
    smaller than the plain one (a fast mode), the plain estimate stays. Returns ``estimates``
    unchanged where the sectors do not differ (φ⁴: images under φ → −φ) or τ_int of the
    order parameter is not finite (a frozen chain, flagged by :mod:`fieldflow.quality`).
    """
    order = theory.order_parameter
    if not order.sectors_differ:
        return estimates
    slow = estimates[order.observable].tau_int
    if not (math.isfinite(slow) and slow > 0):
        return estimates
    tails = {name: slow for name in estimates if name != order.observable}
    tailed = observables(primaries, L, S, theory=theory, tau_exp=tails)
    # Attached where ρ first reaches 0 within 1σ, the tail can end the sum earlier than
    # the automatic window: of the two, the larger error (the conservative one).
    return {
        name: tailed[name] if name in tails and _larger_error(tailed[name], e) else e
        for name, e in estimates.items()
    }


def _larger_error(a: Estimate, b: Estimate) -> bool:
    """Whether ``a``'s error is finite and larger than ``b``'s (or ``b``'s is NaN)."""
    return math.isfinite(a.error) and not b.error >= a.error


def in_updates(estimate: Estimate, thin: int) -> Estimate:
    """``estimate`` of a chain that stores every ``thin``-th update, its τ_int in updates.

    τ_int per stored draw times ``thin`` (DESIGN.md: τ_int counts updates); an upper bound
    on τ_int per update where τ ≲ thin. Value and error are those of the stored draws.
    """
    return Estimate(
        estimate.value, estimate.error, thin * estimate.tau_int, thin * estimate.tau_int_error
    )


@dataclass(frozen=True)
class PowerLaw:
    """y = amplitude · x**exponent fitted to data, with the exponent's error."""

    exponent: float
    exponent_error: float
    amplitude: float
    chi2_dof: float
    n_points: int


def fit_power_law(
    x: np.ndarray, y: np.ndarray, y_error: np.ndarray, x_error: np.ndarray | None = None
) -> PowerLaw:
    """Weighted straight-line fit of log y = log A + z log x (e.g. τ_int ∝ ξ^z).

    Errors enter in log space, σ_log y = σ_y / y; errors of x (if given) add z² σ_log x²
    to each point's variance (effective variance, iterated to convergence). When
    χ²/dof > 1 the exponent's error is scaled by sqrt(χ²/dof), so scatter beyond the
    quoted errors widens it rather than hiding.
    """
    x, y, y_error = (np.asarray(a, dtype=np.float64) for a in (x, y, y_error))
    if x.size < 2 or np.any(x <= 0) or np.any(y <= 0) or np.any(y_error <= 0):
        raise ValueError("a power-law fit needs >= 2 points with x, y and y_error > 0")
    lx, ly = np.log(x), np.log(y)
    var_y = (y_error / y) ** 2
    var_x = np.zeros_like(x) if x_error is None else (np.asarray(x_error) / x) ** 2
    design = np.stack([np.ones_like(lx), lx], axis=1)
    z = 0.0
    for _ in range(50):
        weights = 1.0 / (var_y + z * z * var_x)
        cov = np.linalg.inv(design.T @ (design * weights[:, None]))
        coef = cov @ (design.T @ (weights * ly))
        converged = abs(coef[1] - z) < 1e-12
        z = coef[1]
        if converged:
            break
    residual = ly - design @ coef
    dof = x.size - 2
    chi2_dof = float((weights * residual**2).sum() / dof) if dof > 0 else math.nan
    scale = math.sqrt(max(1.0, chi2_dof)) if dof > 0 else 1.0
    return PowerLaw(
        float(z),
        float(math.sqrt(cov[1, 1]) * scale),
        float(math.exp(coef[0])),
        chi2_dof,
        int(x.size),
    )
