"""U(1) lattice physics: force, gauge invariance, periodicity, the charge, and HMC's leapfrog."""

from __future__ import annotations

import math

import pytest
import torch

from fieldflow.mcmc.integrators import leapfrog
from fieldflow.u1 import (
    action,
    force,
    gauge_transform,
    plaquette,
    primary_observables,
    topological_charge,
    wrap,
)

TWO_PI = 2.0 * math.pi


def hot_links(batch: int, L: int, seed: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Uniform (β = 0) link angles in (−π, π], shape (batch, 2, L, L)."""
    gen = torch.Generator().manual_seed(seed)
    return (2.0 * torch.rand(batch, 2, L, L, generator=gen, dtype=dtype) - 1.0) * math.pi


def flux_links(L: int, k: int) -> torch.Tensor:
    """One configuration with every plaquette angle 2πk/V (k units of flux spread evenly).

    θ_2(x) = b x_1 gives θ_P = b except at x_1 = L − 1; θ_1(L−1, x_2) = −b L x_2 restores it.
    """
    b = TWO_PI * k / (L * L)
    x = torch.arange(L, dtype=torch.float64)
    links = torch.zeros(1, 2, L, L, dtype=torch.float64)
    links[0, 1] = b * x[:, None].expand(L, L)
    links[0, 0, L - 1] = -b * L * x
    return links


def test_wrap_canonical_range() -> None:
    angles = torch.tensor([math.pi, -math.pi, 3 * math.pi, 0.5, -0.5 - 4 * math.pi])
    expected = torch.tensor([math.pi, math.pi, math.pi, 0.5, -0.5])
    torch.testing.assert_close(wrap(angles), expected)


def test_force_is_minus_autograd_gradient() -> None:
    links = hot_links(6, 5, seed=1).requires_grad_(True)
    beta = 1.7
    (grad,) = torch.autograd.grad(action(links, beta).sum(), links)
    torch.testing.assert_close(force(links.detach(), beta), -grad, rtol=0, atol=1e-13)


def test_single_link_known_action_and_force() -> None:
    L, beta, t = 4, 2.5, 1.1
    links = torch.zeros(1, 2, L, L, dtype=torch.float64)
    links[0, 0, 1, 2] = t  # θ_1 at x = (1, 2) sits in θ_P(1, 2) (+) and θ_P(1, 1) (−)
    p = plaquette(links)[0]
    assert p[1, 2] == pytest.approx(t) and p[1, 1] == pytest.approx(-t)
    assert p.abs().sum() == pytest.approx(2 * t)
    assert action(links, beta).item() == pytest.approx(-beta * (L * L - 2 + 2 * math.cos(t)))
    f = force(links, beta)[0]
    assert f[0, 1, 2].item() == pytest.approx(-2.0 * beta * math.sin(t))
    assert topological_charge(links).item() == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize(("L", "k"), [(4, 1), (4, -1), (5, 2), (6, -3), (8, 1)])
def test_even_flux_has_integer_charge(L: int, k: int) -> None:
    links = flux_links(L, k)
    b = TWO_PI * k / (L * L)
    torch.testing.assert_close(plaquette(links), torch.full((1, L, L), b, dtype=torch.float64))
    assert topological_charge(links).item() == pytest.approx(k, abs=1e-12)
    assert action(links, 1.3).item() == pytest.approx(-1.3 * L * L * math.cos(b))
    # Same charge after a random gauge transformation.
    alpha = hot_links(1, L, seed=7)[:, 0]
    assert topological_charge(gauge_transform(links, alpha)).item() == pytest.approx(k, abs=1e-9)


def test_gauge_invariance() -> None:
    links = hot_links(8, 6, seed=2)
    alpha = hot_links(8, 6, seed=3)[:, 0]
    moved = gauge_transform(links, alpha)
    assert (moved - links).abs().max() > 1.0  # the links themselves did change
    assert wrap(plaquette(moved) - plaquette(links)).abs().max() < 1e-12
    torch.testing.assert_close(action(moved, 2.0), action(links, 2.0), rtol=0, atol=1e-12)
    torch.testing.assert_close(
        topological_charge(moved), topological_charge(links), atol=1e-9, rtol=0
    )
    # The force is gauge covariant: a link's force depends only on plaquettes.
    torch.testing.assert_close(force(moved, 2.0), force(links, 2.0), rtol=0, atol=1e-12)


def test_periodic_in_every_link() -> None:
    links = hot_links(8, 4, seed=4)
    gen = torch.Generator().manual_seed(5)
    turns = torch.randint(-3, 4, links.shape, generator=gen).to(torch.float64)
    shifted = links + TWO_PI * turns
    assert wrap(plaquette(shifted) - plaquette(links)).abs().max() < 1e-12
    torch.testing.assert_close(plaquette(shifted), plaquette(links), rtol=0, atol=1e-12)
    torch.testing.assert_close(action(shifted, 1.5), action(links, 1.5), rtol=0, atol=1e-12)
    torch.testing.assert_close(force(shifted, 1.5), force(links, 1.5), rtol=0, atol=1e-12)
    torch.testing.assert_close(topological_charge(shifted), topological_charge(links))
    alpha = hot_links(8, 4, seed=6)[:, 0]
    torch.testing.assert_close(
        wrap(gauge_transform(shifted, alpha + TWO_PI) - gauge_transform(links, alpha)),
        torch.zeros_like(links),
        rtol=0,
        atol=1e-12,
    )


@pytest.mark.parametrize("L", [4, 6, 8])
def test_charge_is_integer_and_nontrivial_on_hot_configurations(L: int) -> None:
    q = topological_charge(hot_links(4000, L, seed=10 + L))
    assert (q - q.round()).abs().max() < 1e-9
    assert (q.round() != 0).sum() > 100
    # At β = 0 the plaquette angles are V uniform angles whose sum is ≡ 0 (mod 2π), so
    # ⟨Q²⟩ = V/12 (the β → 0 limit of the exact χ_t); 4000 samples give ~2% errors.
    volume = L * L
    q2 = q * q
    stderr = q2.std() / math.sqrt(q2.numel())
    assert abs(q2.mean() - volume / 12) < 4 * stderr


def test_dtype_and_shapes_preserved() -> None:
    links = hot_links(3, 4, seed=8, dtype=torch.float32)
    assert plaquette(links).shape == (3, 4, 4) and plaquette(links).dtype == torch.float32
    assert action(links, 1.0).shape == (3,) and action(links, 1.0).dtype == torch.float32
    assert force(links, 1.0).shape == links.shape and force(links, 1.0).dtype == torch.float32
    assert topological_charge(links).dtype == torch.float32
    assert gauge_transform(links, links[:, 0]).dtype == torch.float32


def test_primary_observables() -> None:
    links = torch.cat([flux_links(4, 1), flux_links(4, -2), torch.zeros(1, 2, 4, 4).double()])
    obs = primary_observables(links)
    assert set(obs) == {"plaquette", "charge", "charge2"}
    b = TWO_PI / 16
    expected = torch.tensor([math.cos(b), math.cos(2 * b), 1.0], dtype=torch.float64)
    torch.testing.assert_close(obs["plaquette"], expected)
    torch.testing.assert_close(obs["charge"], torch.tensor([1.0, -2.0, 0.0]).double())
    torch.testing.assert_close(obs["charge2"], torch.tensor([1.0, 4.0, 0.0]).double())


def _hamiltonian(links: torch.Tensor, pi: torch.Tensor, beta: float) -> torch.Tensor:
    return 0.5 * (pi * pi).sum(dim=(1, 2, 3)) + action(links, beta)


def test_leapfrog_reversible() -> None:
    beta = 2.0
    links = hot_links(8, 6, seed=20)
    pi = torch.randn(links.shape, generator=torch.Generator().manual_seed(21), dtype=torch.float64)

    def f(x: torch.Tensor) -> torch.Tensor:
        return force(x, beta)

    end, pi_end = leapfrog(links, pi, f, 0.05, 40)
    assert (end - links).abs().max() > 0.1
    back, pi_back = leapfrog(end, -pi_end, f, 0.05, 40)
    assert (back - links).abs().max() < 1e-10
    assert (pi_back + pi).abs().max() < 1e-10


def test_leapfrog_energy_error_scales_as_eps_squared() -> None:
    beta = 2.0
    links = hot_links(16, 6, seed=22)
    pi = torch.randn(links.shape, generator=torch.Generator().manual_seed(23), dtype=torch.float64)
    h0 = _hamiltonian(links, pi, beta)

    def f(x: torch.Tensor) -> torch.Tensor:
        return force(x, beta)

    errors = []
    for n_steps in (20, 40, 80):  # a unit trajectory, ε = 1/n_steps
        end, pi_end = leapfrog(links, pi, f, 1.0 / n_steps, n_steps)
        errors.append((_hamiltonian(end, pi_end, beta) - h0).abs().sum().item())
    ratios = [errors[0] / errors[1], errors[1] / errors[2]]
    assert all(3.5 < r < 4.5 for r in ratios), ratios


def test_primary_charge_is_rounded_so_a_frozen_chain_is_constant() -> None:
    # The geometric Q is off an integer by rounding noise (~1e-15 in float64, ~1e-6 in
    # float32); the primary is the integer itself.
    for dtype in (torch.float64, torch.float32):
        links = hot_links(2000, 8, seed=3, dtype=dtype)
        geometric = topological_charge(links)
        assert (geometric != geometric.round()).any()  # the noise rounding removes
        obs = primary_observables(links)
        assert torch.equal(obs["charge"], geometric.round())
        assert torch.equal(obs["charge2"], obs["charge"] ** 2)
    # One configuration gauge transformed again and again: Q is the same sector each time,
    # and the primary exactly the same number, so a frozen chain has a constant Q.
    gen = torch.Generator().manual_seed(4)
    alpha = (2.0 * torch.rand(50, 8, 8, generator=gen, dtype=torch.float64) - 1.0) * math.pi
    frozen = gauge_transform(hot_links(1, 8, seed=3).expand(50, -1, -1, -1), alpha)
    charges = primary_observables(frozen)["charge"]
    assert (charges == charges[0]).all()
    assert not (topological_charge(frozen) == topological_charge(frozen)[0]).all()
