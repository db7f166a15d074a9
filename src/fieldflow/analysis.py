r"""Statistics: Γ-method means, errors and integrated autocorrelation times, and the ESS.

Errors and τ_int follow Wolff's Γ-method with automatic windowing (hep-lat/0306017,
S = 2) as implemented by pyerrors; the chains of an ensemble enter as replicas. τ_int is
½ for uncorrelated data. Derived observables (the Binder cumulant and the second-moment
correlation length) are built from primary means so that their errors are propagated.
"""

from __future__ import annotations

import logging
import math
import warnings
from dataclasses import dataclass

import numpy as np
import pyerrors as pe

log = logging.getLogger(__name__)

#: Observable names of DESIGN.md §1, in table order.
OBSERVABLES = (
    "phi2",
    "abs_magnetization",
    "susceptibility",
    "ising_energy",
    "binder",
    "correlation_length",
)


@dataclass(frozen=True)
class Estimate:
    """Mean with its Γ-method error and integrated autocorrelation time."""

    value: float
    error: float
    tau_int: float
    tau_int_error: float


def ess(log_weights: np.ndarray) -> float:
    r"""Effective sample size per sample, (Σ w)² / (N Σ w²), from log weights, in float64."""
    lw = np.asarray(log_weights, dtype=np.float64).ravel()
    lw = lw - lw.max()
    w = np.exp(lw)
    return float(w.sum() ** 2 / (lw.size * (w * w).sum()))


def _obs(chains: np.ndarray, ensemble: str) -> pe.Obs:
    chains = np.asarray(chains, dtype=np.float64)
    if chains.ndim != 2:
        raise ValueError(f"expected chains of shape (chain, draw), got {chains.shape}")
    names = [f"{ensemble}|r{i}" for i in range(chains.shape[0])]
    return pe.Obs(list(chains), names)


def _estimate(obs: pe.Obs, ensemble: str, S: float) -> Estimate:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        obs.gamma_method(S=S)
    if not np.isfinite(obs.value):
        return Estimate(math.nan, math.nan, math.nan, math.nan)
    tau = obs.e_tauint.get(ensemble, 0.5)
    dtau = obs.e_dtauint.get(ensemble, 0.0)
    return Estimate(float(obs.value), float(obs.dvalue), float(tau), float(dtau))


def gamma_estimate(chains: np.ndarray, S: float = 2.0) -> Estimate:
    """Γ-method estimate of the mean of one series per chain, shape (chain, draw)."""
    return _estimate(_obs(chains, "ens"), "ens", S)


def observables(primaries: dict[str, np.ndarray], L: int, S: float = 2.0) -> dict[str, Estimate]:
    r"""Every observable of DESIGN.md §1 from per-configuration primaries.

    Args:
        primaries: the fields of :func:`fieldflow.lattice.primary_observables`, each of
            shape (chain, draw).
        L: lattice size, for the correlation length.
        S: the Γ-method's windowing parameter.
    Returns:
        an :class:`Estimate` per observable name.

    U = 1 − ⟨M⁴⟩/(3⟨M²⟩²) and ξ₂ = sqrt(χ₂/F − 1) / (2 sin(π/L)).
    """
    ens = "ens"
    o = {name: _obs(values, ens) for name, values in primaries.items()}
    derived = {
        "phi2": o["phi2"],
        "abs_magnetization": o["abs_m"],
        "susceptibility": o["m2"],
        "ising_energy": o["ising_energy"],
        "binder": 1.0 - o["m4"] / (3.0 * o["m2"] * o["m2"]),
    }
    ratio = o["m2"] / o["f_first"] - 1.0
    if ratio.value > 0:
        derived["correlation_length"] = np.sqrt(ratio) / (2.0 * math.sin(math.pi / L))
    else:
        log.warning("chi2/F - 1 = %.3g <= 0: correlation length undefined", ratio.value)
    result = {name: _estimate(obs, ens, S) for name, obs in derived.items()}
    result.setdefault("correlation_length", Estimate(math.nan, math.nan, math.nan, math.nan))
    return {name: result[name] for name in OBSERVABLES}
