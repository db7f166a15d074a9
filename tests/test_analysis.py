import numpy as np
import pytest

from fieldflow import analysis


def ar1(rho, n_chains, n, seed):
    rng = np.random.default_rng(seed)
    x = np.empty((n_chains, n))
    x[:, 0] = rng.normal(size=n_chains) / np.sqrt(1 - rho**2)
    noise = rng.normal(size=(n_chains, n))
    for t in range(1, n):
        x[:, t] = rho * x[:, t - 1] + noise[:, t]
    return x


@pytest.mark.parametrize("rho", [0.0, 0.5, 0.8])
def test_tau_int_of_ar1(rho):
    e = analysis.gamma_estimate(ar1(rho, 4, 25_000, seed=int(rho * 10)))
    exact = (1 + rho) / (2 * (1 - rho))
    assert abs(e.tau_int - exact) < max(3 * e.tau_int_error, 0.05 * exact)
    # The error of the mean knows about the autocorrelation: var(x) = 1/(1-rho^2).
    naive = np.sqrt(1 / (1 - rho**2) / 100_000)
    assert e.error == pytest.approx(naive * np.sqrt(2 * exact), rel=0.15)


def test_ess_known_cases():
    assert analysis.ess(np.zeros(100)) == pytest.approx(1.0)
    assert analysis.ess(np.array([0.0] + [-1000.0] * 99)) == pytest.approx(0.01)
    # Shift invariance and no overflow for huge log weights.
    lw = np.random.default_rng(0).normal(size=1000)
    assert analysis.ess(lw + 1e4) == pytest.approx(analysis.ess(lw))


def test_derived_observables_and_their_errors():
    rng = np.random.default_rng(5)
    n = 20_000
    m = rng.normal(scale=2.0, size=(2, n))  # Gaussian M: Binder cumulant 0
    volume = 16
    primaries = {
        "phi2": rng.normal(1.0, 0.1, size=(2, n)),
        "abs_m": np.abs(m) / volume,
        "m2": m**2 / volume,
        "m4": m**4 / volume**2,
        "ising_energy": rng.normal(0.3, 0.1, size=(2, n)),
        "f_first": rng.normal(0.125, 0.01, size=(2, n)),
    }
    est = analysis.observables(primaries, L=4)
    assert list(est) == list(analysis.OBSERVABLES)
    assert abs(est["binder"].value) < 4 * est["binder"].error
    assert est["susceptibility"].value == pytest.approx(4 / volume, rel=0.05)
    # xi = sqrt(chi/F - 1) / (2 sin(pi/L)) with chi = 0.25, F = 0.125.
    assert est["correlation_length"].value == pytest.approx(1 / (2 * np.sin(np.pi / 4)), rel=0.05)
    assert est["correlation_length"].error > 0
    for e in est.values():
        assert e.tau_int == pytest.approx(0.5, abs=0.1)
