"""Exact U(1) references against independent evaluations: FFT convolutions, limits, and HMC."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.integrate import quad
from scipy.special import iv

from fieldflow.mcmc.integrators import leapfrog
from fieldflow.u1 import action, exact, force, primary_observables

POINTS = [(2, 1.0), (3, 2.0), (4, 4.0), (5, 0.5)]


def circle_grid(n: int) -> np.ndarray:
    """n equally spaced angles in (−π, π]; π sits at index n/2."""
    phi = 2.0 * np.pi * np.arange(n) / n
    return np.where(phi > np.pi, phi - 2.0 * np.pi, phi)


def fft_log_z_and_plaquette(L: int, beta: float, n: int = 256) -> tuple[float, float]:
    r"""Gauge-fixed Z = (f ⊛ … ⊛ f)(0), the V-fold circular convolution of f = e^{β cos φ}
    (normalised ∫dφ/2π), and ⟨cos θ_P⟩ = ((f cos) ⊛ f ⊛ … ⊛ f)(0) / Z, on an n-point grid."""
    volume = L * L
    phi = circle_grid(n)
    f = np.exp(beta * (np.cos(phi) - 1.0))  # scaled by e^{−β}, restored in log Z
    f_k = np.fft.fft(f) / n
    fcos_k = np.fft.fft(f * np.cos(phi)) / n
    z = np.sum(f_k**volume).real
    cos_term = np.sum(fcos_k * f_k ** (volume - 1)).real
    return volume * beta + math.log(z), cos_term / z


def charge_sector_weights(L: int, beta: float, n: int) -> np.ndarray:
    r"""Z_Q for Q ∈ ℤ (numpy FFT order), from Z(a) = Σ_Q e^{2πiaQ} Z_Q.

    Z(a) is the V-fold circular convolution at 0 of g_a(φ) = e^{β cos φ + iaφ} on (−π, π];
    g_a jumps at ±π, where the grid takes the mean of the two sides (trapezoid rule). |Q| ≤ V/2,
    so sampling a at M > V points recovers every Z_Q without aliasing.
    """
    volume = L * L
    m = 4 * (volume + 2)
    a = np.arange(m) / m
    phi = circle_grid(n)
    g = np.exp(beta * (np.cos(phi) - 1.0))[None, :] * np.exp(1j * np.outer(a, phi))
    g[:, n // 2] = np.exp(-2.0 * beta) * np.cos(np.pi * a)
    z_of_a = np.sum((np.fft.fft(g, axis=1) / n) ** volume, axis=1)
    return np.fft.ifft(z_of_a).real


def sector_susceptibility(L: int, beta: float, n: int = 1024) -> float:
    """χ_t = Σ_Q Q² Z_Q / (V Σ_Q Z_Q), Richardson-extrapolated in the grid step (error h²)."""
    coarse, fine = (charge_sector_weights(L, beta, k) for k in (n, 2 * n))
    z_q = (4.0 * fine - coarse) / 3.0
    q = np.fft.fftfreq(z_q.size, 1.0 / z_q.size)
    return float(np.sum(q * q * z_q) / np.sum(z_q) / (L * L))


@pytest.mark.parametrize(("L", "beta"), POINTS)
def test_log_z_and_plaquette_match_fft_convolution(L: int, beta: float) -> None:
    log_z, plaq = fft_log_z_and_plaquette(L, beta)
    assert exact.log_z(L, beta) == pytest.approx(log_z, rel=1e-12)
    assert exact.plaquette(L, beta) == pytest.approx(plaq, rel=1e-11)
    # The plaquette is (1/V) ∂_β log Z.
    h = 1e-4
    derivative = (exact.log_z(L, beta + h) - exact.log_z(L, beta - h)) / (2 * h * L * L)
    assert exact.plaquette(L, beta) == pytest.approx(derivative, rel=1e-7)


@pytest.mark.parametrize(("L", "beta"), POINTS)
def test_susceptibility_matches_charge_sectors(L: int, beta: float) -> None:
    assert exact.topological_susceptibility(L, beta) == pytest.approx(
        sector_susceptibility(L, beta), rel=1e-9
    )


@pytest.mark.parametrize("beta", [0.5, 2.0, 6.0])
def test_large_volume_limits(beta: float) -> None:
    # V = 1024: the n ≠ 0 orders weigh (I_1/I_0)^V < e^{−80}; only one plaquette's law is left.
    assert exact.plaquette(32, beta) == pytest.approx(iv(1, beta) / iv(0, beta), rel=1e-12)
    norm = quad(lambda p: math.exp(beta * (math.cos(p) - 1)), -math.pi, math.pi)[0]
    phi2 = quad(lambda p: p * p * math.exp(beta * (math.cos(p) - 1)), -math.pi, math.pi)[0]
    chi_infinite = phi2 / norm / (4 * math.pi**2)
    assert exact.topological_susceptibility(32, beta) == pytest.approx(chi_infinite, rel=1e-10)
    # A small lattice differs visibly (the check above is not a tautology).
    assert abs(exact.plaquette(2, beta) / (iv(1, beta) / iv(0, beta)) - 1) > 1e-3


@pytest.mark.parametrize("beta", [20.0, 40.0])
def test_large_beta_continuum_susceptibility(beta: float) -> None:
    # ⟨φ²⟩ = (1/β)(1 + 1/(2β) + O(β⁻²)) for the weight e^{β cos φ}, so 4π²β χ_t → 1.
    scaled = 4 * math.pi**2 * beta * exact.topological_susceptibility(64, beta)
    assert scaled == pytest.approx(1 + 0.5 / beta, abs=2.0 / beta**2)


def test_small_beta_limit() -> None:
    for L in (2, 3, 8):
        assert exact.topological_susceptibility(L, 1e-8) == pytest.approx(1 / 12, rel=1e-6)
        assert exact.plaquette(L, 1e-8) == pytest.approx(0.5e-8, rel=1e-6)
        assert exact.log_z(L, 1e-8) == pytest.approx(0.0, abs=1e-10)


def test_susceptibility_falls_with_beta_at_fixed_volume() -> None:
    chi = [exact.topological_susceptibility(8, beta) for beta in (1, 2, 3, 4, 5, 6)]
    assert all(a > b for a, b in zip(chi, chi[1:], strict=False))
    # Finite volume suppresses χ_t below its infinite-volume value at large β.
    assert chi[-1] < exact.topological_susceptibility(32, 6.0)


def test_single_site_lattice_is_trivial() -> None:
    # At L = 1 the only plaquette angle θ_1 + θ_2 − θ_1 − θ_2 vanishes identically.
    assert exact.log_z(1, 2.5) == pytest.approx(2.5, rel=1e-13)
    assert exact.references(1, 2.5) == {
        "plaquette": pytest.approx(1.0),
        "topological_susceptibility": 0.0,
    }


def test_references_keys() -> None:
    refs = exact.references(8, 2.0)
    assert set(refs) == {"plaquette", "topological_susceptibility"}
    assert refs["plaquette"] == exact.plaquette(8, 2.0)
    assert all(isinstance(v, float) for v in refs.values())


@pytest.mark.parametrize("beta", [0.0, -1.0, math.nan, math.inf])
def test_bad_beta_raises(beta: float) -> None:
    for fn in (exact.log_z, exact.plaquette, exact.topological_susceptibility, exact.references):
        with pytest.raises(ValueError, match="beta"):
            fn(4, beta)


@pytest.mark.parametrize("L", [0, -3, 2.5])
def test_bad_L_raises(L: int) -> None:
    for fn in (exact.log_z, exact.plaquette, exact.topological_susceptibility, exact.references):
        with pytest.raises(ValueError, match="L"):
            fn(L, 1.0)


def test_hmc_agrees_with_exact_references() -> None:
    """HMC over 256 independent chains at L = 4, β = 1; errors from the spread of chain means."""
    L, beta, chains, n_therm, n_meas = 4, 1.0, 256, 50, 200
    gen = torch.Generator().manual_seed(1234)
    links = (2 * torch.rand(chains, 2, L, L, generator=gen, dtype=torch.float64) - 1) * math.pi

    def f(x: torch.Tensor) -> torch.Tensor:
        return force(x, beta)

    sums = {key: torch.zeros(chains, dtype=torch.float64) for key in ("plaquette", "charge2")}
    accepted = 0.0
    for step in range(n_therm + n_meas):
        pi = torch.randn(links.shape, generator=gen, dtype=torch.float64)
        h_old = 0.5 * (pi * pi).sum(dim=(1, 2, 3)) + action(links, beta)
        new, pi_new = leapfrog(links, pi, f, 0.1, 10)
        h_new = 0.5 * (pi_new * pi_new).sum(dim=(1, 2, 3)) + action(new, beta)
        log_u = torch.log(torch.rand(chains, generator=gen, dtype=torch.float64))
        accept = log_u < h_old - h_new
        links = torch.where(accept[:, None, None, None], new, links)
        if step >= n_therm:
            accepted += accept.double().mean().item() / n_meas
            obs = primary_observables(links)
            for key in sums:
                sums[key] += obs[key] / n_meas
    assert accepted > 0.8
    refs = exact.references(L, beta)
    for key, value in (
        ("plaquette", refs["plaquette"]),
        ("charge2", refs["topological_susceptibility"] * L * L),
    ):
        chain_means = sums[key]
        stderr = chain_means.std().item() / math.sqrt(chains)
        assert abs(chain_means.mean().item() - value) < 4 * stderr, (key, value, stderr)
