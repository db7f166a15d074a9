"""The gauge-equivariant U(1) flow: an exact bijection of the links that commutes with
gauge transformations."""

import math

import pytest
import torch

from fieldflow.flows.gauge import build_gauge_flow, stripes
from fieldflow.u1.lattice import action, gauge_transform, plaquette, wrap


def randomised(flow, seed=1, scale=0.1):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in flow.parameters():
            p.copy_(scale * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return flow


def flow64(L=4, seed=1, **hyper):
    return randomised(build_gauge_flow(L, **hyper).double(), seed=seed)


def uniform_links(n, L, seed=0):
    g = torch.Generator().manual_seed(seed)
    return math.pi * (2.0 * torch.rand((n, 2, L, L), generator=g, dtype=torch.float64) - 1.0)


def mod_2pi_close(a, b, atol=1e-9):
    return torch.allclose(wrap(a - b), torch.zeros_like(a), atol=atol)


def test_round_trip():
    flow, z = flow64(L=8), uniform_links(6, 8)
    links, log_det = flow.transform(z)
    z_back, log_det_inverse = flow.inverse(links)
    assert mod_2pi_close(z_back, z)
    assert torch.allclose(log_det_inverse, -log_det, atol=1e-9)
    assert not mod_2pi_close(links, z, atol=1e-2)
    assert (links > -math.pi).all() and (links <= math.pi).all()


def test_log_det_matches_autograd_jacobian():
    flow, z = flow64(L=4), uniform_links(3, 4)
    _, log_det = flow.transform(z)
    for i in range(3):

        def f(flat):
            return flow.transform(flat.reshape(1, 2, 4, 4))[0].reshape(-1)

        jacobian = torch.autograd.functional.jacobian(f, z[i].reshape(-1))
        assert jacobian.shape == (32, 32)
        sign, logabsdet = torch.linalg.slogdet(jacobian)
        assert sign > 0
        assert torch.allclose(logabsdet, log_det[i], atol=1e-9)
    assert log_det.abs().min() > 1e-2


def test_gauge_equivariance():
    flow, z = flow64(L=8, seed=3), uniform_links(5, 8, seed=4)
    g = torch.Generator().manual_seed(5)
    α = math.pi * (2.0 * torch.rand((5, 8, 8), generator=g, dtype=torch.float64) - 1.0)
    transformed, log_det = flow.transform(gauge_transform(z, α))
    links, log_det_ref = flow.transform(z)
    assert mod_2pi_close(transformed, gauge_transform(links, α))
    assert torch.allclose(log_det, log_det_ref, atol=1e-9)
    # A gauge transformation does move the links, so the check above is not empty.
    assert not mod_2pi_close(transformed, links, atol=1e-2)
    assert torch.allclose(flow.log_prob(gauge_transform(links, α)), flow.log_prob(links))


def test_identity_at_initialisation():
    flow, z = build_gauge_flow(8).double(), uniform_links(4, 8)
    links, log_det = flow.transform(z)
    assert mod_2pi_close(links, z, atol=1e-12)
    assert torch.allclose(log_det, torch.zeros(4, dtype=torch.float64), atol=1e-12)


def test_gradients_reach_every_parameter():
    flow = flow64(L=8)
    links, log_q = flow.sample(16, generator=torch.Generator().manual_seed(2))
    (log_q + action(links, 2.0)).mean().backward()
    for name, p in flow.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_log_prob_of_a_sample_is_its_log_q():
    flow = flow64(L=8)
    links, log_q = flow.sample(8, generator=torch.Generator().manual_seed(6))
    assert torch.allclose(flow.log_prob(links), log_q, atol=1e-9)
    identity = build_gauge_flow(8).double()
    _, log_q0 = identity.sample(3, generator=torch.Generator().manual_seed(6))
    assert torch.allclose(
        log_q0, torch.full((3,), -128 * math.log(2 * math.pi), dtype=torch.float64)
    )


def test_sample_is_reproducible_and_wrapped():
    flow = flow64(L=8)
    a, log_q_a = flow.sample(4, generator=torch.Generator().manual_seed(7))
    b, log_q_b = flow.sample(4, generator=torch.Generator().manual_seed(7))
    assert torch.equal(a, b) and torch.equal(log_q_a, log_q_b)
    assert a.shape == (4, 2, 8, 8) and log_q_a.shape == (4,)
    assert (a > -math.pi).all() and (a <= math.pi).all()
    assert flow.discretisation_error(4) == 0.0


@pytest.mark.parametrize("layer_index", range(8))
def test_layer_moves_active_plaquettes_and_keeps_frozen_ones(layer_index):
    layer = flow64(L=8).layers[layer_index]
    links = uniform_links(3, 8)
    moved, _ = layer(links)
    change = wrap(plaquette(moved) - plaquette(links))
    assert change[:, layer.frozen].abs().max() < 1e-12
    assert (change[:, layer.active].abs() > 1e-6).all()
    # Only links of direction μ on the active stripe move.
    changed = wrap(moved - links).abs() > 1e-12
    expected = torch.zeros((2, 8, 8), dtype=torch.bool)
    expected[layer.mu] = layer.active
    assert torch.equal(changed.any(dim=0), expected)


def test_eight_layers_update_every_link_once():
    flow = build_gauge_flow(8, n_layers=8)
    count = torch.zeros((2, 8, 8), dtype=torch.int64)
    for layer in flow.layers:
        count[layer.mu] += layer.active
    assert torch.equal(count, torch.ones_like(count))


def test_stripes_and_state_dict():
    assert torch.equal(stripes(4, 0, [1])[0], torch.tensor([False, True, False, False]))
    assert torch.equal(stripes(4, 1, [1])[:, 0], torch.tensor([False, True, False, False]))
    flow = build_gauge_flow(8)
    assert not any("active" in k or "frozen" in k for k in flow.state_dict())
    assert 0 < flow.n_parameters() < 20_000


@pytest.mark.parametrize("L", [2, 6, 10])
def test_L_not_divisible_by_4_rejected(L):
    with pytest.raises(ValueError, match="divisible by 4"):
        build_gauge_flow(L)


def test_invalid_hyperparameters_rejected():
    with pytest.raises(ValueError, match="n_layers"):
        build_gauge_flow(8, n_layers=0)
    with pytest.raises(ValueError, match="n_bins"):
        build_gauge_flow(8, n_bins=0)
    with pytest.raises(ValueError, match="kernel_size"):
        build_gauge_flow(8, kernel_size=2)
