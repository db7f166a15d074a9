"""Circular rational-quadratic splines: a bijection of the circle with exact log h'."""

import math

import pytest
import torch

from fieldflow.flows.circular import CircularSpline, n_spline_parameters

N_BINS = 5


def random_spline(shape=(7,), scale=1.5, seed=0) -> CircularSpline:
    g = torch.Generator().manual_seed(seed)
    θ = scale * torch.randn((*shape, n_spline_parameters(N_BINS)), generator=g, dtype=torch.float64)
    return CircularSpline.from_parameters(θ)


def angles(n=200, seed=1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return math.pi * (2.0 * torch.rand((n, 7), generator=g, dtype=torch.float64) - 1.0)


def test_round_trip_and_inverse_log_derivative():
    spline, x = random_spline(), angles()
    y, ladj = spline.forward(x)
    x_back, ladj_inverse = spline.inverse(y)
    assert torch.allclose(x_back, x, atol=1e-10)
    assert torch.allclose(ladj_inverse, -ladj, atol=1e-9)
    assert not torch.allclose(y, x, atol=1e-2)


def test_log_derivative_matches_autograd():
    spline = random_spline()
    x = angles().requires_grad_()
    y, ladj = spline.forward(x)
    (dy_dx,) = torch.autograd.grad(y.sum(), x)
    assert torch.allclose(ladj, dy_dx.log(), atol=1e-10)
    # And the inverse's, at the image points.
    y = y.detach().requires_grad_()
    x_back, ladj_inverse = spline.inverse(y)
    (dx_dy,) = torch.autograd.grad(x_back.sum(), y)
    assert torch.allclose(ladj_inverse, dx_dy.log(), atol=1e-8)


def test_monotone_onto_the_circle():
    spline = random_spline(shape=(3,))
    x = torch.linspace(-math.pi, math.pi, 2001, dtype=torch.float64)[:, None].expand(-1, 3)
    y, _ = spline.forward(x)
    assert (y.diff(dim=0) > 0).all()
    assert torch.equal(y[0], torch.full((3,), -math.pi, dtype=torch.float64))
    assert torch.equal(y[-1], torch.full((3,), math.pi, dtype=torch.float64))


def test_derivative_is_continuous_across_pi():
    # −π and π are one point of the circle: h' must agree there and approach it smoothly.
    spline = random_spline()
    ends = torch.tensor([-math.pi, math.pi], dtype=torch.float64)[:, None].expand(-1, 7)
    _, ladj = spline.forward(ends)
    assert torch.allclose(ladj[0], ladj[1], atol=1e-12)
    ε = 1e-8
    near = torch.tensor([-math.pi + ε, math.pi - ε], dtype=torch.float64)[:, None].expand(-1, 7)
    y, ladj_near = spline.forward(near)
    assert torch.allclose(ladj_near, ladj, atol=1e-4)
    # The end slope is learnt, not pinned at 1.
    assert not torch.allclose(ladj[0], torch.zeros(7, dtype=torch.float64), atol=1e-2)
    # Going once round the circle adds 2π to h: h(π − ε) − h(−π + ε) → 2π.
    assert torch.allclose(y[1] - y[0], torch.full((7,), 2 * math.pi, dtype=torch.float64))


def test_zero_parameters_are_the_identity():
    θ = torch.zeros((7, n_spline_parameters(N_BINS)), dtype=torch.float64)
    spline, x = CircularSpline.from_parameters(θ), angles()
    for direction in (spline.forward, spline.inverse):
        y, ladj = direction(x)
        assert torch.allclose(y, x, atol=1e-12)
        assert torch.allclose(ladj, torch.zeros_like(x), atol=1e-12)


def test_gradients_reach_every_parameter():
    g = torch.Generator().manual_seed(2)
    θ = torch.randn((7, n_spline_parameters(N_BINS)), generator=g, dtype=torch.float64)
    θ.requires_grad_()
    y, ladj = CircularSpline.from_parameters(θ).forward(angles())
    (y.sin().sum() + ladj.sum()).backward()
    assert (θ.grad != 0).all()


def test_parameters_broadcast_over_a_batch():
    spline = random_spline(shape=(7,))
    x = angles(n=3)
    y, ladj = spline.forward(x)
    for i in range(3):
        y_i, ladj_i = spline.forward(x[i])
        assert torch.allclose(y[i], y_i) and torch.allclose(ladj[i], ladj_i)


@pytest.mark.parametrize("n", [0, 4])
def test_wrong_number_of_parameters_rejected(n):
    with pytest.raises(ValueError, match="3K parameters"):
        CircularSpline.from_parameters(torch.zeros((2, n)))
