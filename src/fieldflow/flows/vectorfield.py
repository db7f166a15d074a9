r"""The equivariant vector field of the continuous flow (:mod:`fieldflow.flows.cnf`).

    v(φ, t)_x = Σ_f Σ_y W_f(x − y, t) H_f(φ_y),   div v = Σ_x Σ_f W_f(0, t) H_f'(φ_x),

with odd site-wise features H_0(φ) = φ, H_f(φ) = sin(ω_f φ) (learnable ω_f), and kernels
W_f(d, t) = Σ_b c_{f,b,o(d)} T_b(t) that depend on the displacement d only through its
orbit o(d) under the lattice rotations and reflections (D4) and on t through the cosine basis
T_b(t) = cos(π b t) (de Haan et al. arXiv:2110.02673; Gerdes et al. arXiv:2207.00283). The
sum over y is a circular convolution done by FFT, so v is equivariant under translations,
D4 and φ → −φ by construction, and its divergence is exact because only the y = x term of
the convolution depends on φ_x.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


def support_radius(L: int, kernel_radius: int | None) -> int:
    """Largest |d_x|, |d_y| (minimal image) the kernel reaches: min(r, ⌊L/2⌋)."""
    return L // 2 if kernel_radius is None else min(kernel_radius, L // 2)


def n_orbits(radius: int) -> int:
    """Number of D4 orbits (p, q), 0 ≤ p ≤ q ≤ radius, of displacements within the radius."""
    return (radius + 1) * (radius + 2) // 2


def orbit_index(L: int, kernel_radius: int | None) -> Tensor:
    r"""Orbit of every displacement d = (d_x, d_y) of the periodic L×L lattice, shape (L, L).

    On the torus the D4 orbit of d is labelled by the sorted minimal-image magnitudes
    p ≤ q, p, q = min(d, L − d); it gets index q(q+1)/2 + p, so the orbits within a radius
    are the first ``n_orbits(radius)`` whatever L is. Displacements beyond the radius get
    ``n_orbits(radius)``, the index of a kernel value that is always zero.
    """
    radius = support_radius(L, kernel_radius)
    d = torch.arange(L)
    a = torch.minimum(d, L - d)
    ax, ay = a[:, None].expand(L, L), a[None, :].expand(L, L)
    p, q = torch.minimum(ax, ay), torch.maximum(ax, ay)
    index = q * (q + 1) // 2 + p
    return torch.where(q <= radius, index, torch.full_like(index, n_orbits(radius)))


def cosine_basis(t: Tensor, n: int) -> Tensor:
    """Time basis T_b(t) = cos(π b t), b = 0..n−1, shape (*t.shape, n)."""
    b = torch.arange(n, dtype=t.dtype, device=t.device)
    return torch.cos(math.pi * b * t[..., None])


class EquivariantVectorField(nn.Module):
    r"""v(φ, t)_x = Σ_f Σ_y W_f(x − y, t) H_f(φ_y) with its exact divergence.

    Parameters: kernel coefficients c, shape (n_features, n_time_basis, n_orbits), zero at
    initialisation so that v ≡ 0; frequencies ω, shape (n_features − 1,).
    """

    def __init__(
        self, L: int, n_features: int, kernel_radius: int | None, n_time_basis: int
    ) -> None:
        super().__init__()
        if n_features < 1 or n_time_basis < 1:
            raise ValueError("n_features and n_time_basis must be at least 1")
        if kernel_radius is not None and kernel_radius < 0:
            raise ValueError(f"kernel_radius must be >= 0 or None, got {kernel_radius}")
        self.L = L
        self.n_features = n_features
        self.kernel_radius = kernel_radius
        self.n_time_basis = n_time_basis
        radius = support_radius(L, kernel_radius)
        self.coefficients = nn.Parameter(torch.zeros(n_features, n_time_basis, n_orbits(radius)))
        self.frequencies = nn.Parameter(torch.linspace(0.5, 3.0, n_features - 1))
        self.register_buffer("orbit", orbit_index(L, kernel_radius), persistent=False)

    def kernel(self, t: Tensor) -> Tensor:
        """W_f(d, t) on the lattice of displacements, shape (*t.shape, n_features, L, L)."""
        c = self.coefficients
        w = torch.einsum("fbo,...b->...fo", c, cosine_basis(t.to(c), self.n_time_basis))
        w = torch.cat([w, w.new_zeros(*w.shape[:-1], 1)], dim=-1)  # the zero beyond the radius
        return w[..., self.orbit]

    def spectral_kernel(self, t: Tensor) -> tuple[Tensor, Tensor]:
        """(Ŵ_f(k, t) by rfft2, W_f(0, t)): shapes (*t.shape, F, L, L//2+1) and (*t.shape, F)."""
        w = self.kernel(t)
        return torch.fft.rfft2(w), w[..., 0, 0]

    def evaluate(self, phi: Tensor, w_hat: Tensor, w_0: Tensor) -> tuple[Tensor, Tensor]:
        """v and div v, shapes (batch, L, L) and (batch,), for a kernel from ``spectral_kernel``.

        H = (φ, sin(ω_f φ)) has H' = (1, ω_f cos(ω_f φ)), so
        div v = V W_0(0, t) + Σ_{f≥1} W_f(0, t) ω_f Σ_x cos(ω_f φ_x).
        """
        omega = self.frequencies[:, None, None]
        omega_phi = omega * phi.unsqueeze(1)
        h = torch.cat([phi.unsqueeze(1), torch.sin(omega_phi)], dim=1)
        v = torch.fft.irfft2((w_hat * torch.fft.rfft2(h)).sum(dim=1), s=phi.shape[-2:])
        cos_sum = torch.cos(omega_phi).sum(dim=(-2, -1))
        div = phi.shape[-2] * phi.shape[-1] * w_0[0] + cos_sum @ (w_0[1:] * self.frequencies)
        return v, div

    def forward(self, phi: Tensor, t: Tensor | float) -> tuple[Tensor, Tensor]:
        """v(φ, t) and div v at one time t; shapes (batch, L, L) and (batch,)."""
        t = torch.as_tensor(t, dtype=phi.dtype, device=phi.device)
        return self.evaluate(phi, *self.spectral_kernel(t))
