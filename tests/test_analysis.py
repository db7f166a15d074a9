import math
import warnings

import numpy as np
import pyerrors as pe
import pytest

from fieldflow import analysis, quality
from fieldflow.theory import U1


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
    primaries = {
        "phi2": m * m,
        "m": m,
        "abs_m": np.abs(m),
        "m2": m * m,
        "m4": m**4,
        "ising_energy": m,
        "f_first": 0.5 * m * m,
    }
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
    assert math.isnan(analysis.pull(0.5, 0.0, 1.0)) and math.isnan(analysis.pull(1, math.nan, 1))
    # Arrays element by element, with the agreement table's convention where σ = 0.
    value, error = np.array([1.3, 0.5, 2.0]), np.array([0.3, 0.1, 0.0])
    pulls = analysis.pull(value, error, np.array([1.0, 1.0, 1.0]), np.array([0.4, 0.0, 0.0]))
    np.testing.assert_allclose(pulls[:2], [0.6, -5.0]) and math.isnan(pulls[2])
    # Bit for bit what each table computed before there was one pull: math.hypot for
    # floats (agreement, tunnelling), numpy.hypot for columns (reweighting).
    rng = np.random.default_rng(0)
    a, b, x, y = rng.random(2000), rng.random(2000), rng.random(2000), 10 ** rng.normal(size=2000)
    np.testing.assert_array_equal(analysis.pull(a, x, b, y), (a - b) / np.hypot(x, y))
    assert all(
        analysis.pull(*args) == (args[0] - args[2]) / math.hypot(args[1], args[3])
        for args in zip(a, x, b, y, strict=True)
    )
    assert all(analysis.pull(v, e, 0.0) == v / e for v, e in zip(a - b, y, strict=True))


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
        fits.append(analysis.fit_power_law(x, y * (1 + 0.05 * rng.normal(size=x.size)), 0.05 * y))
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
        primaries = {
            "phi2": x,
            "abs_m": m,
            "m2": m * m,
            "m4": m**4,
            "ising_energy": x,
            "f_first": np.ones_like(x),
        }
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


def test_effective_masses_are_pyerrors_and_equal_the_hand_written_ones():
    """m_eff(t) and the pole mass come from pyerrors' Corr.m_eff("arccosh") and
    Corr.plateau(method="avg"). The numbers below are those of fieldflow's own
    implementation before it (arccosh of the ratio where it exceeds 1, the mean of the
    defined masses over the plateau range), on a correlator with m_eff(4) undefined."""
    rng = np.random.default_rng(7)
    L = 12
    C = np.cosh(0.5 * (np.arange(L) - L / 2)) + 0.02 * rng.normal(size=(2, 200, L))
    C[..., 4] += 0.8  # (C(3) + C(5)) / 2C(4) < 1: m_eff(4) undefined
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # the undefined one is silenced
        rows = analysis.correlator_rows(C)
        pole = analysis.observables({"correlator": C, **GAUSSIAN_PRIMARIES}, L)["pole_mass"]
    before = [
        (math.nan, math.nan),
        (0.5002868834286095, 0.0004156169190200111),
        (0.49880550325298095, 0.0006554051781522219),
        (0.7554665665185272, 0.0007707088243488868),
        (math.nan, math.nan),
        (0.9457123431504686, 0.0012934153359980677),
        (0.49941929347842323, 0.002466492799087812),
    ]
    found = [(r["m_eff"], r["m_eff_error"]) for r in rows]
    # To rounding: the last bit moved between two fresh installs (CI, 2026-12-07).
    np.testing.assert_allclose(found, before, rtol=1e-12, atol=0)  # NaN where undefined
    np.testing.assert_allclose(
        (pole.value, pole.error, pole.tau_int, pole.tau_int_error),
        (0.8505894548344979, 0.0007816258256838317, 0.5024937655860352, 0.05000000000000002),
        rtol=1e-12,
        atol=0,
    )
    # Directly against pyerrors, and with nothing defined in the plateau range.
    o = [pe.Obs(list(C[..., t]), ["ens|r0", "ens|r1"]) for t in range(L)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # arccosh at t = 4
        plateau = pe.Corr(o).m_eff("arccosh").plateau(list(analysis.plateau_range(L)), "avg")
    plateau.gamma_method(S=2.0)
    assert plateau.value == pole.value and plateau.dvalue == pole.error
    concave = np.array([1.0, 2.0, 2.5, 2.0]) + 0.01 * rng.normal(size=(2, 200, 4))
    assert all(math.isnan(r["m_eff"]) for r in analysis.correlator_rows(concave))
    primaries = {"correlator": concave, **GAUSSIAN_PRIMARIES}
    assert math.isnan(analysis.observables(primaries, 4)["pole_mass"].value)


#: Primaries of independent Gaussian M, only so that observables() has every input.
GAUSSIAN_PRIMARIES = (
    lambda m: {
        "phi2": m * m,
        "m": m,
        "abs_m": np.abs(m),
        "m2": m * m,
        "m4": m**4,
        "ising_energy": m,
        "f_first": 0.5 * m * m,
    }
)(np.random.default_rng(8).normal(size=(2, 200)))


def test_only_the_known_warning_is_silenced():
    """Replica (chain) means outside the domain of ξ₂'s square root are NaN and unused; their
    warning is silenced. A series that overflows still warns from the Γ-method."""
    rng = np.random.default_rng(9)
    primaries = dict(GAUSSIAN_PRIMARIES)
    # χ₂/F − 1 > 0 overall, < 0 at the means of chain 1 alone.
    scale = np.array([[0.1], [2.0]])
    primaries["f_first"] = scale * (1 + 0.01 * rng.normal(size=(2, 200)))
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        found = analysis.observables(primaries, 4)
    assert math.isfinite(found["correlation_length"].value)
    with pytest.warns(RuntimeWarning):
        analysis.gamma_estimate(np.array([[1e300, -1e300] * 10, [1.0, 2.0] * 10]))


@pytest.mark.parametrize(
    "chains",
    [
        np.full((4, 200), 2.0),  # every chain in one sector
        np.repeat(np.array([[1.0], [-1.0], [0.0], [2.0]]), 200, axis=1),  # each in its own
    ],
)
def test_a_constant_chain_has_no_error_and_no_tau_int(chains):
    # pyerrors says error 0 and τ_int = ½ here: a confident claim no chain that never moved
    # can support (a frozen, rounded Q would be priced as independent draws).
    e = analysis.gamma_estimate(chains)
    assert e.value == pytest.approx(chains.mean())
    assert math.isnan(e.error) and math.isnan(e.tau_int) and math.isnan(e.tau_int_error)
    derived = analysis.observables(
        {"plaquette": chains, "charge": chains, "charge2": chains**2}, 8, theory=U1
    )
    assert math.isnan(derived["topological_charge"].tau_int)
    assert quality.judge(e, chains.size, []).reason == "no τ_int"
    # One chain that moves once is enough for an estimate.
    moved = chains.copy()
    moved[0, 100:] += 1.0
    assert analysis.gamma_estimate(moved).tau_int > 1.0


def test_the_slow_modes_tail_widens_the_errors_of_what_couples_to_it():
    """A charge that flips sign every ~500 draws and a plaquette of fast noise that moves
    a little with |Q|: the plaquette's own window misses the slow tail, which the
    attached one adds; the charge itself keeps its estimate."""
    rng = np.random.default_rng(3)
    chains, draws = 8, 20_000
    flips = rng.random((chains, draws)) < 1 / 500
    charge = np.where(np.cumsum(flips, axis=1) % 2 == 0, 0.0, 1.0)
    plaquette = 0.9 - 0.01 * charge + 0.05 * rng.standard_normal((chains, draws))
    primaries = {"plaquette": plaquette, "charge": charge, "charge2": charge**2}
    plain = analysis.observables(primaries, 8, theory=U1)
    tailed = analysis.with_slow_mode(primaries, 8, 2.0, U1, plain)
    assert tailed["topological_charge"] == plain["topological_charge"]
    assert plain["topological_charge"].tau_int > 100
    assert plain["plaquette"].tau_int < 20  # the window ends in the fast noise
    assert tailed["plaquette"].tau_int > 2 * plain["plaquette"].tau_int
    assert tailed["plaquette"].error > 1.4 * plain["plaquette"].error
    assert tailed["plaquette"].value == plain["plaquette"].value
    # φ⁴: the sectors are images under φ → −φ, nothing to attach.
    from fieldflow.theory import PHI4

    assert analysis.with_slow_mode({}, 8, 2.0, PHI4, plain) is plain
    # A frozen charge (τ_int NaN): unchanged, and flagged elsewhere.
    frozen = {**plain, "topological_charge": analysis.Estimate(0.0, math.nan, math.nan, math.nan)}
    assert analysis.with_slow_mode(primaries, 8, 2.0, U1, frozen) is frozen


def test_only_theories_whose_sectors_differ_have_a_slow_mode():
    from fieldflow.theory import PHI4

    assert U1.order_parameter.sectors_differ and U1.order_parameter.observable == (
        "topological_charge"
    )
    assert not PHI4.order_parameter.sectors_differ
