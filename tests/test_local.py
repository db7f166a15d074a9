"""The local updates of the cluster sampler: exact ΔS, colourings, over-relaxation."""

import itertools

import numpy as np
import pytest
import torch

from fieldflow.lattice import Point, action
from fieldflow.mcmc import local as updates

POINT = Point(6, -4.0, 6.975)


def global_action(phi, s, lam):
    return action(torch.from_numpy(np.asarray(phi, dtype=np.float64)), s, lam).numpy()


@pytest.mark.parametrize("shape", [(2, 2), (3, 3), (4, 4), (2, 3), (5, 4)])
def test_colour_masks_partition_without_neighbours(shape):
    masks = updates.colour_masks(shape)
    assert np.array_equal(sum(m.astype(int) for m in masks), np.ones(shape, dtype=int))
    for m in masks:
        for axis in (0, 1):
            assert not np.any(m & np.roll(m, 1, axis))


@pytest.mark.parametrize("shape", [(2, 2), (3, 3), (4, 4), (2, 3)])
def test_local_delta_action_equals_global_difference(shape):
    rng = np.random.default_rng(2)
    s, lam = -4.0, 5.5
    phi = rng.normal(0.0, 0.7, size=(3, *shape))
    nn = updates.neighbour_sum(phi)
    for i, j in itertools.product(range(shape[0]), range(shape[1])):
        new = phi.copy()
        new[:, i, j] += rng.normal(0.0, 0.5, size=3)
        local = updates.local_delta_action(phi[:, i, j], new[:, i, j], nn[:, i, j], s, lam)
        exact = global_action(new, s, lam) - global_action(phi, s, lam)
        assert np.allclose(local, exact, rtol=1e-10, atol=1e-10)
    # Sites of one colour share no link, so their local ΔS add up to the global one.
    for mask in updates.colour_masks(shape):
        new = np.where(mask, phi + rng.normal(0.0, 0.5, size=phi.shape), phi)
        local = updates.local_delta_action(phi, new, nn, s, lam)[:, mask].sum(axis=1)
        exact = global_action(new, s, lam) - global_action(phi, s, lam)
        assert np.allclose(local, exact, rtol=1e-10, atol=1e-10)


def test_local_sweep_changes_only_where_accepted_and_keeps_input():
    rng = np.random.default_rng(3)
    phi = rng.normal(0.0, 0.5, size=(8, 4, 4))
    before = phi.copy()
    new, rate = updates.local_sweep(phi, POINT.s, POINT.lam, 0.5, rng)
    assert np.array_equal(phi, before)
    assert rate == pytest.approx(np.mean(new != phi))
    assert 0.0 < rate < 1.0
    assert np.all(np.abs(new - phi) <= 0.5)


@pytest.mark.parametrize(
    ("s", "lam"), [(-4.0, 6.975), (-7.0, 2.0), (1.0, 0.5), (1.0, 0.0), (-4.5, 1e-6), (3.0, 1e3)]
)
def test_local_minimum_is_the_global_minimiser(s, lam):
    b = np.concatenate([np.linspace(-12.0, 12.0, 481), [0.0, 1e-13, -1e-9]])
    c = updates.local_minimum(b, s, lam)
    slope = 4 * lam * c**3 + 2 * (4 + s) * c - b
    assert np.abs(slope).max() < 1e-9 * (1 + np.abs(b).max())
    grid = np.linspace(-3 * np.abs(c).max() - 3, 3 * np.abs(c).max() + 3, 20001)

    def V(x, b):
        return (4 + s) * x**2 + lam * x**4 - b * x

    v_grid = V(grid[None, :], b[:, None]).min(axis=1)
    assert np.all(V(c, b) <= v_grid + 1e-12 * (1 + np.abs(v_grid)))


def test_overrelaxation_is_an_involution_with_exact_delta_action():
    rng = np.random.default_rng(4)
    for s, lam in [(-4.0, 6.975), (-7.0, 2.0), (1.0, 0.0)]:
        phi = rng.normal(0.0, 0.7, size=(4, 4, 4))
        nn = updates.neighbour_sum(phi)
        c = updates.local_minimum(2 * nn, s, lam)
        reflected = 2 * c - phi
        # c depends on the neighbours only, so reflecting again returns φ.
        assert np.allclose(2 * c - reflected, phi, atol=1e-12)
        dS = updates.local_delta_action(phi, reflected, nn, s, lam)
        for i, j in [(0, 0), (1, 2), (3, 3)]:
            new = phi.copy()
            new[:, i, j] = reflected[:, i, j]
            exact = global_action(new, s, lam) - global_action(phi, s, lam)
            assert np.allclose(dS[:, i, j], exact, rtol=1e-10, atol=1e-10)
        if lam == 0:  # V is symmetric about c: reflections are always accepted
            assert np.abs(dS).max() < 1e-12
            _, rate = updates.overrelax_sweep(phi, s, lam, rng)
            assert rate == 1.0
