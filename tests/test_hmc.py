import math

import numpy as np
import pytest
import torch

from fieldflow import analysis
from fieldflow.lattice import Point, action, force, gaussian_observables
from fieldflow.mcmc import hmc, leapfrog, omelyan
from fieldflow.stages import ensemble_primaries

POINT = Point(6, -4.0, 6.975)


def start(seed=0, batch=4):
    g = torch.Generator().manual_seed(seed)
    phi = 0.5 * torch.randn((batch, POINT.L, POINT.L), generator=g, dtype=torch.float64)
    pi = torch.randn((batch, POINT.L, POINT.L), generator=g, dtype=torch.float64)
    return phi, pi


def f(x):
    return force(x, POINT.s, POINT.lam)


def energy(phi, pi):
    return 0.5 * (pi * pi).sum(dim=(-2, -1)) + action(phi, POINT.s, POINT.lam)


@pytest.mark.parametrize("integrator", [leapfrog, omelyan])
def test_integrator_is_reversible(integrator):
    phi0, pi0 = start()
    phi1, pi1 = integrator(phi0, pi0, f, 0.05, 20)
    phi2, pi2 = integrator(phi1, -pi1, f, 0.05, 20)
    assert torch.allclose(phi2, phi0, atol=1e-10)
    assert torch.allclose(-pi2, pi0, atol=1e-10)


@pytest.mark.parametrize("integrator", [leapfrog, omelyan])
def test_energy_error_shrinks_as_eps_squared(integrator):
    phi0, pi0 = start(batch=8)
    h0 = energy(phi0, pi0)
    errors = []
    for n in (20, 40, 80):
        phi, pi = integrator(phi0, pi0, f, 0.5 / n, n)
        errors.append((energy(phi, pi) - h0).abs().mean().item())
    ratios = [errors[i] / errors[i + 1] for i in range(2)]
    assert ratios == pytest.approx([4.0, 4.0], rel=0.15)


def test_step_size_fixed_after_burn_in_and_acceptance_near_target():
    result = hmc(POINT, n_chains=8, n_trajectories=50, burn_in=100, seed=1, progress=False)
    assert result.phi.shape == (8, 50, 6, 6) and result.phi.dtype == np.float32
    assert result.n_steps * result.step_size == pytest.approx(1.0)
    assert 0.6 < result.acceptance < 0.95
    # Stored actions belong to the stored configurations.
    recomputed = action(torch.from_numpy(result.phi[:, -1]).double(), POINT.s, POINT.lam)
    assert np.allclose(recomputed.numpy(), result.action[:, -1], rtol=1e-5)


def test_same_seed_same_chain():
    a = hmc(POINT, 2, 10, 10, seed=5, progress=False)
    b = hmc(POINT, 2, 10, 10, seed=5, progress=False)
    assert np.array_equal(a.phi, b.phi)


def test_reproduces_exact_gaussian_theory():
    L, s = 4, 1.0
    result = hmc(Point(L, s, 0.0), n_chains=32, n_trajectories=600, burn_in=100, seed=11,
                 progress=False)  # fmt: skip
    estimates = analysis.observables(ensemble_primaries(result.phi), L)
    for name, exact in gaussian_observables(L, s).items():
        e = estimates[name]
        assert math.isfinite(e.error) and e.error > 0
        assert abs(e.value - exact) < 4 * e.error, (name, e, exact)


def test_jitter_breaks_resonance_of_fixed_trajectories():
    # At L = 4, s = 1 the modes with ω² = 2(s + 4) turn φ² almost exactly once per unit
    # trajectory; a fixed length then decorrelates φ² slowly, a jittered one does not.
    point = Point(4, 1.0, 0.0)
    taus = {}
    for jitter in (0.0, 0.5):
        result = hmc(point, 16, 1500, 50, seed=0, jitter=jitter, progress=False)
        taus[jitter] = analysis.gamma_estimate(ensemble_primaries(result.phi)["phi2"]).tau_int
    assert taus[0.5] < 0.5 * taus[0.0]
    with pytest.raises(ValueError, match="jitter"):
        hmc(point, 1, 10, 1, seed=0, jitter=1.0)
