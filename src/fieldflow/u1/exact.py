r"""Exact finite-volume references of 2D U(1) on the periodic L×L lattice (V = L² plaquettes).

Character expansion (e.g. Kanwar et al. 2020, arXiv:2003.06413; Bonati & Rossi 2019,
arXiv:1901.09830). With the Haar measure normalised to 1 per link, each plaquette weight
e^{β cos θ_P} = Σ_n I_n(β) e^{inθ_P}, and integrating every link (it sits in two plaquettes
with opposite orientations) forces one common n on all plaquettes:

    Z = Σ_{n∈ℤ} I_n(β)^V.

For the θ-term e^{iϑQ}, Q = (1/2π) Σ_P φ_P with φ_P = arg e^{iθ_P} ∈ (−π, π], each plaquette
carries the 2π-periodic weight e^{β cos φ + iaφ} (a = ϑ/2π) on (−π, π], whose Fourier
coefficients are f_n(a) = ∫_{−π}^{π} dφ/2π e^{β cos φ} cos((n − a)φ), so Z(ϑ) = Σ_n f_n(a)^V.
At a = 0, f_n = I_n, ∂_a f_n = J_n and ∂_a² f_n = −K_n with

    J_n = ∫_{−π}^{π} dφ/2π φ sin(nφ) e^{β cos φ},    K_n = ∫_{−π}^{π} dφ/2π φ² cos(nφ) e^{β cos φ}.

⟨Q⟩ = 0 (J_{−n} = −J_n), so ⟨Q²⟩ = −∂_ϑ² log Z = −(1/4π²) ∂_a² Z / Z, i.e.

    ⟨Q²⟩ = (V/4π²) Σ_n w_n [K_n/I_n − (V − 1) (J_n/I_n)²],    w_n = I_n^V / Z.

Everything is scaled by e^{−β} (``scipy.special.ive``) and summed by log-sum-exp, so large β·V
does not overflow. The sum over n keeps the orders with (I_n/I_0)^V > e^{−60} (both signs of
n); since I_n decreases with |n| for β > 0, the dropped terms are below 1e−26 of the total.
J_n and K_n are computed with a Gauss–Legendre rule on [0, π] (the integrands are even),
whose order grows with β and with the largest n kept.

Accuracy: about 1e−13 relative for log Z and the plaquette. χ_t carries an absolute error of
about 1e−16/β: when β ≫ V the charge freezes (χ_t ∝ e^{−2π²β/V}) and the terms of the sum
over n cancel, so there χ_t is only known to that absolute accuracy.
"""

from __future__ import annotations

import math
import numbers

import numpy as np
from scipy.special import ive, logsumexp, roots_legendre

#: Orders n are kept while V log(I_n/I_0) exceeds −_CUTOFF.
_CUTOFF = 60.0


def _check(L: int, beta: float) -> None:
    if not isinstance(L, numbers.Integral) or isinstance(L, bool) or L < 1:
        raise ValueError(f"L must be an integer ≥ 1, got L={L!r}")
    if not isinstance(beta, numbers.Real) or not math.isfinite(beta) or beta <= 0:
        raise ValueError(f"beta must be finite and > 0, got beta={beta!r}")


def _orders(volume: int, beta: float) -> tuple[np.ndarray, np.ndarray]:
    r"""Orders n = 0, 1, …, n_max kept in Σ_n, and their V log(I_n/I_0).

    Returns:
        ``n`` (shape (k,)) and ``log_w`` = V log(I_n/I_0) (shape (k,)).
    """
    n_max = 16
    while True:
        n = np.arange(n_max + 1)
        with np.errstate(divide="ignore"):
            log_w = volume * (np.log(ive(n, beta)) - np.log(ive(0, beta)))
        if log_w[-1] < -_CUTOFF:
            keep = log_w >= -_CUTOFF
            return n[keep], log_w[keep]
        n_max *= 2


def _multiplicity(n: np.ndarray) -> np.ndarray:
    """How often each order appears in Σ_{n∈ℤ}: once for n = 0, twice (±n) otherwise."""
    return np.where(n == 0, 1.0, 2.0)


def _weights(volume: int, beta: float) -> tuple[np.ndarray, np.ndarray, float]:
    r"""Orders n ≥ 0, the probabilities w_n = I_n^V/Z of ±n together, and log Z.

    Returns:
        ``n`` (shape (k,)), ``w`` (shape (k,), summing to 1) and log Z.
    """
    n, log_w = _orders(volume, beta)
    log_w = log_w + np.log(_multiplicity(n))
    log_sum = float(logsumexp(log_w))
    log_z = volume * (beta + math.log(ive(0, beta))) + log_sum
    return n, np.exp(log_w - log_sum), log_z


def log_z(L: int, beta: float) -> float:
    r"""log Z = log Σ_{n∈ℤ} I_n(β)^V, Haar measure normalised to 1 per link, V = L²."""
    _check(L, beta)
    return _weights(L * L, beta)[2]


def plaquette(L: int, beta: float) -> float:
    r"""⟨cos θ_P⟩ = (1/V) ∂_β log Z = Σ_n w_n I_n'(β)/I_n(β), I_n' = (I_{n−1} + I_{n+1})/2."""
    _check(L, beta)
    n, w, _ = _weights(L * L, beta)
    ratio = 0.5 * (ive(np.abs(n - 1), beta) + ive(n + 1, beta)) / ive(n, beta)
    return float(np.sum(w * ratio))


def _moments(n: np.ndarray, beta: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""e^{−β} (I_n, J_n, K_n) for orders ``n`` ≥ 0, by Gauss–Legendre on [0, π].

    Returns:
        three arrays of shape (k,): (1/π)∫_0^π dφ e^{β(cos φ − 1)} × {cos nφ, φ sin nφ,
        φ² cos nφ}.
    """
    # The integrand is entire; its oscillation needs ~n nodes and its peak of width β^{-1/2}
    # at φ = 0 (where Legendre nodes cluster) ~β more.
    order = 2 * (int(n.max()) + math.ceil(beta) + 10 * math.ceil(math.sqrt(beta))) + 100
    x, weight = roots_legendre(order)
    phi = 0.5 * math.pi * (x + 1.0)
    weight = 0.5 * weight * np.exp(beta * (np.cos(phi) - 1.0))
    n_phi = n[:, None] * phi[None, :]
    cos_n, sin_n = np.cos(n_phi), np.sin(n_phi)
    return cos_n @ weight, (phi * sin_n) @ weight, (phi * phi * cos_n) @ weight


def topological_susceptibility(L: int, beta: float) -> float:
    r"""χ_t = ⟨Q²⟩/V of the geometric charge, from ⟨Q²⟩ = −∂_ϑ² log Z(ϑ) at ϑ = 0.

    χ_t = (1/4π²) Σ_n w_n [K_n/I_n − (V − 1)(J_n/I_n)²] (module docstring). At L = 1 the
    only plaquette angle vanishes identically, so χ_t = 0. Limits: 1/12 as β → 0 (V
    independent uniform angles), (1/4π²)⟨φ²⟩_β → 1/(4π²β) as V → ∞ at large β.
    """
    _check(L, beta)
    volume = L * L
    if volume == 1:
        return 0.0
    n, w, _ = _weights(volume, beta)
    i_n, j_n, k_n = _moments(n, beta)
    per_order = k_n / i_n - (volume - 1) * (j_n / i_n) ** 2
    return float(np.sum(w * per_order) / (4.0 * math.pi**2))


def references(L: int, beta: float) -> dict[str, float]:
    """Exact ``plaquette`` and ``topological_susceptibility`` (DESIGN.md §2b names)."""
    return {
        "plaquette": plaquette(L, beta),
        "topological_susceptibility": topological_susceptibility(L, beta),
    }
