"""The zero-mode spline: an odd map of the zero mode, a scale of the rest, and transfer.

Exactness, invertibility and equivariance, shared with the site spline, are in
test_spline_layers.py.
"""

import pytest
import torch

from fieldflow.flows.zeromode import ZeroModeSpline

L = 4


def randomise(module, seed=1, scale=0.5):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(scale * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return module


def layer(seed=1, L=L, n_bins=4, bound=2.0, random=True):
    module = ZeroModeSpline(L, n_bins, bound).double()
    return randomise(module, seed) if random else module


def noise(batch=6, seed=2, L=L, scale=1.5):
    # Scale 1.5 puts some zero modes a = Σφ/√V beyond the bound 2: both regimes are checked.
    g = torch.Generator().manual_seed(seed)
    return scale * torch.randn((batch, L, L), generator=g, dtype=torch.float64)


def zero_mode(phi):
    return phi.sum(dim=(-2, -1)) / phi.shape[-1]


def test_some_zero_modes_lie_beyond_the_bound():
    a = zero_mode(noise())
    assert (a.abs() > 2.0).any() and (a.abs() < 2.0).any()


def test_moves_the_zero_mode_by_an_odd_monotone_map_and_scales_the_rest():
    module, z = layer(), noise()
    phi, _ = module(z)
    a, a_new = zero_mode(z), zero_mode(phi)
    mean = lambda x: x.mean(dim=(-2, -1), keepdim=True)  # noqa: E731
    γ = module.log_width.detach()
    assert torch.allclose(phi - mean(phi), γ.exp() * (z - mean(z)), atol=1e-13)
    grid = torch.linspace(-8.0, 8.0, 401, dtype=torch.float64)
    uniform = grid[:, None, None].expand(-1, L, L) / L  # zero mode = grid
    g_of_a = zero_mode(module(uniform)[0])
    assert (g_of_a.diff() > 0).all()
    assert torch.allclose(g_of_a, -g_of_a.flip(0), atol=1e-13)
    assert torch.allclose(a_new, torch.sign(a) * torch.abs(a_new))


def test_linear_beyond_the_bound():
    module = layer()
    a = torch.tensor([2.5, 3.0, 6.0], dtype=torch.float64)
    g_of_a = zero_mode(module(a[:, None, None].expand(-1, L, L) / L)[0])
    slope = module.log_scale.detach().exp()
    assert torch.allclose(g_of_a.diff(), slope * a.diff(), atol=1e-13)


def test_a_larger_lattice_keeps_the_magnetisation_per_site():
    small = layer()
    large = small.at(12)
    assert large.L == 12 and large.n_bins == small.n_bins and large.bound == small.bound
    a = torch.linspace(-4.0, 4.0, 9, dtype=torch.float64)  # noise zero modes, N(0, 1) at any L
    m_small = zero_mode(small(a[:, None, None].expand(-1, L, L) / L)[0]) / L
    m_large = zero_mode(large(a[:, None, None].expand(-1, 12, 12) / 12)[0]) / 12
    assert torch.allclose(m_large, m_small, atol=1e-13)
    z = noise(L=12)
    phi, log_det = large(z)
    z_back, log_det_inv = large.inverse(phi)
    assert torch.allclose(z_back, z, atol=1e-12) and torch.allclose(log_det_inv, -log_det)


def test_density_of_the_zero_mode_is_normalised():
    # The marginal of a' = g(a), a ~ N(0, 1): N(g⁻¹(a')) |dg⁻¹/da'|, by quadrature; the
    # inverse's log-det also holds the fluctuations' −(V − 1) γ, which is added back.
    module = layer(n_bins=3)
    a_new = torch.linspace(-40.0, 40.0, 40001, dtype=torch.float64)
    z, log_det = module.inverse(a_new[:, None, None].expand(-1, L, L) / L)
    a = zero_mode(z)
    log_det_a = log_det + (L * L - 1) * module.log_width.detach()
    density = torch.exp(-0.5 * a**2 + log_det_a) / (2 * torch.pi) ** 0.5
    assert torch.trapezoid(density, a_new).item() == pytest.approx(1.0, abs=1e-4)
