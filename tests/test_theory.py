import math

import numpy as np
import pytest
import torch

from fieldflow import lattice
from fieldflow.lattice import Point
from fieldflow.mcmc.burnin import check_trajectory_length
from fieldflow.mcmc.chain import Collect
from fieldflow.theory import PHI4, THEORIES, U1, get_theory, point_from_key
from fieldflow.u1 import exact as u1_exact
from fieldflow.u1 import lattice as u1_lattice
from fieldflow.u1.point import U1Point


@pytest.mark.parametrize(
    "point",
    [
        Point(8, -4.0, 6.008),
        Point(6, 0.5, 0.0),
        U1Point(8, 2.0),
        U1Point(16, 0.25),
        U1Point(4, 2.123456789),
        U1Point(8, 1e-3),
    ],
)
def test_keys_round_trip(point):
    assert type(point).from_key(point.key) == point
    assert point_from_key(point.key) == point
    assert "/" not in point.key and " " not in point.key


def test_u1_key_form():
    assert U1Point(8, 2.0).key == "L8_beta2"
    assert U1Point(8, 2.5).key == "L8_beta2.5"
    with pytest.raises(ValueError, match="L8_beta2"):
        Point.from_key("L8_beta2")
    with pytest.raises(ValueError, match="L8_s-4_lam6"):
        U1Point.from_key("L8_s-4_lam6")
    with pytest.raises(ValueError, match="any theory"):
        point_from_key("L8_kappa0.3")


@pytest.mark.parametrize("beta", [0.0, -1.0, math.inf, -math.inf, math.nan])
def test_u1_point_rejects_bad_beta(beta):
    with pytest.raises(ValueError, match=r"L8_beta.*beta must be finite and > 0"):
        U1Point(8, beta)


@pytest.mark.parametrize("L", [1, 0, -4, 2.0, True])
def test_u1_point_rejects_bad_L(L):
    with pytest.raises(ValueError, match=r"L.*_beta2.*L must be an integer >= 2"):
        U1Point(L, 2.0)


def test_u1_key_with_bad_beta_names_the_key():
    with pytest.raises(ValueError, match="L8_beta-1"):
        U1Point.from_key("L8_beta-1")
    with pytest.raises(ValueError, match="L8_beta-1"):
        point_from_key("L8_beta-1")


def test_field_shapes_and_registry():
    assert PHI4.field_shape(5) == (5, 5)
    assert U1.field_shape(5) == (2, 5, 5)
    assert THEORIES == {"phi4": PHI4, "u1": U1}
    assert get_theory("u1") is U1
    with pytest.raises(ValueError, match="phi4"):
        get_theory("su2")
    assert Point(4, 1.0, 0.0).theory is PHI4
    assert U1Point(4, 1.0).theory is U1
    assert PHI4.parameters == ("s", "lam") and U1.parameters == ("beta",)


def test_theory_makes_points():
    assert U1.point(8, beta=2.0) == U1Point(8, 2.0)
    assert PHI4.point(6, s=-4.0, lam=6.975) == Point(6, -4.0, 6.975)
    with pytest.raises(ValueError, match="beta"):
        U1.point(8, s=2.0)


def test_columns():
    assert Point(6, -4.0, 6.975).columns() == {"L": 6, "s": -4.0, "lam": 6.975}
    assert U1Point(8, 2.0).columns() == {"L": 8, "beta": 2.0}
    assert U1Point(8, 2.0).volume == 64


def test_phi4_point_action_and_force_equal_lattice():
    g = torch.Generator().manual_seed(0)
    phi = torch.randn((3, 5, 5), generator=g, dtype=torch.float64)
    point = Point(5, -4.0, 6.975)
    assert torch.equal(point.action(phi), lattice.action(phi, -4.0, 6.975))
    assert torch.equal(point.force(phi), lattice.force(phi, -4.0, 6.975))
    assert not torch.equal(point.action(phi), lattice.action(phi, -4.0, 1.0))


def test_u1_point_action_and_force_equal_u1_lattice():
    g = torch.Generator().manual_seed(1)
    links = torch.randn((3, 2, 4, 4), generator=g, dtype=torch.float64)
    point = U1Point(4, 1.5)
    assert torch.equal(point.action(links), u1_lattice.action(links, 1.5))
    assert torch.equal(point.force(links), u1_lattice.force(links, 1.5))


def test_canonical():
    g = torch.Generator().manual_seed(2)
    x = 10.0 * torch.randn((4, 2, 4, 4), generator=g, dtype=torch.float64)
    assert PHI4.canonical(x) is x
    wrapped = U1.canonical(x)
    assert wrapped.abs().max() <= math.pi and x.abs().max() > math.pi
    # the same angles modulo 2π, and the same action
    turns = (x - wrapped) / (2.0 * math.pi)
    assert torch.allclose(turns, turns.round(), atol=1e-12)
    assert torch.allclose(U1Point(4, 1.0).action(wrapped), U1Point(4, 1.0).action(x))


def test_primaries():
    g = torch.Generator().manual_seed(3)
    phi = torch.randn((2, 4, 4), generator=g, dtype=torch.float64)
    assert set(PHI4.primaries(phi)) == set(lattice.primary_observables(phi))
    assert {"m2", "f_first"} <= set(PHI4.primary_names(4))
    assert set(U1.primary_names(4)) == {"plaquette", "charge", "charge2"}
    # Q is an integer (rounded in the primaries), M/V is not: histogram bins follow.
    assert U1.order_parameter.integer and not PHI4.order_parameter.integer


def test_exact():
    assert PHI4.exact(Point(6, 0.5, 0.0)) == lattice.gaussian_observables(6, 0.5)
    assert PHI4.exact(Point(6, -4.0, 6.975)) is None
    assert PHI4.exact(Point(6, -0.5, 0.0)) is None
    assert U1.exact(U1Point(4, 2.0)) == {**u1_exact.references(4, 2.0), "topological_charge": 0.0}


def test_auto_trajectory_length_is_refused_for_u1():
    check_trajectory_length("auto", Point(6, -4.0, 6.975))
    check_trajectory_length(1.0, U1Point(4, 1.0))
    with pytest.raises(ValueError, match="trajectory_length"):
        check_trajectory_length("auto", U1Point(4, 1.0))


def test_sinks_take_the_field_shape():
    assert Point(6, -4.0, 6.975).theory.field_shape(6) == (6, 6)
    point = U1Point(4, 1.0)
    sink = Collect()
    sink.start(3, 5, point.theory.field_shape(point.L), {"action": np.float64})
    assert sink.phi.shape == (3, 5, 2, 4, 4)
    assert sink.per_draw["action"].shape == (3, 5)
