r"""HMC's burn-in: the step size tuned towards a target acceptance and, with
``trajectory_length="auto"``, the trajectory length chosen from ξ₂.

τ = c ξ₂ from the second-moment correlation length measured on the burn-in chains (see
:mod:`fieldflow.mcmc.hmc` for why τ ∝ ξ); ε by Robbins–Monro on log ε. Both are frozen
after the burn-in, so the production chain is an exact Markov chain with a fixed kernel.
The step-size tuning works for any theory; ``"auto"`` needs the theory's primaries ``m2``
and ``f_first`` for ξ₂ (φ⁴), and is refused for a theory without them (U(1)).
"""

from __future__ import annotations

import logging
import math
import numbers
from collections.abc import Callable

import torch
from torch import Tensor
from tqdm.auto import tqdm

from fieldflow.lattice import second_moment_length
from fieldflow.mcmc.integrators import INTEGRATORS, trajectory
from fieldflow.theory import PointLike

log = logging.getLogger(__name__)

#: Trajectory length of the first half of an ``"auto"`` burn-in, its fallback and its floor.
TAU0 = 1.0
#: Default c of τ = c ξ₂: the cheapest per independent χ₂ (leapfrog steps × 2τ_int) of
#: c ∈ {0.3…3} at E4, E5 and (L, λ) = (20, 4.807), flat within ~10% over 0.4–0.65; about
#: half the quarter period π/(2√2) ξ₂ of the slowest free mode, as past it τ_int(χ₂)
#: levels off near 2 rather than falling towards ½.
TRAJECTORY_PER_XI = 0.5
#: The primaries ξ₂ is measured from: M²/V and F at the first non-zero momentum.
XI_PRIMARIES = ("m2", "f_first")


def steps_for(trajectory_length: float, eps: float) -> tuple[float, int]:
    """(ε, n) with n ε = τ exactly: the step nearest to ``eps`` that divides τ, n ≥ 1."""
    n = max(1, round(trajectory_length / eps))
    return trajectory_length / n, n


def tune_step_size(
    phi: Tensor,
    point: PointLike,
    n_trajectories: int,
    trajectory_length: float,
    target_acceptance: float,
    generator: torch.Generator,
    integrator: str = "leapfrog",
    eps: float = 0.1,
    progress: bool = False,
    observe: Callable[[int, Tensor], None] | None = None,
) -> tuple[Tensor, float]:
    """Burn-in with step-size adaptation: log ε += γ_t (acceptance − target), γ_t = t^-0.6.

    ``observe(t, φ)``, if given, sees the chains after each trajectory t.
    """
    step = INTEGRATORS[integrator]
    log_eps = math.log(eps)
    for t in tqdm(range(n_trajectories), disable=not progress, desc="hmc burn-in"):
        eps_t, n = steps_for(trajectory_length, math.exp(log_eps))
        phi, _, accept = trajectory(phi, point, step, eps_t, n, generator)
        if observe is not None:
            observe(t, phi)
        gamma = (t + 1) ** -0.6
        log_eps += gamma * (accept.double().mean().item() - target_acceptance)
        log_eps = min(log_eps, math.log(trajectory_length))
    return phi, math.exp(log_eps)


class _CorrelationLength:
    """Running ⟨M²⟩/V and F over all chains from trajectory ``start`` on; ξ₂ from them.

    The primaries ``m2`` and ``f_first`` come from ``point``'s theory (φ⁴'s).
    """

    def __init__(self, point: PointLike, start: int) -> None:
        self.primaries = point.theory.primaries
        self.start = start
        self.m2 = 0.0
        self.f_first = 0.0
        self.count = 0

    def __call__(self, t: int, phi: Tensor) -> None:
        if t >= self.start:
            primaries = self.primaries(phi)
            self.m2 += primaries["m2"].sum().item()
            self.f_first += primaries["f_first"].sum().item()
            self.count += phi.shape[0]

    def value(self, L: int) -> float:
        """ξ₂ = sqrt(χ₂/F − 1) / (2 sin(π/L)); NaN without data or with χ₂ ≤ F."""
        if self.count == 0 or not self.f_first > 0:
            return math.nan
        ratio = self.m2 / self.f_first - 1.0
        if not (math.isfinite(ratio) and ratio > 0):
            return math.nan
        return float(second_moment_length(ratio, L))


def auto_trajectory_length(
    xi: float, L: int, trajectory_per_xi: float = TRAJECTORY_PER_XI
) -> float:
    r"""τ = c ξ₂ clipped to [τ₀, L/2] with τ₀ = 1; τ₀ if ξ₂ is not finite.

    The floor: where c ξ₂ < 1 the slowest mode (ω ≈ √2/ξ₂) already turns by
    ≳ √2 c rad in a unit trajectory, and shorter ones mostly slow the UV modes (free
    quarter period π/(2√(2(s + 8))) ≈ 0.55 at s = −4): at E1 (ξ₂ ≈ 1.5) τ = 0.75 cost
    6–10% more per independent χ₂ than τ = 1, τ = 0.5 25% more. The floor also bounds
    the damage of a noisy or unthermalised ξ₂ (an underestimate falls back towards τ₀).
    The ceiling bounds the cost where ξ₂ is not a finite-volume mass scale (the broken
    phase, where the unsubtracted χ₂ picks up ⟨M⟩², or at criticality): the slowest
    non-zero momentum of a massless field, ω = 2√2 sin(π/L), has its quarter period at
    ≈ 0.18 L, so τ = L/2 already turns every non-zero mode past it.
    """
    if not math.isfinite(xi):
        return TAU0
    return min(max(trajectory_per_xi * xi, TAU0), max(L / 2.0, TAU0))


def check_trajectory_length(trajectory_length: float | str, point: PointLike | None = None) -> None:
    """A ValueError unless τ is a positive number, or ``"auto"`` for a theory with ξ₂
    (whose primaries include ``m2`` and ``f_first``; not checked without ``point``)."""
    if trajectory_length == "auto":
        if point is not None and not set(XI_PRIMARIES) <= set(point.theory.primary_names(point.L)):
            raise ValueError(
                f'trajectory_length "auto" picks τ from the correlation length ξ₂, which the '
                f"{point.theory.name} theory does not define (point {point.key}); give a "
                "positive number"
            )
        return
    ok = isinstance(trajectory_length, numbers.Real) and not isinstance(trajectory_length, bool)
    if not (ok and math.isfinite(trajectory_length) and trajectory_length > 0):
        raise ValueError(
            f'trajectory_length must be a positive number or "auto", got {trajectory_length!r}'
        )


def auto_burn_in(
    phi: Tensor,
    point: PointLike,
    burn_in: int,
    trajectory_per_xi: float,
    target_acceptance: float,
    generator: torch.Generator,
    integrator: str,
    progress: bool,
) -> tuple[Tensor, float, float]:
    """Burn-in that picks τ: tune ε at τ₀, measure ξ₂, set τ = c ξ₂, re-tune ε at τ.

    ξ₂ comes from the second quarter of the burn-in, all chains together (the first
    quarter thermalises). Returns (φ, ε, τ).
    """
    first = burn_in // 2
    xi = _CorrelationLength(point, start=first // 2)
    phi, eps = tune_step_size(
        phi,
        point,
        first,
        TAU0,
        target_acceptance,
        generator,
        integrator,
        progress=progress,
        observe=xi,
    )
    tau = auto_trajectory_length(xi.value(point.L), point.L, trajectory_per_xi)
    log.info("HMC burn-in: xi_2 %.3f, trajectory length %.3f", xi.value(point.L), tau)
    phi, eps = tune_step_size(
        phi,
        point,
        burn_in - first,
        tau,
        target_acceptance,
        generator,
        integrator,
        eps=min(eps, tau),
        progress=progress,
    )
    return phi, eps, tau
