import itertools
import math

import numpy as np
import pytest
import torch

from fieldflow import analysis
from fieldflow.lattice import Point, action, gaussian_observables
from fieldflow.mcmc import cluster
from fieldflow.stages import ensemble_primaries

POINT = Point(6, -4.0, 6.975)


def settings(**overrides):
    return {"n_chains": 4, "n_updates": 10, "burn_in": 10} | overrides


def global_action(phi, s, lam):
    return action(torch.from_numpy(np.asarray(phi, dtype=np.float64)), s, lam).numpy()


# --- exact transition matrices of the cluster step, by enumeration --------------------


def lattice_links(shape):
    """Every link (x, x+μ̂) as a pair of flat site indices; a pair appears twice if L = 2."""
    lx, ly = shape

    def site(i, j):
        return (i % lx) * ly + (j % ly)

    cells = list(itertools.product(range(lx), range(ly)))
    return [(site(i, j), site(i + 1, j)) for i, j in cells] + [
        (site(i, j), site(i, j + 1)) for i, j in cells
    ]


def clusters_of(bonds, volume):
    """Connected components (as site bitmasks) of the graph with the given bonds."""
    parent = list(range(volume))

    def root(i):
        while parent[i] != i:
            i = parent[i]
        return i

    for x, y in bonds:
        parent[root(x)] = root(y)
    masks = {}
    for i in range(volume):
        masks[root(i)] = masks.get(root(i), 0) | (1 << i)
    return tuple(sorted(masks.values()))


def flip_kernels(links, volume):
    """Per bond subset its partition index; per partition the flip laws of SW and Wolff.

    SW flips every union of clusters with probability 2^-k; Wolff flips cluster C with
    probability |C| / V. Rows are indexed by partition, columns by the flipped-site mask.
    """
    n_links = len(links)
    partitions, index = {}, []
    for subset in range(2**n_links):
        bonds = [links[l] for l in range(n_links) if subset >> l & 1]
        index.append(partitions.setdefault(clusters_of(bonds, volume), len(partitions)))
    sw = np.zeros((len(partitions), 2**volume))
    wolff = np.zeros_like(sw)
    for parts, k in partitions.items():
        for chosen in itertools.product((0, 1), repeat=len(parts)):
            sw[k, sum(c for c, on in zip(parts, chosen, strict=True) if on)] += 0.5 ** len(parts)
        for c in parts:
            wolff[k, c] += c.bit_count() / volume
    return np.array(index), {"sw": sw, "wolff": wolff}


def signs(states, volume):
    """±1 per site of each integer-coded state (bit i set: site i negative)."""
    bits = (np.asarray(states)[:, None] >> np.arange(volume)) & 1
    return 1.0 - 2.0 * bits


def exact_transitions(magnitudes, shape, bond_factor=4.0):
    """T[a, b] of both variants at fixed |φ|, over all 2^V sign states a, b."""
    volume = magnitudes.size
    links = lattice_links(shape)
    partition_of, kernels = flip_kernels(links, volume)
    subsets = (np.arange(2 ** len(links))[:, None] >> np.arange(len(links))) & 1
    states = np.arange(2**volume)
    T = {name: np.zeros((2**volume, 2**volume)) for name in kernels}
    for a, eps in zip(states, signs(states, volume), strict=True):
        phi = magnitudes * eps
        p = np.array(
            [
                1 - math.exp(-bond_factor * phi[x] * phi[y]) if phi[x] * phi[y] > 0 else 0
                for x, y in links
            ]
        )
        weight = np.prod(np.where(subsets == 1, p, 1 - p), axis=1)
        per_partition = np.bincount(partition_of, weights=weight, minlength=len(kernels["sw"]))
        for name, kernel in kernels.items():
            T[name][a, a ^ states] = per_partition @ kernel
    phis = magnitudes * signs(states, volume)
    boltzmann = np.exp(-global_action(phis.reshape(-1, *shape), 0.3, 0.7))
    return T, boltzmann / boltzmann.sum()


SHAPES = [(2, 2), (2, 3)]


@pytest.mark.parametrize("shape", SHAPES)
def test_exact_cluster_kernels_satisfy_detailed_balance(shape):
    rng = np.random.default_rng(0)
    magnitudes = rng.uniform(0.2, 0.8, size=shape[0] * shape[1])
    T, pi = exact_transitions(magnitudes, shape)
    for name, t in T.items():
        flow = pi[:, None] * t
        assert np.abs(t.sum(axis=1) - 1).max() < 1e-12, name
        assert np.abs(flow - flow.T).max() < 1e-12, name
    # The check has teeth: SW's bond probability with the wrong coupling breaks it.
    t_wrong, _ = exact_transitions(magnitudes, shape, bond_factor=2.0)
    flow = pi[:, None] * t_wrong["sw"]
    assert np.abs(flow - flow.T).max() > 1e-4


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("variant", ["sw", "wolff"])
def test_cluster_step_matches_exact_transitions(shape, variant):
    rng = np.random.default_rng(1)
    volume = shape[0] * shape[1]
    magnitudes = rng.uniform(0.2, 0.8, size=volume)
    T, _ = exact_transitions(magnitudes, shape)
    n = 20000
    for start in (0, 1, 2**volume - 6):
        phi0 = (magnitudes * signs([start], volume)[0]).reshape(shape)
        phi, flipped = cluster.cluster_step(np.tile(phi0, (n, 1, 1)), rng, variant)
        assert np.array_equal(np.abs(phi), np.abs(np.tile(phi0, (n, 1, 1))))
        codes = (phi.reshape(n, volume) < 0).astype(int) @ (1 << np.arange(volume))
        freq = np.bincount(codes, minlength=2**volume) / n
        changed = ((codes ^ start)[:, None] >> np.arange(volume)) & 1
        assert np.allclose(flipped, changed.mean(axis=1))
        t = T[variant][start]
        sigma = np.sqrt(np.maximum(t, 1 / n) * (1 - t) / n)
        assert np.all(np.abs(freq - t) < 5 * sigma), (start, np.abs(freq - t).max())
        assert np.all(freq[t == 0] == 0)


def test_bond_probability():
    x = np.array([0.5, 0.5, -0.5, -0.3, 0.0])
    y = np.array([0.4, -0.4, -0.4, 0.3, 0.7])
    expected = [1 - math.exp(-4 * 0.2), 0.0, 1 - math.exp(-4 * 0.2), 0.0, 0.0]
    assert np.allclose(cluster.bond_probability(x, y), expected, rtol=1e-14, atol=0)
    assert np.array_equal(cluster.bond_probability(x, y), cluster.bond_probability(y, x))


# --- the sampler ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variant", "overrelax", "s"),
    [("sw", False, 1.0), ("wolff", False, 0.5), ("sw", True, 0.5), ("wolff", True, 1.0)],
)
def test_reproduces_exact_gaussian_theory(variant, overrelax, s):
    L = 4
    cfg = settings(n_chains=32, n_updates=600, burn_in=100, variant=variant, overrelax=overrelax)
    result = cluster.run(Point(L, s, 0.0), cfg, seed=11, progress=False)
    estimates = analysis.observables(ensemble_primaries(result.phi), L)
    exact = gaussian_observables(L, s)
    names = [
        "phi2",
        "susceptibility",
        "ising_energy",
        "correlation_length",
        "abs_magnetization",
        "binder",
    ]
    for name in names:
        e = estimates[name]
        assert math.isfinite(e.error) and e.error > 0
        assert abs(e.value - exact[name]) < 4 * e.error, (name, e, exact[name])


def exact_l2_moments(s, lam, n_grid=51, half_width=2.5):
    """⟨φ²⟩ and ⟨M²⟩/V on the 2×2 lattice by quadrature over the four field values."""
    x = np.linspace(-half_width, half_width, n_grid)
    grid = np.stack(np.meshgrid(x, x, x, indexing="ij"), axis=-1).reshape(-1, 3)
    z = phi2 = m2 = 0.0
    for first in x:
        phi = np.concatenate([np.full((len(grid), 1), first), grid], axis=1)
        w = np.exp(-global_action(phi.reshape(-1, 2, 2), s, lam))
        z += w.sum()
        phi2 += (w * (phi**2).mean(axis=1)).sum()
        m2 += (w * phi.sum(axis=1) ** 2 / 4).sum()
    return phi2 / z, m2 / z


@pytest.mark.parametrize(("variant", "overrelax"), [("sw", True), ("wolff", False)])
def test_reproduces_exact_interacting_two_by_two(variant, overrelax):
    # s = -7, λ = 2: a double well at each site, and the three-root branch of the
    # over-relaxation centre is visited whenever the neighbours disagree.
    s, lam = -7.0, 2.0
    phi2, m2 = exact_l2_moments(s, lam)
    cfg = settings(n_chains=32, n_updates=1000, burn_in=100, variant=variant, overrelax=overrelax)
    result = cluster.run(Point(2, s, lam), cfg, seed=3, progress=False)
    primaries = ensemble_primaries(result.phi)
    for name, exact in [("phi2", phi2), ("m2", m2)]:
        e = analysis.gamma_estimate(primaries[name])
        assert abs(e.value - exact) < 4 * e.error, (name, e, exact)


def test_result_layout_tuning_and_stored_action():
    cfg = settings(n_chains=8, n_updates=50, burn_in=200)
    result = cluster.run(POINT, cfg, seed=1, progress=False)
    assert result.phi.shape == (8, 50, 6, 6) and result.phi.dtype == np.float32
    assert set(result.per_draw) == {"action", "cluster_fraction"}
    assert all(v.shape == (8, 50) and v.dtype == np.float64 for v in result.per_draw.values())
    assert 0.4 < result.acceptance < 0.6
    assert set(result.info) == {
        "step_size",
        "local_sweeps",
        "variant",
        "overrelax",
        "thin",
        "seconds_per_update",
        "seconds_per_update_error",
    }
    assert result.info["step_size"] > 0 and result.info["variant"] == "sw"
    # Timed per kept update of one chain; values vary from run to run, so only their kind.
    assert 0 < result.info["seconds_per_update"] < 1
    assert math.isfinite(result.info["seconds_per_update_error"])
    assert result.info["seconds_per_update_error"] >= 0
    # SW flips each cluster with probability ½, so half the sites on average; at E1 the
    # clusters are large (σ ≈ 0.3 per draw, 0.015 for the 400 draws here): a 5σ window.
    assert result.per_draw["cluster_fraction"].mean() == pytest.approx(0.5, abs=0.08)
    recomputed = global_action(result.phi[:, -1], POINT.s, POINT.lam)
    assert np.allclose(recomputed, result.per_draw["action"][:, -1], rtol=1e-5)


def test_thin_keeps_every_thin_th_update():
    thinned = cluster.run(POINT, settings(n_updates=5, thin=4), seed=5, progress=False)
    every = cluster.run(POINT, settings(n_updates=20), seed=5, progress=False)
    assert thinned.phi.shape[1] == 5 and thinned.info["thin"] == 4
    np.testing.assert_array_equal(thinned.phi, every.phi[:, 3::4])
    for name in ("action", "cluster_fraction"):
        np.testing.assert_array_equal(thinned.per_draw[name], every.per_draw[name][:, 3::4])
    assert thinned.acceptance == pytest.approx(every.acceptance, rel=1e-12)  # all updates


def test_same_seed_same_chain():
    cfg = settings(variant="wolff", overrelax=True)
    a = cluster.run(POINT, cfg, seed=5, progress=False)
    b = cluster.run(POINT, cfg, seed=5, progress=False)
    c = cluster.run(POINT, cfg, seed=6, progress=False)
    assert np.array_equal(a.phi, b.phi)
    assert all(np.array_equal(a.per_draw[k], b.per_draw[k]) for k in a.per_draw)
    timed = ("seconds_per_update", "seconds_per_update_error")  # wall clock, not the seed
    assert {k: v for k, v in a.info.items() if k not in timed} == {
        k: v for k, v in b.info.items() if k not in timed
    }
    assert not np.array_equal(a.phi, c.phi)


@pytest.mark.parametrize(
    ("point", "overrides", "message"),
    [
        (Point(4, -1.0, 0.0), {}, "lam = 0 needs s > 0"),
        (Point(4, 0.0, 0.0), {}, "lam = 0 needs s > 0"),
        (Point(4, math.nan, 1.0), {}, "finite"),
        (Point(4, 1.0, math.inf), {}, "finite"),
        (Point(4, 1.0, -1.0), {}, "non-negative"),
        (POINT, {"variant": "metropolis"}, "unknown cluster variant"),
        (POINT, {"n_updates": -1}, "n_updates"),
        (POINT, {"burn_in": -5}, "burn_in"),
        (POINT, {"local_sweeps": -1}, "local_sweeps"),
        (POINT, {"local_sweeps": 0}, "not ergodic"),
        (POINT, {"n_chains": 0}, "n_chains"),
        (POINT, {"n_chains": 2.5}, "n_chains"),
        (POINT, {"target_acceptance": 1.5}, "target_acceptance"),
        (POINT, {"thin": 0}, "thin"),
        (POINT, {"thin": 1.5}, "thin"),
    ],
)
def test_bad_settings_are_refused(point, overrides, message):
    with pytest.raises(ValueError, match=message):
        cluster.run(point, settings(**overrides), seed=0, progress=False)
