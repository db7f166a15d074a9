r"""The free energy: log Z, from a flow's raw proposals and by thermodynamic integration.

MCMC estimates only derivatives of log Z. A flow's independent proposals estimate Z itself
(Nicoli et al., PRL 126 (2021) 032001, arXiv:2007.07115):

    Z = ⟨e^{−S}/q⟩_q = ⟨w⟩_q,   log w = −S − log q,

and with it the free-energy density f = −log Z / V. The independent check is thermodynamic
integration with MCMC from the exactly solvable Gaussian point (s₀ > 0, λ = 0), where
S = φᵀAφ with A = −Δ + s (no ½) gives

    log Z = (V/2) log π − ½ Σ_k log(s + 4 Σ_μ sin²(k_μ/2)).

The path first raises λ at s₀, then moves s to the target at fixed λ, with

    ∂ log Z/∂λ = −⟨Σ_x φ_x⁴⟩,   ∂ log Z/∂s = −⟨Σ_x φ_x²⟩,

each leg by Gauss–Legendre quadrature over independent MCMC ensembles at its nodes
(:mod:`fieldflow.integration`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# The exact free theory lives with the rest of its physics; re-exported for callers here.
from fieldflow.lattice import gaussian_log_z as gaussian_log_z
from fieldflow.lattice import gaussian_sum_phi2 as gaussian_sum_phi2
from fieldflow.quality import chain_problems
from fieldflow.weights import ess as effective_sample_size

#: The flow estimate's error uses the bootstrap once one proposal carries more than this
#: share of Σ w: the delta method's normal approximation of the mean of w is then doubtful.
HEAVY_TAIL_SHARE = 0.01
#: Resamples of the bootstrap.
BOOTSTRAP_SAMPLES = 200
#: From this Pareto shape k̂ of the largest weights up, w has no finite variance, so
#: neither the delta method nor the bootstrap gives a trustworthy error (Vehtari et al.,
#: arXiv:1507.02646; their 0.7 is for Pareto-smoothed weights, not the raw mean used here).
MAX_PARETO_K = 0.5
#: A flow's weighted ⟨sign M⟩ more than this many errors from 0 (φ → −φ makes it exactly
#: 0) means q covers one vacuum less than the other.
MAX_SIGN_PULL = 4.0


@dataclass(frozen=True)
class FlowLogZ:
    """log Z from a flow's raw proposals, with its error and the checks behind it.

    ``error_method`` is ``delta`` or ``bootstrap`` (see :func:`flow_log_z`); ``lower_bound``
    is ⟨log w⟩_q = −⟨log q + S⟩_q, the reverse-KL training objective, ≤ log Z by Jensen;
    ``pareto_k`` the tail diagnostic of :func:`pareto_k`.
    """

    log_Z: float
    error: float
    error_method: str
    lower_bound: float
    n_proposals: int
    ess: float
    pareto_k: float
    reliable: bool
    reason: str

    @property
    def effective(self) -> float:
        """N · ESS, the number of effective proposals."""
        return self.n_proposals * self.ess


def log_mean_exp(log_weight: np.ndarray) -> float:
    """log of the mean of exp(``log_weight``), in float64 without overflow."""
    lw = np.asarray(log_weight, dtype=np.float64).ravel()
    top = lw.max()
    if top == -math.inf:
        return -math.inf  # every weight is 0
    return float(top + math.log(np.exp(lw - top).mean()))


def flow_log_z(
    log_weight: np.ndarray, seed: int = 0, magnetization: np.ndarray | None = None
) -> FlowLogZ:
    r"""log Z = log ⟨w⟩ over N independent proposals, log w = −S − log q (float64).

    The delta method gives σ(log Z) = σ(w̄)/w̄ = sqrt((1/ESS − 1)/N), with ESS the
    effective sample size per proposal. Where one proposal carries more than
    :data:`HEAVY_TAIL_SHARE` of Σ w the weights are heavy-tailed and the normal
    approximation is doubtful; the error is then the larger of the delta method's and a
    bootstrap's (:data:`BOOTSTRAP_SAMPLES` resamples, seeded by ``seed``). With fewer than
    :data:`fieldflow.quality.MIN_EFFECTIVE` effective proposals, or a Pareto tail
    :func:`pareto_k` above :data:`MAX_PARETO_K`, it is flagged unreliable: log ⟨w⟩ is then
    biased low and no error from the sample covers the weights not drawn. With the
    proposals' ``magnetization``, a weighted ⟨sign M⟩ more than :data:`MAX_SIGN_PULL`
    errors from 0 flags a flow that covers one vacuum less than the other. A flow that
    misses part of p altogether, symmetrically, leaves no trace in its weights; only the
    comparison with thermodynamic integration shows it (column ``pull``).

    Args:
        log_weight: log w of the raw proposals, any shape; every entry counts as one.
            −inf is a proposal of weight 0; NaN or +inf is an error.
        magnetization: M (or M/V) of the same proposals, same shape, or None.
    """
    lw = np.asarray(log_weight, dtype=np.float64).ravel()
    n = lw.size
    if n < 2:
        raise ValueError(f"log Z needs at least 2 proposals, got {n}")
    if np.isnan(lw).any() or np.isposinf(lw).any():
        raise ValueError(
            "log Z needs log weights that are numbers below +inf; some are NaN or +inf"
        )
    if np.isneginf(lw).all():
        raise ValueError("log Z needs a proposal of nonzero weight; every log w is -inf")
    w = np.exp(lw - lw.max())
    total = w.sum()
    ess = effective_sample_size(lw)
    log_z = log_mean_exp(lw)
    error = math.sqrt(max(1.0 / ess - 1.0, 0.0) / n)
    method = "delta"
    if w.max() / total > HEAVY_TAIL_SHARE:
        rng = np.random.default_rng(seed)
        resampled = [log_mean_exp(lw[rng.integers(0, n, n)]) for _ in range(BOOTSTRAP_SAMPLES)]
        error = max(error, float(np.std(resampled, ddof=1)))
        method = "bootstrap"
    problems = chain_problems(n, effective=n * ess)
    k = pareto_k(lw)
    if k >= MAX_PARETO_K:
        problems.append(f"Pareto k̂ = {k:.2f} of the largest weights ≥ {MAX_PARETO_K}")
    if magnetization is not None:
        sign = np.sign(np.asarray(magnetization, dtype=np.float64).ravel())
        mean = float((w * sign).sum() / total)
        spread = float(np.sqrt((w * w * (sign - mean) ** 2).sum()) / total)
        if not abs(mean) <= MAX_SIGN_PULL * spread:
            problems.append(
                f"weighted <sign M> = {mean:.3g} ± {spread:.2g} over the proposals, "
                "not 0: q favours one vacuum"
            )
    if problems:
        problems.append("log Z biased low, its error unreliable")
    return FlowLogZ(
        log_z, error, method, float(lw.mean()), n, ess, k, not problems, "; ".join(problems)
    )


def pareto_k(log_weight: np.ndarray) -> float:
    r"""Shape k̂ of a generalized Pareto fit to the largest importance weights.

    The tail diagnostic of Pareto-smoothed importance sampling (Vehtari, Simpson, Gelman,
    Yao, Gabry, arXiv:1507.02646): fitted by maximum likelihood to the exceedances of the
    M = min(N/5, 3√N) largest weights over the next one. Weights with k ≥ ½ have infinite
    variance, so neither the delta method nor the bootstrap can be trusted; above
    :data:`MAX_PARETO_K` the mean converges too slowly to be used. NaN for N < 25.
    """
    from scipy.stats import genpareto

    lw = np.sort(np.asarray(log_weight, dtype=np.float64).ravel())
    m = int(min(0.2 * lw.size, 3.0 * math.sqrt(lw.size)))
    if m < 5:
        return math.nan
    exceedances = np.expm1(lw[-m:] - lw[-m - 1])
    if not exceedances.any():
        return -math.inf  # constant weights: no tail at all
    shape, _, _ = genpareto.fit(exceedances, floc=0.0)
    return float(shape)


def sum_of_powers(phi: np.ndarray, power: int) -> np.ndarray:
    """Σ_x φ_x^``power`` per configuration, in float64; ``phi`` (..., L, L)."""
    phi = np.asarray(phi, dtype=np.float64)
    return (phi**power).sum(axis=(-2, -1))
