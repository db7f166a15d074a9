r"""A learnt scale of every momentum mode: the free field's correlations in one linear step.

    φ = F⁻¹[ e^{σ(k)} F z ],   log |det| = Σ_k σ(k),

with F the lattice Fourier transform and σ(k) one parameter per orbit of the momentum
k = 2π n / L under the lattice rotations and reflections (D4). The map is diagonal in
momentum space, so it commutes with translations; σ is constant on D4 orbits, so it
commutes with D4; it is linear, so it commutes with φ → −φ; σ(k) = σ(−k), so it maps real
fields to real fields. Its log-det does not depend on the field. A Gaussian z becomes a
Gaussian field with propagator e^{2σ(k)}: for the free theory, S = Σ_x φ(−Δ + s)φ,
e^{2σ(k)} = 1/(2(p̂² + s)) with p̂² = Σ_μ 4 sin²(k_μ/2) samples it exactly. Before the
cnf's ODE it gives the flow the two-point function of the Gaussian part at once, which the
ODE's linear feature otherwise learns along its integration path. At initialisation every
σ is zero: the identity.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from fieldflow.flows.base import Bijection
from fieldflow.flows.vectorfield import n_orbits, orbit_index
from fieldflow.lattice import momentum_squared


def lattice_momentum_squared(L: int) -> Tensor:
    """p̂² (:func:`fieldflow.lattice.momentum_squared`) of each D4 orbit of the momentum,
    indexed as :func:`~fieldflow.flows.vectorfield.orbit_index`; float64, shape (n_orbits,)."""
    p2 = torch.from_numpy(momentum_squared(L))
    out = torch.zeros(n_orbits(L // 2), dtype=torch.float64)
    # the members of an orbit share p̂² up to rounding; take the smallest, deterministically
    return out.scatter_reduce(
        0, orbit_index(L, None).flatten(), p2.flatten(), "amin", include_self=False
    )


class SpectralScale(Bijection):
    """z ↦ F⁻¹[e^{σ(k)} F z] for (batch, L, L) configurations; σ per D4 orbit of k.

    Parameters: σ, shape (n_orbits(⌊L/2⌋),), zero (the identity) at initialisation.
    """

    def __init__(self, L: int) -> None:
        super().__init__()
        self.L = L
        self.log_scale = nn.Parameter(torch.zeros(n_orbits(L // 2)))
        orbit = orbit_index(L, None)
        # rfft2 keeps the modes n_y <= L/2; the others are their mirror images.
        self.register_buffer("orbit_half", orbit[:, : L // 2 + 1].clone(), persistent=False)
        counts = torch.bincount(orbit.flatten(), minlength=n_orbits(L // 2))
        self.register_buffer("orbit_size", counts, persistent=False)

    def log_det(self) -> Tensor:
        """Σ_k σ(k) over all L² momenta, a scalar."""
        return (self.orbit_size.to(self.log_scale) * self.log_scale).sum()

    def _scaled(self, x: Tensor, sign: float) -> Tensor:
        scale = torch.exp(sign * self.log_scale)[self.orbit_half]
        return torch.fft.irfft2(scale * torch.fft.rfft2(x), s=x.shape[-2:])

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return self._scaled(x, 1.0), self.log_det().expand(x.shape[0])

    def inverse(self, y: Tensor) -> tuple[Tensor, Tensor]:
        return self._scaled(y, -1.0), -self.log_det().expand(y.shape[0])

    def at(self, L_new: int) -> SpectralScale:
        """The same scale on an L_new×L_new lattice, σ read off as a function of p̂².

        Orbits with the same p̂² (at L = 4, (1, 1) and (0, 2)) are merged first, σ averaged
        over their momenta; each new orbit then takes σ interpolated linearly in p̂² (the
        free propagator depends on k only through p̂²), the end values beyond the ends.
        """
        new = SpectralScale(L_new).to(self.log_scale)
        p2 = np.round(lattice_momentum_squared(self.L).numpy(), 9)
        levels, group = np.unique(p2, return_inverse=True)
        size = self.orbit_size.double().cpu().numpy()
        sigma = self.log_scale.detach().double().cpu().numpy()
        mean = np.bincount(group, size * sigma) / np.bincount(group, size)
        values = np.interp(lattice_momentum_squared(L_new).numpy(), levels, mean)
        with torch.no_grad():
            new.log_scale.copy_(torch.as_tensor(values))
        return new
