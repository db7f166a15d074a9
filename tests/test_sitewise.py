"""The site spline: one odd monotone spline at every site, exact and equivariant."""

import pytest
import torch

from fieldflow.flows.sitewise import SiteSpline

L = 4


def layer(seed=1, n_bins=4, bound=1.5, random=True):
    module = SiteSpline(n_bins, bound).double()
    if random:
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for p in module.parameters():
                p.copy_(0.5 * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return module


def noise(batch=3, seed=2, L=L):
    # Bound 1.5: some sites beyond it, in the identity tails, so both regimes are checked.
    g = torch.Generator().manual_seed(seed)
    return torch.randn((batch, L, L), generator=g, dtype=torch.float64)


def test_identity_at_initialisation_and_not_after_random_weights():
    z = noise()
    assert (z.abs() > 1.5).any() and (z.abs() < 1.5).any()
    phi, log_det = layer(random=False)(z)
    assert torch.allclose(phi, z, atol=1e-14) and not log_det.abs().max() > 1e-14
    phi, log_det = layer()(z)
    assert not torch.allclose(phi, z, atol=1e-3) and log_det.abs().min() > 1e-3


@pytest.mark.parametrize("seed", [1, 2])
def test_inverse_round_trip(seed):
    module, z = layer(seed), noise(seed=seed)
    phi, log_det = module(z)
    z_back, log_det_inv = module.inverse(phi)
    assert torch.allclose(z_back, z, atol=1e-12)
    assert torch.allclose(log_det_inv, -log_det, atol=1e-12)


def test_log_det_equals_autograd_jacobian():
    module, z = layer(), noise()
    _, log_det = module(z)
    for b in range(z.shape[0]):
        jac = torch.autograd.functional.jacobian(
            lambda x: module(x.reshape(1, L, L))[0].reshape(-1), z[b].reshape(-1)
        )
        sign, logabs = torch.linalg.slogdet(jac)
        assert sign.item() == 1.0
        assert logabs.item() == pytest.approx(log_det[b].item(), abs=1e-11)


SYMMETRIES = {
    "negate": lambda phi: -phi,
    "translate": lambda phi: phi.roll((1, 2), (-2, -1)),
    "rotate": lambda phi: phi.rot90(1, (-2, -1)),
    "reflect": lambda phi: phi.flip(-1),
}


@pytest.mark.parametrize("symmetry", SYMMETRIES)
def test_equivariance(symmetry):
    g, module, z = SYMMETRIES[symmetry], layer(), noise()
    phi, log_det = module(z)
    phi_g, log_det_g = module(g(z))
    assert torch.allclose(phi_g, g(phi), atol=1e-13)
    assert torch.allclose(log_det_g, log_det, atol=1e-13)


def test_odd_monotone_and_the_identity_beyond_the_bound():
    x = torch.linspace(-3.0, 3.0, 601, dtype=torch.float64)
    h = layer()(x.reshape(1, 1, -1))[0].reshape(-1)
    assert (h.diff() > 0).all() and torch.allclose(h, -h.flip(0), atol=1e-13)
    beyond = x.abs() >= 1.5
    assert torch.allclose(h[beyond], x[beyond], atol=1e-13)


def test_gradients_reach_every_parameter():
    module = layer()
    phi, log_det = module(noise())
    ((phi**4).sum(dim=(-2, -1)) - log_det).sum().backward()
    for name, p in module.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_the_same_map_at_any_lattice_size():
    small = layer()
    large = small.at(12)
    for (name, a), b in zip(small.named_parameters(), large.parameters(), strict=True):
        assert torch.equal(a, b) and a is not b, name
    assert (large.n_bins, large.bound) == (small.n_bins, small.bound)


def test_bad_arguments():
    with pytest.raises(ValueError, match="n_bins"):
        SiteSpline(n_bins=0)
    with pytest.raises(ValueError, match="bound"):
        SiteSpline(bound=-1.0)
