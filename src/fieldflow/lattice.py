r"""φ⁴ theory on a periodic L×L lattice: action, force, parameterisations, observables.

Conventions follow DESIGN.md §1 (Albergo, Kanwar & Shanahan 2019, arXiv:1904.12072):

    S(φ) = Σ_x [ Σ_μ (φ(x+μ̂) − φ(x))² + s φ(x)² + λ φ(x)⁴ ]

with no factor ½. Every function is batched over a leading dimension of configurations
of shape (batch, L, L) and works in whatever dtype it is given.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor

if TYPE_CHECKING:
    from fieldflow.theory import Theory

#: Version of the per-configuration primaries a flow ensemble stores beside its raw proposals
#: (:func:`primary_observables` and :func:`timeslice_correlator`, through
#: :func:`fieldflow.primaries.ensemble_primaries`), read back for reweighting. Bump it whenever
#: their definitions or names change: stores of an older version are refused
#: (:func:`fieldflow.reader.read_ensemble`). 1: phi2, m, abs_m, m2, m4, ising_energy,
#: f_first and the time-slice correlator; stores written before it record none (version 0).
PRIMARIES_VERSION = 1


@dataclass(frozen=True)
class Point:
    """A point of the study: lattice size ``L``, mass parameter ``s`` (= m²), coupling ``lam``."""

    L: int
    s: float
    lam: float
    name: str = ""

    @property
    def key(self) -> str:
        """Filesystem-safe key, e.g. ``L8_s-4_lam6.008``."""
        return f"L{self.L}_s{self.s:g}_lam{self.lam:g}"

    @property
    def volume(self) -> int:
        return self.L * self.L

    @property
    def theory(self) -> Theory:
        """The ``phi4`` theory (:data:`fieldflow.theory.PHI4`)."""
        from fieldflow.theory import PHI4  # the theory module imports this one

        return PHI4

    def action(self, phi: Tensor) -> Tensor:
        """:func:`action` at this point's s and λ: φ (batch, L, L) ↦ S, shape (batch,)."""
        return action(phi, self.s, self.lam)

    def force(self, phi: Tensor) -> Tensor:
        """:func:`force` at this point's s and λ, same shape as φ."""
        return force(phi, self.s, self.lam)

    def columns(self) -> dict[str, float]:
        """``{"L": L, "s": s, "lam": λ}``, the point's columns in a results table."""
        return {"L": self.L, "s": self.s, "lam": self.lam}

    @classmethod
    def from_key(cls, key: str) -> Point:
        match = re.fullmatch(r"L(\d+)_s([-+0-9.eE]+)_lam([-+0-9.eE]+)", key)
        if match is None:
            raise ValueError(f"not a point key of the form L8_s-4_lam6.008: {key!r}")
        return cls(int(match[1]), float(match[2]), float(match[3]))

    @classmethod
    def from_hopping(cls, L: int, kappa: float, lam_k: float, name: str = "") -> Point:
        r"""Point from the hopping form of arXiv:2110.02673.

        S = Σ_x [−2κ Σ_μ ϕ_x ϕ_{x+μ̂} + (1−2λ_K) ϕ_x² + λ_K ϕ_x⁴] with φ = √κ ϕ gives
        s = (1 − 2λ_K)/κ − 4 and λ = λ_K/κ².
        """
        if kappa <= 0:
            raise ValueError(f"kappa must be positive, got {kappa}")
        return cls(L, (1.0 - 2.0 * lam_k) / kappa - 4.0, lam_k / kappa**2, name)

    def to_hopping(self) -> tuple[float, float]:
        r"""Inverse of :meth:`from_hopping`: returns (κ, λ_K).

        From s + 4 = (1 − 2λ_K)/κ and λ_K = λκ²: 2λκ² + (s + 4)κ − 1 = 0.
        """
        a, b = 2.0 * self.lam, self.s + 4.0
        kappa = 1.0 / b if a == 0 else (-b + math.sqrt(b * b + 4.0 * a)) / (2.0 * a)
        return kappa, self.lam * kappa**2


def action(phi: Tensor, s: float, lam: float) -> Tensor:
    r"""S(φ) = Σ_x [Σ_μ (φ(x+μ̂) − φ(x))² + s φ² + λ φ⁴].

    Args:
        phi: configurations, shape (batch, L, L).
    Returns:
        action per configuration, shape (batch,).
    """
    kinetic = sum(((phi.roll(-1, dim) - phi) ** 2) for dim in (-2, -1))
    phi2 = phi * phi
    return (kinetic + s * phi2 + lam * phi2 * phi2).sum(dim=(-2, -1))


def force(phi: Tensor, s: float, lam: float) -> Tensor:
    r"""F = −∂S/∂φ = 2 Σ_μ [φ(x+μ̂) + φ(x−μ̂)] − (8 + 2s) φ − 4λ φ³.

    Args:
        phi: configurations, shape (batch, L, L).
    Returns:
        force, same shape as ``phi``.
    """
    neighbours = sum(phi.roll(shift, dim) for dim in (-2, -1) for shift in (1, -1))
    return 2.0 * neighbours - (8.0 + 2.0 * s) * phi - 4.0 * lam * phi**3


def two_point(phi: Tensor) -> Tensor:
    r"""Volume-averaged two-point function G(x) = (1/V) Σ_y φ(y) φ(y+x), via FFT.

    Args:
        phi: configurations, shape (batch, L, L).
    Returns:
        G per configuration, shape (batch, L, L).
    """
    phi_k = torch.fft.fft2(phi)
    volume = phi.shape[-1] * phi.shape[-2]
    return torch.fft.ifft2(phi_k.abs() ** 2).real / volume


def primary_observables(phi: Tensor) -> dict[str, Tensor]:
    r"""Per-configuration primary quantities, each of shape (batch,).

    With M = Σ_x φ_x and V = L²:

    - ``phi2`` = (1/V) Σ_x φ_x²  (its mean is G(0))
    - ``m`` = M / V, signed (its mean is 0 by Z2: the check that both vacua are visited)
    - ``abs_m`` = |M| / V
    - ``m2`` = M² / V  (its mean is χ₂)
    - ``m4`` = M⁴ / V²  (for the Binder cumulant; V cancels in ⟨M⁴⟩/⟨M²⟩²)
    - ``ising_energy`` = ½ Σ_μ G(μ̂)
    - ``f_first`` = |φ̃(p)|² / V averaged over p = (2π/L, 0) and (0, 2π/L), the first
      non-zero momentum of G̃ used by the second-moment correlation length.
    """
    volume = phi.shape[-1] * phi.shape[-2]
    m = phi.sum(dim=(-2, -1))
    # M⁴ as (M²)², not M**4: torch's vectorised pow and its scalar tail round differently,
    # which would make a configuration's value depend on its place in the batch.
    m_squared = m * m
    g = two_point(phi)
    phi_k = torch.fft.fft2(phi)
    f_first = 0.5 * (phi_k[..., 1, 0].abs() ** 2 + phi_k[..., 0, 1].abs() ** 2) / volume
    return {
        "phi2": (phi * phi).mean(dim=(-2, -1)),
        "m": m / volume,
        "abs_m": m.abs() / volume,
        "m2": m_squared / volume,
        "m4": m_squared * m_squared / volume**2,
        "ising_energy": 0.5 * (g[..., 1, 0] + g[..., 0, 1]),
        "f_first": f_first,
    }


def second_moment_length(ratio, L: int):
    r"""ξ₂ = sqrt(χ₂/F − 1) / (2 sin(π/L)) from ``ratio`` = χ₂/F − 1 > 0.

    ``ratio`` may be a float, an array or a pyerrors ``Obs`` (errors then propagate).
    """
    return np.sqrt(ratio) / (2.0 * math.sin(math.pi / L))


def timeslice_correlator(phi: Tensor) -> Tensor:
    r"""Zero-momentum time-slice correlator per configuration, shape (batch, L).

    C(t) = Σ_x G(x, t) = (1/V) Σ_τ S(τ) S(τ + t) with S(τ) = Σ_x φ(x, τ), averaged over
    taking either lattice direction as time (same expectation, half the noise).
    """
    g = two_point(phi)
    return 0.5 * (g.sum(dim=-2) + g.sum(dim=-1))


def gaussian_two_point(L: int, s: float) -> np.ndarray:
    r"""Exact G(x) of the free theory (λ = 0, s > 0), shape (L, L).

    The Gaussian theory has covariance (2A)⁻¹ with A = −Δ + s, so
    G(x) = (1/V) Σ_k e^{ik·x} / (2(s + Σ_μ 4 sin²(k_μ/2))).
    """
    propagator = 1.0 / (2.0 * _free_eigenvalues(L, s))
    return np.fft.ifft2(propagator).real


def momentum_squared(L: int) -> np.ndarray:
    r"""p̂² = Σ_μ 4 sin²(k_μ/2), the eigenvalues of −Δ, over the momenta k_μ = 2πn/L; (L, L)."""
    k = 2.0 * np.pi * np.arange(L) / L
    return 4.0 * np.sin(k[:, None] / 2) ** 2 + 4.0 * np.sin(k[None, :] / 2) ** 2


def _free_eigenvalues(L: int, s: float) -> np.ndarray:
    r"""Eigenvalues s + p̂² of A = −Δ + s over the momenta, shape (L, L); a ValueError
    unless s > 0 (the free theory is normalisable)."""
    if not s > 0:
        raise ValueError(f"the free theory needs s > 0 to be normalisable, got s={s}")
    return s + momentum_squared(L)


def gaussian_log_z(L: int, s: float) -> float:
    r"""Exact log Z of the free theory on an L×L lattice, λ = 0 and s > 0.

    Z = ∫ dφ e^{−φᵀAφ} = π^{V/2} det(A)^{−1/2}, with the eigenvalues of A = −Δ + s equal
    to s + 4 Σ_μ sin²(k_μ/2) over the momenta k_μ = 2πn/L.
    """
    return float(0.5 * L * L * math.log(math.pi) - 0.5 * np.log(_free_eigenvalues(L, s)).sum())


def gaussian_sum_phi2(L: int, s: float) -> float:
    r"""Exact ⟨Σ_x φ_x²⟩ = −∂ log Z/∂s of the free theory: ½ Σ_k 1/(s + 4 Σ_μ sin²(k_μ/2))."""
    return float(0.5 * (1.0 / _free_eigenvalues(L, s)).sum())


def gaussian_observables(L: int, s: float) -> dict[str, float]:
    """Exact values of the observables of DESIGN.md §1 at λ = 0, s > 0."""
    g = gaussian_two_point(L, s)
    chi = g.sum()
    f_first = np.sum(g * np.cos(2.0 * np.pi * np.arange(L) / L)[:, None])
    # M is Gaussian with variance V χ₂: E|M| = sqrt(2 V χ₂ / π), E M⁴ = 3 (V χ₂)².
    volume = L * L
    return {
        "phi2": float(g[0, 0]),
        "abs_magnetization": float(np.sqrt(2.0 * volume * chi / np.pi) / volume),
        "susceptibility": float(chi),
        "ising_energy": float(0.5 * (g[1, 0] + g[0, 1])),
        "binder": 0.0,
        "correlation_length": float(np.sqrt(chi / f_first - 1.0) / (2.0 * np.sin(np.pi / L))),
        "magnetization": 0.0,  # ⟨M⟩ = 0 by φ → −φ
        # C(t) is a single cosh with cosh m = 1 + s/2, so every m_eff(t) equals m.
        "pole_mass": float(np.arccosh(1.0 + s / 2.0)),
    }
