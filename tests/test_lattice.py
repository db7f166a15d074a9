import itertools

import numpy as np
import pytest
import torch

from fieldflow.lattice import (
    Point,
    action,
    force,
    gaussian_observables,
    gaussian_two_point,
    primary_observables,
    two_point,
)


def random_phi(L=6, batch=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn((batch, L, L), generator=g, dtype=torch.float64)


def test_action_matches_site_sum():
    phi = random_phi(L=4, batch=1)[0]
    s, lam = -4.0, 6.975
    expected = 0.0
    for x, y in itertools.product(range(4), repeat=2):
        p = phi[x, y]
        expected += (phi[(x + 1) % 4, y] - p) ** 2 + (phi[x, (y + 1) % 4] - p) ** 2
        expected += s * p**2 + lam * p**4
    assert torch.allclose(action(phi[None], s, lam)[0], expected)


def test_force_is_minus_gradient_of_action():
    phi = random_phi().requires_grad_(True)
    s, lam = -4.0, 8.0
    (grad,) = torch.autograd.grad(action(phi, s, lam).sum(), phi)
    assert torch.allclose(force(phi.detach(), s, lam), -grad, atol=1e-12)


def test_symmetries_of_action():
    phi = random_phi()
    s, lam = -4.0, 5.55
    ref = action(phi, s, lam)
    assert torch.allclose(action(-phi, s, lam), ref)
    assert torch.allclose(action(phi.roll((2, 3), (-2, -1)), s, lam), ref)
    assert torch.allclose(action(phi.transpose(-2, -1), s, lam), ref)
    assert torch.allclose(action(phi.flip(-1), s, lam), ref)


def test_hopping_form_gives_same_action_up_to_normalisation():
    L, kappa, lam_k = 6, 0.28, 0.03
    point = Point.from_hopping(L, kappa, lam_k)
    varphi = random_phi(L)
    hopping = (
        -2 * kappa * sum((varphi * varphi.roll(-1, d)) for d in (-2, -1))
        + (1 - 2 * lam_k) * varphi**2
        + lam_k * varphi**4
    ).sum(dim=(-2, -1))
    phi = np.sqrt(kappa) * varphi
    assert torch.allclose(action(phi, point.s, point.lam), hopping)
    assert point.to_hopping() == pytest.approx((kappa, lam_k))


def test_point_key_round_trip():
    point = Point(8, -4.0, 6.008)
    assert point.key == "L8_s-4_lam6.008"
    assert Point.from_key(point.key) == point
    with pytest.raises(ValueError, match="not a point key"):
        Point.from_key("L8-s4")


def test_two_point_by_fft_matches_direct_sum():
    phi = random_phi(L=4, batch=2)
    g = two_point(phi)
    for dx, dy in itertools.product(range(4), repeat=2):
        direct = (phi * phi.roll((-dx, -dy), (-2, -1))).mean(dim=(-2, -1))
        assert torch.allclose(g[:, dx, dy], direct)


def test_primaries_relations():
    phi = random_phi(L=6, batch=4)
    prim = primary_observables(phi)
    g = two_point(phi)
    assert torch.allclose(prim["phi2"], g[:, 0, 0])
    m = prim["m"]
    assert torch.allclose(m, phi.sum(dim=(-2, -1)) / 36)
    assert torch.allclose(prim["abs_m"], m.abs()) and torch.allclose(prim["m2"], 36 * m * m)
    assert torch.allclose(primary_observables(-phi)["m"], -m)  # odd under φ → −φ
    assert torch.allclose(prim["m2"], g.sum(dim=(-2, -1)))
    assert torch.allclose(prim["ising_energy"], 0.5 * (g[:, 1, 0] + g[:, 0, 1]))
    cos = torch.cos(2 * np.pi * torch.arange(6, dtype=torch.float64) / 6)
    f_x = (g * cos[:, None]).sum(dim=(-2, -1))
    f_y = (g * cos[None, :]).sum(dim=(-2, -1))
    assert torch.allclose(prim["f_first"], 0.5 * (f_x + f_y))


def test_gaussian_two_point_inverts_the_lattice_operator():
    L, s = 5, 0.7
    g = gaussian_two_point(L, s)
    # Covariance C(x, y) = G(y - x) must equal (2A)^-1 with A = -Δ + s.
    V = L * L
    idx = np.arange(V).reshape(L, L)
    A = np.zeros((V, V))
    for x, y in itertools.product(range(L), repeat=2):
        i = idx[x, y]
        A[i, i] += 4 + s
        for nx, ny in ((x + 1, y), (x - 1, y), (x, y + 1), (x, y - 1)):
            A[i, idx[nx % L, ny % L]] -= 1
    cov = np.linalg.inv(2 * A)
    for x, y in itertools.product(range(L), repeat=2):
        assert cov[0, idx[x, y]] == pytest.approx(g[x, y])
    assert gaussian_observables(L, s)["susceptibility"] == pytest.approx(1 / (2 * s))
    assert gaussian_observables(L, s)["magnetization"] == 0.0
    with pytest.raises(ValueError):
        gaussian_two_point(L, 0.0)
