"""Checks particular to the spline couplings; the shared ones are in test_flows.py."""

import pytest
import torch
from zuko.transforms import MonotonicRQSTransform

from fieldflow.flows.nsf import build_nsf
from fieldflow.lattice import Point, action
from fieldflow.training import TrainConfig, train


def randomised(flow, seed=1):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in flow.parameters():
            p.copy_(0.3 * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return flow


@pytest.mark.parametrize("z2_equivariant", [False, True])
def test_linear_tails_are_the_identity(z2_equivariant):
    bound = 2.0
    layer = randomised(build_nsf(4, n_layers=1, bound=bound, z2_equivariant=z2_equivariant))
    layer = layer.double().layers[0]
    g = torch.Generator().manual_seed(0)
    x = torch.randn((5, 4, 4), generator=g, dtype=torch.float64)
    far = torch.sign(x) * (bound + 1.0 + 10.0 * x.abs())
    x = torch.where(layer.active, far, x)
    for direction in (layer.forward, layer.inverse):
        y, log_det = direction(x)
        assert torch.equal(y, x)
        assert torch.equal(log_det, torch.zeros(5, dtype=torch.float64))
    # Inside the bound the same layer is not the identity.
    inside = x.clamp(-0.9 * bound, 0.9 * bound)
    assert not torch.allclose(layer(inside)[0], inside, atol=1e-3)


def test_reversed_parameters_reflect_the_spline():
    # The lemma behind z2_equivariant: reversing the bins gives x ↦ −g(−x).
    g = torch.Generator().manual_seed(0)
    w, h, d = (torch.randn((3, n), generator=g, dtype=torch.float64) for n in (6, 6, 5))
    spline = MonotonicRQSTransform(w, h, d, bound=2.0)
    reflected = MonotonicRQSTransform(w.flip(-1), h.flip(-1), d.flip(-1), bound=2.0)
    x = torch.linspace(-3.0, 3.0, 61, dtype=torch.float64).reshape(61, 1).expand(61, 3)
    y, ladj = spline.call_and_ladj(x)
    y_ref, ladj_ref = reflected.call_and_ladj(-x)
    assert torch.allclose(y_ref, -y, atol=1e-12)
    assert torch.allclose(ladj_ref, ladj, atol=1e-12)


def test_invalid_arguments_rejected():
    with pytest.raises(ValueError, match="even L"):
        build_nsf(5)
    with pytest.raises(ValueError, match="two bins"):
        build_nsf(4, n_bins=1)


def test_one_layer_training_lowers_the_loss():
    point = Point(L=4, s=-4.0, lam=8.0)
    torch.manual_seed(0)
    flow = build_nsf(4, n_layers=1)

    def loss() -> float:
        with torch.no_grad():
            phi, log_q = flow.sample(2048, generator=torch.Generator().manual_seed(7))
            return (log_q + action(phi, point.s, point.lam)).mean().item()

    before = loss()
    config = TrainConfig(steps=100, ess_every=50, ess_samples=128)
    result = train(flow, point, config, seed=3, progress=False)
    assert result.steps == 100
    assert loss() < 0.75 * before
