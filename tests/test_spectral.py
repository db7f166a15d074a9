"""The spectral scale of the cnf: exact free theory, inverse and log-det, transfer."""

import pytest
import torch

from fieldflow.flows import build_flow
from fieldflow.flows.cnf import transfer_cnf
from fieldflow.flows.spectral import SpectralScale, lattice_momentum_squared
from fieldflow.lattice import action, gaussian_log_z


def free_field_scale(L, s):
    """σ(k) = −½ log 2(p̂² + s): the free theory's law of each mode under S = Σ_k (p̂² + s)|φ_k|²."""
    layer = SpectralScale(L).double()
    with torch.no_grad():
        layer.log_scale.copy_(-0.5 * torch.log(2 * (lattice_momentum_squared(L) + s)))
    return layer


@pytest.mark.parametrize("L", [4, 5, 6])
def test_the_free_theory_is_sampled_exactly(L):
    # At λ = 0 the propagator 1 / 2(p̂² + s) makes log q + S the same for every draw: −log Z.
    s = 0.7
    flow = build_flow("cnf", L, {"spectral_scale": True, "n_steps": 2}).double()
    flow.layers[0].load_state_dict(free_field_scale(L, s).state_dict())
    phi, log_q = flow.sample(64, generator=torch.Generator().manual_seed(3))
    log_w = -(log_q + action(phi, s, 0.0))
    assert torch.allclose(log_w, torch.full_like(log_w, gaussian_log_z(L, s)), rtol=0, atol=1e-10)


@pytest.mark.parametrize("L", [5, 6])
def test_inverse_and_log_det_are_exact(L):
    layer = SpectralScale(L).double()
    with torch.no_grad():
        layer.log_scale.copy_(
            0.5
            * torch.randn(
                layer.log_scale.shape,
                generator=torch.Generator().manual_seed(1),
                dtype=torch.float64,
            )
        )
    z = torch.randn((2, L, L), generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    y, log_det = layer(z)
    back, log_det_inv = layer.inverse(y)
    assert torch.allclose(back, z, rtol=0, atol=1e-13) and torch.equal(log_det_inv, -log_det)
    jac = torch.autograd.functional.jacobian(
        lambda x: layer(x.view(1, L, L))[0].flatten(), z[0].flatten()
    )
    assert torch.linalg.slogdet(jac)[1].item() == pytest.approx(log_det[0].item(), abs=1e-12)
    assert not torch.allclose(y, z, atol=1e-3)


def test_identity_at_initialisation():
    layer = SpectralScale(5).double()
    z = torch.randn((2, 5, 5), generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    y, log_det = layer(z)
    assert torch.allclose(y, z, rtol=0, atol=1e-14) and torch.equal(
        log_det, torch.zeros(2, dtype=torch.float64)
    )


def test_transfer_reads_the_scale_as_a_function_of_the_lattice_momentum():
    # The free propagator at L = 4 carries over to L = 8 where p̂² coincide (0, 2, 4, 6, 8),
    # and in between is interpolated linearly in p̂².
    small = free_field_scale(4, 0.7)
    large = small.at(8)
    p2_small, p2_large = lattice_momentum_squared(4), lattice_momentum_squared(8)
    for value, p2 in zip(small.log_scale, p2_small, strict=True):
        same = torch.isclose(p2_large, p2)
        assert torch.allclose(large.log_scale[same], value.expand(int(same.sum())))
    assert (
        large.log_scale.min() >= small.log_scale.min()
        and large.log_scale.max() <= small.log_scale.max()
    )
    flow = build_flow("cnf", 4, {"spectral_scale": True, "kernel_radius": 1})
    assert isinstance(transfer_cnf(flow, 8).layers[0], SpectralScale)


def test_transfer_merges_orbits_of_the_same_lattice_momentum():
    # At L = 4 the orbits (1, 1) (4 momenta) and (0, 2) (2 momenta) share p̂² = 4; at L = 8
    # every orbit with p̂² = 4 takes their mean over the six momenta, whatever the rounding.
    small = SpectralScale(4).double()
    with torch.no_grad():
        small.log_scale.copy_(torch.tensor([0.1, 0.2, 1.0, -1.0, 0.3, 0.4]))
    large = small.at(8)
    at_four = torch.isclose(lattice_momentum_squared(8), torch.tensor(4.0, dtype=torch.float64))
    assert int(at_four.sum()) == 3
    mean = torch.tensor((4 * 1.0 - 2 * 1.0) / 6, dtype=torch.float64)
    assert torch.allclose(large.log_scale[at_four], mean, rtol=0, atol=1e-15)


def test_parameters_one_per_momentum_orbit():
    plain = build_flow("cnf", 8, {}).n_parameters()
    assert build_flow("cnf", 8, {"spectral_scale": True}).n_parameters() == plain + 15
