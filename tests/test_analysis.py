import math

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
        "m": m / volume,
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


def test_magnetization_and_its_absence():
    """⟨M⟩/V from the primary m; NaN, not an error, from primaries stored before m existed."""
    rng = np.random.default_rng(6)
    m = rng.normal(0.25, 1.0, size=(2, 10_000))
    primaries = {"phi2": m * m, "m": m, "abs_m": np.abs(m), "m2": m * m, "m4": m**4,
                 "ising_energy": m, "f_first": 0.5 * m * m}  # fmt: skip
    est = analysis.observables(primaries, L=4)["magnetization"]
    assert abs(est.value - 0.25) < 4 * est.error
    assert est.error == pytest.approx(1 / np.sqrt(20_000), rel=0.1)
    assert est.tau_int == pytest.approx(0.5, abs=0.1)
    old = {name: values for name, values in primaries.items() if name != "m"}
    for log_weights in (None, np.zeros_like(m)):
        found = analysis.observables(old, L=4, log_weights=log_weights)
        assert list(found) == list(analysis.OBSERVABLES)
        assert all(math.isnan(x) for x in vars(found["magnetization"]).values())
        assert math.isfinite(found["susceptibility"].value)
    assert analysis.OBSERVABLES[-2:] == ("correlation_length", "magnetization")


def test_pull():
    assert analysis.pull(1.3, 0.3, 1.0, 0.4) == pytest.approx(0.6)
    assert analysis.pull(0.5, 0.1, 1.0) == pytest.approx(-5.0)


def test_power_law_fit_recovers_a_known_exponent():
    x = np.array([1.5, 2.0, 2.5, 3.0, 3.5])
    exact = analysis.fit_power_law(x, 0.7 * x**2.1, 0.01 * x**2.1)
    assert exact.exponent == pytest.approx(2.1, abs=1e-9)
    assert exact.amplitude == pytest.approx(0.7) and exact.chi2_dof < 1e-12
    # Noisy data: z within its error, and that error matches the scatter of fitted z.
    rng = np.random.default_rng(1)
    fits = []
    for _ in range(400):
        y = 0.7 * x**2.1
        fits.append(analysis.fit_power_law(x, y * (1 + 0.05 * rng.normal(size=x.size)),
                                           0.05 * y))  # fmt: skip
    z = np.array([f.exponent for f in fits])
    quoted = np.median([f.exponent_error for f in fits])
    assert abs(z.mean() - 2.1) < 3 * z.std() / np.sqrt(z.size)
    assert 0.8 < z.std() / quoted < 1.3
    with pytest.raises(ValueError, match="power-law"):
        analysis.fit_power_law(x[:1], x[:1], x[:1])


def test_power_law_fit_uses_x_errors():
    x = np.array([1.0, 2.0, 4.0])
    y, dy = 3.0 * x**2, 0.01 * 3.0 * x**2
    plain = analysis.fit_power_law(x, y, dy)
    wide = analysis.fit_power_law(x, y, dy, x_error=0.05 * x)
    assert plain.exponent == pytest.approx(2.0) and wide.exponent == pytest.approx(2.0)
    assert wide.exponent_error > 2 * plain.exponent_error


def test_reweighting_to_a_shifted_gaussian():
    """Proposals x ~ N(0, 1) reweighted to p = N(mu, 1): w = exp(mu x - mu²/2), <x>_p = mu."""
    mu, rng = 0.5, np.random.default_rng(2)
    values, errors = [], []
    for _ in range(100):
        x = rng.normal(size=(2, 2000))
        m = np.abs(x) + 0.1  # positive "magnetisation" so every observable is defined
        primaries = {"phi2": x, "abs_m": m, "m2": m * m, "m4": m**4, "ising_energy": x,
                     "f_first": np.ones_like(x)}  # fmt: skip
        est = analysis.observables(primaries, 4, log_weights=mu * x)["phi2"]
        values.append(est.value)
        errors.append(est.error)
    values = np.array(values)
    assert abs(values.mean() - mu) < 4 * values.std() / np.sqrt(values.size)
    # The delta-method error matches the scatter of independent replicas.
    assert 0.8 < values.std() / np.mean(errors) < 1.25
    # Exact large-N variance of the self-normalised estimator:
    # Var_q(w (x - mu)) / N = E_q[w² (x - mu)²] / N = exp(mu²) (1 + mu²) / N.
    exact = np.sqrt(np.exp(mu**2) * (1 + mu**2) / 4000)
    assert np.mean(errors) == pytest.approx(exact, rel=0.1)


def test_correlator_and_pole_mass_of_the_free_field():
    """At λ = 0 C(t) is one cosh with cosh m = 1 + s/2 (no ½ in S), so m_eff is exact."""
    import torch

    from fieldflow import lattice

    L, s, n = 8, 0.5, 8000
    rng = np.random.default_rng(3)
    k = 2 * np.pi * np.arange(L) / L
    variance = 1 / (2 * (s + 4 * np.sin(k[:, None] / 2) ** 2 + 4 * np.sin(k[None, :] / 2) ** 2))
    phi = np.fft.ifft2(np.fft.fft2(rng.normal(size=(n, L, L))) * np.sqrt(variance)).real
    correlator = lattice.timeslice_correlator(torch.from_numpy(phi)).numpy()
    exact_c = lattice.gaussian_two_point(L, s).sum(axis=0)
    assert correlator.mean(axis=0) == pytest.approx(exact_c, abs=0.01)
    rows = analysis.correlator_rows(correlator.reshape(4, n // 4, L))
    assert [r["t"] for r in rows] == list(range(L // 2 + 1)) and np.isnan(rows[0]["m_eff"])
    mass = np.arccosh(1 + s / 2)
    for row in rows[1:]:
        assert abs(row["m_eff"] - mass) < 4 * row["m_eff_error"]
    primaries = {
        k: v.numpy().reshape(4, n // 4)
        for k, v in lattice.primary_observables(torch.from_numpy(phi)).items()
    }
    primaries["correlator"] = correlator.reshape(4, n // 4, L)
    pole = analysis.observables(primaries, L)["pole_mass"]
    assert abs(pole.value - mass) < 4 * pole.error and pole.error < 0.02
