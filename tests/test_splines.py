"""Odd rational-quadratic splines from the parameters of their positive half."""

import torch

from fieldflow.flows.splines import odd_spline


def test_palindromic_parameters_make_an_odd_spline_with_a_knot_at_zero():
    g = torch.Generator().manual_seed(0)
    w, h, d = (torch.randn(5, generator=g, dtype=torch.float64) for _ in range(3))
    spline = odd_spline(w, h, d, bound=2.0)
    x = torch.linspace(-3.0, 3.0, 1201, dtype=torch.float64)
    y, ladj = spline.call_and_ladj(x)
    assert torch.allclose(y, -y.flip(0), atol=1e-13)
    assert torch.allclose(ladj, ladj.flip(0), atol=1e-12)
    assert (y.diff() > 0).all()
    assert torch.allclose(spline.horizontal[5], torch.zeros((), dtype=torch.float64), atol=1e-15)
    assert torch.allclose(spline.inv(y), x, atol=1e-12)


def test_zero_parameters_are_the_identity():
    zeros = torch.zeros(4, dtype=torch.float64)
    x = torch.linspace(-3.0, 3.0, 61, dtype=torch.float64)
    y, ladj = odd_spline(zeros, zeros, zeros, bound=2.0).call_and_ladj(x)
    assert torch.allclose(y, x, atol=1e-14) and ladj.abs().max() < 1e-14
