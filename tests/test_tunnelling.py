"""Crossings between the vacua, counted with hysteresis, on sequences of known crossings."""

import math

import numpy as np
import pytest

from fieldflow import tunnelling


def test_counts_crossings_of_the_band_only():
    c = 1.0
    chains = np.array(
        [
            [2.0, 2.0, -2.0, -2.0, 2.0, 2.0, -2.0, -2.0],  # three clean flips
            [2.0, 0.5, -0.5, 0.5, 2.0, -0.9, 0.0, 1.5],  # dips into the band: none
            [-2.0, -0.5, 0.5, 0.9, 1.01, 0.0, -1.01, -3.0],  # slow crossings, up and down: two
            [0.0, 0.5, -0.5, 1.5, 0.5, -1.5, 0.0, 0.0],  # starts in the band: one, not two
        ]
    )
    counts = tunnelling.count_crossings(chains, c)
    assert counts.tolist() == [3, 0, 2, 1]
    assert counts.dtype == np.int64
    # Exactly ±c is inside the band.
    assert tunnelling.count_crossings(np.array([[1.0, -1.0, 1.0]]), 1.0).tolist() == [0]
    # Without a band every sign change counts.
    assert tunnelling.count_crossings(np.array([[0.1, -0.1, 0.1]]), 0.0).tolist() == [2]


def test_counts_a_telegraph_signal_with_noise_chain_by_chain():
    rng = np.random.default_rng(0)
    n_chains, n = 3, 4000
    flips = [rng.random(n) < rate for rate in (0.0, 0.002, 0.01)]
    sides = np.array([np.where(np.cumsum(f) % 2, -1.0, 1.0) for f in flips])
    noisy = sides + 0.2 * rng.normal(size=(n_chains, n))  # never reaches the band at ±0.5
    counts = tunnelling.count_crossings(noisy, 0.5)
    assert counts.tolist() == [int(f[1:].sum()) for f in flips]


def test_rates_and_tunnelling_time():
    m = np.array([[1.0, -1.0, 1.0, -1.0], [1.0, 1.0, 1.0, -1.0]])
    found = tunnelling.tunnelling(m, seconds_per_update=0.01)
    assert found.threshold == pytest.approx(0.5)  # ½ <|M|>
    assert found.per_chain == (3, 1) and found.crossings == 4 and found.bound == ""
    assert found.updates == 8
    assert found.per_1000_updates == pytest.approx(500.0)
    assert found.per_second == pytest.approx(4 / (8 * 0.01))
    assert found.tunnel_updates == pytest.approx(2.0)
    row = found.row()
    assert list(row) == [
        "n_chains",
        "n_draws",
        "threshold",
        "crossings",
        "per_1000_updates",
        "per_second",
        "tunnel_updates",
        "bound",
        "thin",
    ]
    assert math.isnan(tunnelling.tunnelling(m).per_second)  # untimed ensemble


def test_no_crossing_gives_a_lower_bound():
    rng = np.random.default_rng(1)
    stuck = 1.0 + 0.1 * rng.normal(size=(4, 300))
    found = tunnelling.tunnelling(stuck, seconds_per_update=1e-3)
    assert found.crossings == 0 and found.bound == "lower"
    assert found.per_1000_updates == 0.0 and found.per_second == 0.0
    assert found.tunnel_updates == pytest.approx(1200 / 3)
    assert tunnelling.tau_int_lower_bound(1200) == pytest.approx(200.0)


def test_histogram_is_symmetric_normalised_and_rounded_out():
    m = np.array([[-0.3, 0.1, 0.2, 0.61]])
    edges, density = tunnelling.histogram(m)
    assert edges.shape == (61,) and density.shape == (60,)
    assert edges[0] == -0.75 and edges[-1] == 0.75
    assert (density * np.diff(edges)).sum() == pytest.approx(1.0)
    edges, _ = tunnelling.histogram(np.array([[0.5, -0.25]]))  # on a multiple: kept
    assert edges[-1] == 0.5
    edges, _ = tunnelling.histogram(np.zeros((1, 3)))  # a degenerate range is widened
    assert edges[-1] == 0.25


def test_histogram_of_an_integer_order_parameter_has_a_bin_per_integer():
    q = np.array([[0.0, 1.0, -2.0, 1.0, 0.0, 0.0]])
    edges, density = tunnelling.histogram(q, integer=True)
    assert edges.tolist() == [-2.5, -1.5, -0.5, 0.5, 1.5, 2.5]  # centred on -2 ... 2
    assert density.tolist() == pytest.approx([1 / 6, 0.0, 3 / 6, 2 / 6, 0.0])
    # 60 bins over ±B would put every integer on an edge.
    plain, _ = tunnelling.histogram(q)
    assert np.isin([-2.0, -1.0, 0.0, 1.0, 2.0], plain).all()
    # A chain frozen at Q = 0 still shows the sectors ±1 beside it, empty.
    edges, density = tunnelling.histogram(np.zeros((2, 5)), integer=True)
    assert edges.tolist() == [-1.5, -0.5, 0.5, 1.5] and density.tolist() == [0.0, 1.0, 0.0]
