"""What the cnf's two spline layers share: exact, invertible, equivariant, trainable.

The zero-mode spline (:class:`~fieldflow.flows.zeromode.ZeroModeSpline`) maps the field's
zero mode and scales the rest; the site spline (:class:`~fieldflow.flows.sitewise.SiteSpline`)
maps every site, the same map at every L. The zero-mode spline's own properties are in
test_zeromode.py.
"""

import pytest
import torch

from fieldflow.flows.sitewise import SiteSpline
from fieldflow.flows.zeromode import ZeroModeSpline

L = 4
#: Bounds that put some zero modes (bound 2) and some sites (bound 1.5) of the noise
#: below beyond them: both regimes of each spline are checked.
LAYERS = {
    "zero_mode": lambda: ZeroModeSpline(L, n_bins=4, bound=2.0),
    "site": lambda: SiteSpline(n_bins=4, bound=1.5),
}
SYMMETRIES = {
    "negate": lambda phi: -phi,
    "translate": lambda phi: phi.roll((1, 2), (-2, -1)),
    "rotate": lambda phi: phi.rot90(1, (-2, -1)),
    "reflect": lambda phi: phi.flip(-1),
}


def layer(kind, seed=1, random=True):
    module = LAYERS[kind]().double()
    if random:
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for p in module.parameters():
                p.copy_(0.5 * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return module


def noise(batch=6, seed=2):
    g = torch.Generator().manual_seed(seed)
    return 1.5 * torch.randn((batch, L, L), generator=g, dtype=torch.float64)


@pytest.mark.parametrize("kind", LAYERS)
def test_identity_at_initialisation_and_not_after_random_weights(kind):
    z = noise()
    phi, log_det = layer(kind, random=False)(z)
    assert torch.allclose(phi, z, atol=1e-14) and not log_det.abs().max() > 1e-14
    phi, log_det = layer(kind)(z)
    assert not torch.allclose(phi, z, atol=1e-3) and log_det.abs().min() > 1e-3


@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("kind", LAYERS)
def test_inverse_round_trip(kind, seed):
    module, z = layer(kind, seed), noise(seed=seed)
    phi, log_det = module(z)
    z_back, log_det_inv = module.inverse(phi)
    assert torch.allclose(z_back, z, atol=1e-12)
    assert torch.allclose(log_det_inv, -log_det, atol=1e-12)


@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("kind", LAYERS)
def test_log_det_equals_autograd_jacobian(kind, seed):
    module, z = layer(kind, seed), noise(batch=3, seed=seed)
    _, log_det = module(z)
    for b in range(z.shape[0]):
        jac = torch.autograd.functional.jacobian(
            lambda x: module(x.reshape(1, L, L))[0].reshape(-1), z[b].reshape(-1)
        )
        sign, logabs = torch.linalg.slogdet(jac)
        assert sign.item() == 1.0
        assert logabs.item() == pytest.approx(log_det[b].item(), abs=1e-11)


@pytest.mark.parametrize("symmetry", SYMMETRIES)
@pytest.mark.parametrize("kind", LAYERS)
def test_equivariance(kind, symmetry):
    g, module, z = SYMMETRIES[symmetry], layer(kind), noise()
    phi, log_det = module(z)
    phi_g, log_det_g = module(g(z))
    assert torch.allclose(phi_g, g(phi), atol=1e-13)
    assert torch.allclose(log_det_g, log_det, atol=1e-13)


@pytest.mark.parametrize("kind", LAYERS)
def test_gradients_reach_every_parameter(kind):
    module = layer(kind)
    phi, log_det = module(noise())
    ((phi**4).sum(dim=(-2, -1)) - log_det).sum().backward()
    for name, p in module.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_bad_arguments():
    for make in (lambda **k: ZeroModeSpline(4, **k), lambda **k: SiteSpline(**k)):
        with pytest.raises(ValueError, match="n_bins"):
            make(n_bins=0)
        with pytest.raises(ValueError, match="bound"):
            make(bound=0.0)
        with pytest.raises(ValueError, match="bound"):
            make(bound=-1.0)


def test_the_site_spline_is_odd_monotone_and_the_identity_beyond_its_bound():
    x = torch.linspace(-3.0, 3.0, 601, dtype=torch.float64)
    h = layer("site")(x.reshape(1, 1, -1))[0].reshape(-1)
    assert (h.diff() > 0).all() and torch.allclose(h, -h.flip(0), atol=1e-13)
    beyond = x.abs() >= 1.5
    assert torch.allclose(h[beyond], x[beyond], atol=1e-13)


def test_the_site_spline_is_the_same_map_at_any_lattice_size():
    small = layer("site")
    large = small.at(12)
    for (name, a), b in zip(small.named_parameters(), large.parameters(), strict=True):
        assert torch.equal(a, b) and a is not b, name
    assert (large.n_bins, large.bound) == (small.n_bins, small.bound)
