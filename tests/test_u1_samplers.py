"""The library's samplers on a U(1) point, against the exact references of fieldflow.u1.exact."""

import math

import numpy as np
import pytest
import torch

from fieldflow.analysis import gamma_estimate
from fieldflow.mcmc.hmc import hmc
from fieldflow.mcmc.metropolis import flow_proposals
from fieldflow.theory import U1
from fieldflow.training import TrainConfig, train
from fieldflow.u1.exact import log_z, references
from fieldflow.u1.point import U1Point


def primaries(phi: np.ndarray) -> dict[str, np.ndarray]:
    """The theory's primaries (chain, draw) of stored links (chain, draw, 2, L, L)."""
    n_chains, n_draws = phi.shape[:2]
    flat = torch.from_numpy(phi.reshape(n_chains * n_draws, *phi.shape[2:])).double()
    return {k: v.numpy().reshape(n_chains, n_draws) for k, v in U1.primaries(flat).items()}


@pytest.mark.parametrize("beta", [1.0, 3.0])
def test_hmc_reproduces_exact_u1(beta):
    point = U1Point(4, beta)
    result = hmc(point, n_chains=16, n_trajectories=300, burn_in=100, seed=11, progress=False)
    assert result.phi.shape == (16, 300, 2, 4, 4)
    # stored links are canonical, in (−π, π] as float32, and not all near the cold start
    pi32 = np.float32(math.pi)
    assert np.all(result.phi > -pi32) and np.all(result.phi <= pi32)
    assert np.abs(result.phi).max() > 3.0
    assert 0.6 < result.acceptance < 0.98
    assert result.accepted.mean() == pytest.approx(result.acceptance, abs=1e-12)
    stored = torch.from_numpy(result.phi.reshape(-1, 2, 4, 4)).double()
    np.testing.assert_allclose(point.action(stored).numpy(), result.action.ravel(), atol=1e-4)

    p = primaries(result.phi)
    np.testing.assert_allclose(p["charge"], np.round(p["charge"]), atol=1e-4)
    exact = references(4, beta)
    plaquette = gamma_estimate(p["plaquette"])
    chi_t = gamma_estimate(p["charge2"] / point.volume)
    assert abs(plaquette.value - exact["plaquette"]) < 4 * plaquette.error
    assert abs(chi_t.value - exact["topological_susceptibility"]) < 4 * chi_t.error
    # the errors are small enough for the comparison to mean something
    assert plaquette.error < 0.01 and chi_t.error < 0.25 * exact["topological_susceptibility"]


def test_hmc_omelyan_runs_on_u1():
    result = hmc(
        U1Point(4, 2.0),
        n_chains=4,
        n_trajectories=20,
        burn_in=20,
        seed=1,
        integrator="omelyan",
        progress=False,
    )
    assert result.phi.shape == (4, 20, 2, 4, 4)
    assert 0.5 < result.acceptance <= 1.0


def test_hmc_refuses_auto_trajectory_length_on_u1():
    with pytest.raises(ValueError, match="trajectory_length"):
        hmc(U1Point(4, 1.0), 2, 2, 2, seed=0, trajectory_length="auto", progress=False)


def _kl(flow, point: U1Point, n: int, seed: int) -> float:
    """Reverse KL + log Z estimate, mean of log q + S over n fresh samples."""
    with torch.no_grad():
        links, log_q = flow.sample(n, generator=torch.Generator().manual_seed(seed))
        return float((log_q + point.action(links)).mean())


def test_training_a_gauge_flow_lowers_the_loss():
    gauge = pytest.importorskip("fieldflow.flows.gauge")
    torch.manual_seed(0)
    flow = gauge.build_gauge_flow(4, n_layers=4, hidden_channels=(8,)).double()
    point = U1Point(4, 2.0)
    before = _kl(flow, point, 2048, seed=5)
    config = TrainConfig(steps=60, batch_size=64, lr=5e-3, ess_every=20, ess_samples=128)
    result = train(flow, point, config, seed=0, progress=False)
    after = _kl(flow, point, 2048, seed=5)
    assert result.steps == 60
    assert all(math.isfinite(row["loss"]) for row in result.history)
    assert math.isfinite(after) and after < before - 0.5
    # the bound KL ≥ −log Z, with Z the partition function in the flow's measure dθ
    log_z_flat = log_z(4, 2.0) + 2 * point.volume * math.log(2 * math.pi)
    assert after > -log_z_flat - 0.1

    proposals = flow_proposals(flow, point, 64, 16, torch.Generator().manual_seed(3))
    assert proposals.phi.shape == (64, 2, 4, 4)
    links = torch.from_numpy(proposals.phi).double()
    np.testing.assert_allclose(point.action(links).numpy(), proposals.action, atol=1e-4)
    assert np.all(np.isfinite(proposals.log_weight))
