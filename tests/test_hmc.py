import math

import numpy as np
import pytest
import torch

from fieldflow import analysis
from fieldflow.lattice import (
    Point,
    action,
    force,
    gaussian_observables,
    primary_observables,
    timeslice_correlator,
)
from fieldflow.mcmc import hmc, leapfrog, omelyan
from fieldflow.mcmc.chain import ChainResult
from fieldflow.mcmc.hmc import auto_trajectory_length, run

POINT = Point(6, -4.0, 6.975)
SETTINGS = {
    "n_chains": 3,
    "n_trajectories": 12,
    "burn_in": 20,
    "trajectory_length": 1.0,
    "target_acceptance": 0.8,
    "integrator": "leapfrog",
    "trajectory_jitter": 0.5,
}


def ensemble_primaries(phi):
    """Primaries (chain, draw) and the time-slice correlator (chain, draw, L) of φ."""
    n_chains, n_draws = phi.shape[:2]
    flat = torch.from_numpy(phi.reshape(n_chains * n_draws, *phi.shape[2:])).double()
    parts = {k: v.numpy() for k, v in primary_observables(flat).items()}
    parts["correlator"] = timeslice_correlator(flat).numpy()
    return {k: v.reshape(n_chains, n_draws, *v.shape[1:]) for k, v in parts.items()}


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
    assert result.trajectory_length == 1.0
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
    result = hmc(
        Point(L, s, 0.0), n_chains=32, n_trajectories=600, burn_in=100, seed=11, progress=False
    )
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


def test_auto_trajectory_length_follows_the_exact_free_correlation_length():
    # At λ = 0 the second-moment ξ₂ = 1/√s exactly; τ = c ξ₂ from the burn-in's estimate.
    c, L = 1.0, 8
    taus = {}
    for s in (0.5, 0.1):
        xi = gaussian_observables(L, s)["correlation_length"]
        result = hmc(
            Point(L, s, 0.0),
            32,
            2,
            160,
            seed=3,
            trajectory_length="auto",
            trajectory_per_xi=c,
            progress=False,
        )
        taus[s] = result.trajectory_length
        assert c * xi / 1.35 < taus[s] < c * xi * 1.35, (s, taus[s], c * xi)
        assert result.n_steps * result.step_size == pytest.approx(taus[s])
    assert taus[0.1] > 1.5 * taus[0.5]


def test_auto_trajectory_length_is_clipped_and_falls_back():
    assert auto_trajectory_length(3.0, 16, 0.5) == pytest.approx(1.5)
    assert auto_trajectory_length(0.5, 16, 0.5) == 1.0
    assert auto_trajectory_length(100.0, 16, 0.5) == 8.0
    assert auto_trajectory_length(math.nan, 16) == 1.0
    # A burn-in too short to measure ξ₂ keeps τ₀ = 1.
    result = hmc(POINT, 2, 3, 1, seed=0, trajectory_length="auto", progress=False)
    assert result.trajectory_length == 1.0


@pytest.mark.parametrize("bad", ["long", 0.0, -1.0, math.nan, math.inf, True, None])
def test_invalid_trajectory_length_raises(bad):
    with pytest.raises(ValueError, match="trajectory_length"):
        hmc(POINT, 1, 1, 1, seed=0, trajectory_length=bad, progress=False)
    with pytest.raises(ValueError, match="trajectory_length"):
        run(POINT, {**SETTINGS, "trajectory_length": bad}, seed=0, progress=False)


def test_invalid_trajectory_per_xi_raises():
    with pytest.raises(ValueError, match="trajectory_per_xi"):
        hmc(POINT, 1, 1, 1, seed=0, trajectory_length="auto", trajectory_per_xi=0.0)


def test_run_matches_hmc():
    result = run(POINT, SETTINGS, seed=4, progress=False)
    direct = hmc(POINT, 3, 12, 20, seed=4, trajectory_length=1.0, progress=False)
    assert isinstance(result, ChainResult)
    assert result.phi.shape == (3, 12, 6, 6) and result.phi.dtype == np.float32
    assert np.array_equal(result.phi, direct.phi)
    assert result.per_draw["action"].dtype == np.float64
    assert result.per_draw["accepted"].dtype == bool
    assert all(v.shape == (3, 12) for v in result.per_draw.values())
    assert result.acceptance == direct.acceptance
    info = result.info
    assert info["step_size"] == direct.step_size and info["trajectory_length"] == 1.0
    # Jittered lengths average to about the nominal n = τ/ε.
    assert 0.5 * direct.n_steps <= info["n_leapfrog"] <= 1.5 * direct.n_steps


def test_run_times_every_kept_trajectory():
    result = hmc(POINT, 3, 12, 5, seed=4, progress=False)
    assert result.timing.n_batches == 12  # one batch of all chains per kept trajectory
    info = run(POINT, SETTINGS, seed=4, progress=False).info
    assert 0 < info["seconds_per_update"] < 1  # per trajectory of one 6x6 chain
    assert math.isfinite(info["seconds_per_update_error"])
    assert info["seconds_per_update_error"] >= 0


def test_thin_keeps_every_thin_th_trajectory_and_times_them_all():
    thinned = run(POINT, {**SETTINGS, "n_trajectories": 4, "thin": 3}, seed=4, progress=False)
    every = run(POINT, SETTINGS, seed=4, progress=False)  # the same 12 trajectories
    assert thinned.phi.shape == (3, 4, 6, 6)
    np.testing.assert_array_equal(thinned.phi, every.phi[:, 2::3])
    for name in ("action", "accepted"):
        np.testing.assert_array_equal(thinned.per_draw[name], every.per_draw[name][:, 2::3])
    assert thinned.acceptance == every.acceptance  # over every trajectory, kept or not
    assert thinned.info["thin"] == 3 and every.info["thin"] == 1
    assert thinned.info["n_leapfrog"] == every.info["n_leapfrog"]
    assert hmc(POINT, 3, 4, 5, seed=4, thin=3, progress=False).timing.n_batches == 12
    for bad in (0, 1.5, True):
        with pytest.raises(ValueError, match="thin"):
            run(POINT, {**SETTINGS, "thin": bad}, seed=4, progress=False)


def test_run_auto_reports_the_chosen_length():
    settings = {**SETTINGS, "trajectory_length": "auto", "trajectory_per_xi": 2.0}
    info = run(Point(8, 0.1, 0.0), settings, seed=1, progress=False).info
    assert 1.0 < info["trajectory_length"] <= 4.0
    assert info["step_size"] * info["n_leapfrog"] == pytest.approx(
        info["trajectory_length"], rel=0.5
    )
