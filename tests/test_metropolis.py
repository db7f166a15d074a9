import math

import numpy as np
import pytest
import torch

from fieldflow import analysis
from fieldflow.flows import build_flow
from fieldflow.lattice import Point, gaussian_observables
from fieldflow.mcmc import flow_proposals, independence_metropolis
from fieldflow.mcmc.metropolis import ProposalBatch, StreamingChain, iter_proposals
from fieldflow.mcmc.timing import Stopwatch
from fieldflow.stages import ensemble_primaries
from fieldflow.training import TrainConfig, train


def test_equal_weights_always_accept():
    chain = independence_metropolis(np.zeros((3, 50)), np.random.default_rng(0))
    assert chain.accepted.all()
    assert np.array_equal(chain.index, np.tile(np.arange(50), (3, 1)))


def test_chain_samples_target_from_poor_proposals():
    # Proposals x ~ N(0, 1), target N(0, 0.5^2): log w = log p - log q up to a constant.
    rng = np.random.default_rng(1)
    x = rng.normal(size=(4, 40_000))
    log_w = -0.5 * x**2 / 0.25 + 0.5 * x**2
    chain = independence_metropolis(log_w, rng)
    states = np.take_along_axis(x, chain.index, axis=1)
    estimate = analysis.gamma_estimate(states**2)
    assert abs(estimate.value - 0.25) < 4 * estimate.error
    assert 0.3 < chain.acceptance < 0.9
    assert estimate.tau_int > 0.5


def test_rejects_keep_previous_state():
    log_w = np.array([[0.0, -50.0, -50.0, 0.0]])
    chain = independence_metropolis(log_w, np.random.default_rng(0))
    assert chain.index.tolist() == [[0, 0, 0, 3]]
    assert chain.accepted.tolist() == [[True, False, False, True]]


@pytest.mark.parametrize("sizes", [(200,), (1, 1, 198), (7, 64, 3, 126)])
def test_streaming_chain_continues_across_batches(sizes):
    """Fed in batches, with the same uniforms, the chain is that of independence_metropolis."""
    rng = np.random.default_rng(4)
    proposals = ProposalBatch(
        rng.normal(size=(200, 2, 2)).astype(np.float32), rng.normal(size=200), rng.normal(size=200)
    )
    whole = independence_metropolis(proposals.log_weight[None], np.random.default_rng(5))
    log_u = np.log(np.random.default_rng(5).uniform(size=200))
    chain, states, accepted, start = StreamingChain(), [], [], 0
    for size in sizes:
        part = slice(start, start + size)
        got, accept = chain.extend(proposals[part], log_u[part])
        states.append(got)
        accepted.append(accept)
        start += size
    assert 0.1 < whole.acceptance < 0.9
    np.testing.assert_array_equal(np.concatenate(accepted), whole.accepted[0])
    for field in ("phi", "log_q", "action"):
        stream = np.concatenate([getattr(s, field) for s in states])
        np.testing.assert_array_equal(stream, getattr(proposals, field)[whole.index[0]])


def test_iter_proposals_gives_the_batches_of_flow_proposals():
    torch.manual_seed(0)
    flow = build_flow("realnvp", 4, {"n_layers": 2, "hidden_channels": [4]})
    point = Point(4, -4.0, 8.0)
    whole = flow_proposals(flow, point, 50, 8, torch.Generator().manual_seed(1))
    watch = Stopwatch()
    batches = list(iter_proposals(flow, point, 50, 8, torch.Generator().manual_seed(1), watch))
    assert [len(b) for b in batches] == [7] * 7 + [1] and watch.result().n_batches == 8
    for field in ("phi", "log_q", "action"):
        stream = np.concatenate([getattr(b, field) for b in batches])
        np.testing.assert_array_equal(stream, getattr(whole, field))


@pytest.mark.parametrize(
    ("n", "batch_size", "batches"), [(64, 4096, 8), (100, 10, 10), (5, 4096, 5)]
)
def test_proposals_are_timed_in_at_least_eight_batches(n, batch_size, batches):
    torch.manual_seed(0)
    flow = build_flow("realnvp", 4, {"n_layers": 2, "hidden_channels": [4]})
    proposals = flow_proposals(
        flow, Point(4, -4.0, 8.0), n, batch_size, torch.Generator().manual_seed(1)
    )
    assert proposals.phi.shape == (n, 4, 4) and proposals.log_q.shape == (n,)
    assert proposals.timing.n_batches == batches
    assert 0 < proposals.timing.seconds < 1  # per proposal
    assert math.isfinite(proposals.timing.error) and proposals.timing.error >= 0


def test_flow_plus_metropolis_reproduces_exact_gaussian_theory():
    L, s = 4, 1.0
    point = Point(L, s, 0.0)
    torch.manual_seed(0)
    flow = build_flow("realnvp", L, {"n_layers": 4, "hidden_channels": [8]})
    train(
        flow, point, TrainConfig(steps=150, ess_every=50, ess_samples=256), seed=1, progress=False
    )
    flow = flow.double()
    proposals = flow_proposals(flow, point, 4 * 4096, 4096, torch.Generator().manual_seed(2))
    chain = independence_metropolis(proposals.log_weight.reshape(4, -1), np.random.default_rng(3))
    flat = chain.index + (np.arange(4) * 4096)[:, None]
    estimates = analysis.observables(ensemble_primaries(proposals.phi[flat]), L)
    for name, exact in gaussian_observables(L, s).items():
        e = estimates[name]
        assert math.isfinite(e.error) and e.error > 0
        assert abs(e.value - exact) < 4 * e.error, (name, e, exact)
    # log q is exact: the float64 inverse reproduces it.
    phi = torch.from_numpy(proposals.phi[:8]).double()
    assert np.allclose(flow.log_prob(phi).detach().numpy(), proposals.log_q[:8], atol=1e-4)
    assert chain.acceptance == pytest.approx(chain.accepted.mean())
