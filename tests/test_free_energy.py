"""log Z: the exact Gaussian value, the flow estimator, and thermodynamic integration."""

import math

import numpy as np
import pytest
import torch

from fieldflow import free_energy as fe
from fieldflow import integration
from fieldflow.analysis import gamma_estimate
from fieldflow.flows import build_flow
from fieldflow.lattice import Point, action
from fieldflow.mcmc import flow_proposals
from fieldflow.mcmc.chain import collect
from fieldflow.samplers import mcmc_stream
from fieldflow.training import config_from_dict, train


def quadratic_form(L: int, s: float) -> np.ndarray:
    """The V×V matrix A of S = φᵀAφ at λ = 0, read off the action by polarisation."""
    volume = L * L
    eye = torch.eye(volume, dtype=torch.float64).reshape(volume, L, L)
    diagonal = action(eye, s, 0.0)
    pairs = action(eye[:, None] + eye[None, :], s, 0.0)
    return (0.5 * (pairs - diagonal[:, None] - diagonal[None, :])).numpy()


@pytest.mark.parametrize("L", [2, 3, 4, 5])
@pytest.mark.parametrize("s", [0.3, 2.0])
def test_gaussian_log_z_is_the_gaussian_integral_of_the_action(L, s):
    # ∫ dφ exp(−φᵀAφ) = π^{V/2} / sqrt(det A), with A read off the action itself.
    sign, logdet = np.linalg.slogdet(quadratic_form(L, s))
    assert sign > 0
    assert fe.gaussian_log_z(L, s) == pytest.approx(
        0.5 * L * L * math.log(math.pi) - 0.5 * logdet, rel=1e-12, abs=1e-10
    )


def test_gaussian_sum_phi2_is_minus_the_s_derivative_of_log_z():
    L, s, h = 6, 0.7, 1e-5
    derivative = (fe.gaussian_log_z(L, s + h) - fe.gaussian_log_z(L, s - h)) / (2 * h)
    assert fe.gaussian_sum_phi2(L, s) == pytest.approx(-derivative, rel=1e-8)
    with pytest.raises(ValueError, match="s > 0"):
        fe.gaussian_log_z(4, 0.0)


def test_flow_log_z_of_constant_weights_is_exact_with_zero_error():
    result = fe.flow_log_z(np.full(1000, -3.25))
    assert result.log_Z == pytest.approx(-3.25, abs=1e-14) and result.error == 0.0
    assert result.ess == pytest.approx(1.0) and result.reliable
    assert result.lower_bound == pytest.approx(result.log_Z)


def test_flow_log_z_delta_error_matches_the_ess_formula():
    log_weight = np.random.default_rng(1).normal(0.0, 0.5, 20000)
    result = fe.flow_log_z(log_weight)
    assert result.error_method == "delta"
    assert result.error == pytest.approx(math.sqrt((1 / result.ess - 1) / log_weight.size))
    assert result.lower_bound < result.log_Z  # Jensen: ⟨log w⟩ ≤ log ⟨w⟩
    # log-normal weights: log E[w] = σ²/2 exactly
    assert abs(result.log_Z - 0.125) < 4 * result.error


def test_heavy_tailed_weights_get_the_bootstrap_and_few_effective_proposals_are_flagged():
    log_weight = np.random.default_rng(2).normal(0.0, 3.0, 2000)  # ESS ≈ e^{−9}
    result = fe.flow_log_z(log_weight, seed=5)
    assert result.error_method == "bootstrap"
    assert not result.reliable and "effective proposals" in result.reason
    assert result.pareto_k >= 0.5 and "Pareto" in result.reason
    assert "biased low" in result.reason and result.effective < 100
    # Nor does the true value (σ²/2 = 4.5) lie above the estimate by a confident margin
    # while it is called reliable: it is flagged instead.
    assert result.log_Z < 4.5
    with pytest.raises(ValueError, match="NaN or"):
        fe.flow_log_z(np.array([0.0, np.nan]))
    with pytest.raises(ValueError, match="nonzero weight"):
        fe.flow_log_z(np.full(5, -np.inf))
    # A proposal of weight 0 is allowed: it only dilutes the mean.
    zero = fe.flow_log_z(np.array([0.0, 0.0, -np.inf, 0.0]))
    assert zero.log_Z == pytest.approx(math.log(0.75))
    with pytest.raises(ValueError, match="at least 2"):
        fe.flow_log_z(np.array([0.0]))


def test_path_nodes_are_gauss_legendre_on_each_leg():
    path = integration.IntegrationPath(L=6, s=-4.0, lam=6.975, s0=1.0, n_nodes=5)
    nodes = path.nodes()
    assert [n.name for n in nodes] == [f"lam{i}" for i in range(5)] + [f"s{i}" for i in range(5)]
    lam_leg = [n for n in nodes if n.leg == "lam"]
    s_leg = [n for n in nodes if n.leg == "s"]
    assert all(n.s == 1.0 and 0 < n.lam < 6.975 and n.power == 4 for n in lam_leg)
    assert all(n.lam == 6.975 and -4.0 < n.s < 1.0 and n.power == 2 for n in s_leg)
    assert sum(n.weight for n in lam_leg) == pytest.approx(6.975)
    assert sum(n.weight for n in s_leg) == pytest.approx(-5.0)  # ds runs from s0 down to s
    assert path.node("s3") == s_leg[3]
    free = integration.IntegrationPath(L=6, s=0.5, lam=0.0, s0=0.5, n_nodes=5)
    assert free.nodes() == []


@pytest.mark.parametrize(
    ("s", "lam", "s0", "match"),
    [
        (-1.0, 0.0, 1.0, "unbounded action"),
        (0.0, 0.0, 1.0, "unbounded action"),
        (-4.0, 5.0, 0.0, "s0 = 0 must be > 0"),
        (-4.0, -1.0, 1.0, "unbounded action"),
        (-4.0, math.inf, 1.0, "lam must be finite"),
    ],
)
def test_paths_over_an_unbounded_action_are_refused(s, lam, s0, match):
    with pytest.raises(ValueError, match=match):
        integration.IntegrationPath(L=4, s=s, lam=lam, s0=s0, n_nodes=4)


def test_integration_of_the_exact_free_integrand_reproduces_the_exact_log_z():
    # At λ = 0 the s leg's integrand is known exactly, so this isolates the quadrature.
    L, s, s0 = 8, 0.3, 1.0
    path = integration.IntegrationPath(L=L, s=s, lam=0.0, s0=s0, n_nodes=6)
    means = {n.name: (fe.gaussian_sum_phi2(L, n.s), 0.01) for n in path.nodes()}
    result = integration.integrate(path, means)
    assert result.log_Z == pytest.approx(fe.gaussian_log_z(L, s), abs=1e-6)
    assert result.start == fe.gaussian_log_z(L, s0) and result.reliable
    expected_error = 0.01 * math.sqrt(sum(n.weight**2 for n in path.nodes()))
    assert result.error == pytest.approx(expected_error)
    flagged = integration.integrate(path, means, unreliable={"s2": "tau_int too large", "s1": ""})
    assert not flagged.reliable and flagged.reason == "s2: tau_int too large"
    with pytest.raises(KeyError, match="no estimate for node s0"):
        integration.integrate(path, {})


def sum_of_powers(point: Point, power: int, seed: int) -> tuple[float, float]:
    """Γ-method mean of Σ_x φ_x^power from a short HMC run at ``point``."""
    settings = {"n_chains": 8, "n_trajectories": 400, "burn_in": 50}
    result = collect(mcmc_stream("hmc"), point, settings, seed, progress=False)
    estimate = gamma_estimate(fe.sum_of_powers(result.phi, power))
    return estimate.value, estimate.error


@pytest.mark.parametrize("L", [4, 6, 8])
def test_integration_with_hmc_reproduces_the_exact_free_log_z(L):
    s, s0 = 0.4, 1.5
    path = integration.IntegrationPath(L=L, s=s, lam=0.0, s0=s0, n_nodes=4)
    means = {
        n.name: sum_of_powers(Point(L, n.s, n.lam), n.power, seed=10 + n.index)
        for n in path.nodes()
    }
    result = integration.integrate(path, means)
    exact = fe.gaussian_log_z(L, s)
    assert 0 < result.error < 0.5
    assert abs(result.log_Z - exact) < 4 * result.error, (result, exact)


@pytest.mark.parametrize("family", ["realnvp", "nsf", "cnf"])
@pytest.mark.parametrize("L", [2, 6])  # L = 4 as well cost 15 s of a suite kept under 10 min
def test_every_flow_estimates_the_exact_free_log_z(family, L):
    point = Point(L, 0.6, 0.0)
    torch.manual_seed(3)
    flow = build_flow(family, L, {})
    settings = {"steps": 100, "batch_size": 64, "lr": 0.01, "ess_every": 10**9}
    train(flow, point, config_from_dict(settings), seed=3, progress=False)
    generator = torch.Generator().manual_seed(4)
    with torch.no_grad():
        proposals = flow_proposals(flow.double(), point, 4096, 2048, generator)
    result = fe.flow_log_z(proposals.log_weight)
    exact = fe.gaussian_log_z(L, point.s)
    assert result.reliable, result
    assert abs(result.log_Z - exact) < 4 * result.error, (result, exact)
    assert result.lower_bound <= result.log_Z


def test_free_energy_stage_writes_the_contract_table(tmp_path):
    """Flow rows from raw proposals, an integration row from node ensembles, at λ = 0."""
    import pandas as pd

    from fieldflow.flows import save_model
    from fieldflow.stages import mcmc_stage, sample_flow_stage
    from fieldflow.stages.free_energy import FREE_ENERGY_COLUMNS, free_energy_stage

    L, s = 4, 1.2
    point = {"L": L, "s": s, "lam": 0.0}
    torch.manual_seed(1)
    flow = build_flow("realnvp", L, {"n_layers": 2})
    save_model(
        tmp_path / "m.pt", flow, "realnvp", {"n_layers": 2}, train_seconds=0.0, train_steps=0
    )
    sampling = {
        "n_chains": 2,
        "n_samples": 2048,
        "burn_in": 0,
        "batch_size": 1024,
        "precision": "float64",
    }
    flow_path = tmp_path / "realnvp.zarr"
    sample_flow_stage(tmp_path / "m.pt", point, sampling, "cpu", 3, flow_path, "realnvp")
    path = integration.IntegrationPath(L=L, s=s, lam=0.0, s0=2.0, n_nodes=4)
    nodes = {}
    for node in path.nodes():
        nodes[node.name] = tmp_path / f"{node.name}.zarr"
        settings = {"n_chains": 4, "n_trajectories": 300, "burn_in": 50}
        mcmc_stage(
            "hmc",
            {"L": L, "s": node.s, "lam": node.lam},
            settings,
            seed=node.index,
            ensemble_path=nodes[node.name],
            progress=False,
        )
    key = Point(L, s, 0.0).key
    table = free_energy_stage(
        [flow_path], {key: path}, {key: nodes}, "hmc", tmp_path / "free_energy.csv"
    )
    written = pd.read_csv(tmp_path / "free_energy.csv")
    assert list(written.columns) == FREE_ENERGY_COLUMNS
    assert list(written["method"]) == ["flow", "integration"]
    assert list(written["sampler"]) == ["realnvp", "hmc"]
    exact = fe.gaussian_log_z(L, s)
    for row in table.itertuples():
        assert row.f == pytest.approx(-row.log_Z / L**2)
        assert row.f_error == pytest.approx(row.error / L**2)
        if row.reliable:
            assert abs(row.log_Z - exact) < 4 * row.error, row
    flow_row, integrated = table.iloc[0], table.iloc[1]
    assert flow_row["n_samples"] == 4096 and flow_row["lower_bound"] <= flow_row["log_Z"]
    # The untrained flow has a handful of effective proposals: flagged, not trusted.
    assert not flow_row["reliable"] and "effective proposals" in flow_row["reason"]
    assert integrated["reliable"] and integrated["n_samples"] == 4 * 4 * 300
    assert flow_row["pull"] == pytest.approx(
        (flow_row["log_Z"] - integrated["log_Z"]) / np.hypot(flow_row["error"], integrated["error"])
    )
    assert np.isnan(integrated["pull"]) and np.isnan(integrated["pareto_k"])


def test_pareto_k_measures_the_tail_of_the_weights():
    rng = np.random.default_rng(3)
    # Lomax weights with shape a have a generalized Pareto tail of shape k = 1/a.
    for a in (1.25, 4.0):
        k = fe.pareto_k(np.log(rng.pareto(a, 20000)))
        assert abs(k - 1 / a) < 0.15, (a, k)
    assert fe.pareto_k(rng.normal(0.0, 0.3, 20000)) < 0.2
    assert math.isnan(fe.pareto_k(np.zeros(10)))
    heavy = fe.flow_log_z(np.log(rng.pareto(1.1, 20000)))
    assert not heavy.reliable and "Pareto" in heavy.reason


def test_a_flow_that_favours_one_vacuum_is_flagged():
    rng = np.random.default_rng(4)
    log_weight = rng.normal(0.0, 0.1, 4000)
    balanced = fe.flow_log_z(log_weight, magnetization=rng.choice([-1.0, 1.0], 4000))
    assert balanced.reliable, balanced.reason
    lopsided = fe.flow_log_z(log_weight, magnetization=rng.choice([-1.0, 1.0], 4000, p=[0.3, 0.7]))
    assert not lopsided.reliable and "sign M" in lopsided.reason


def test_the_lambda_leg_does_not_depend_on_where_the_path_starts():
    """The same (s, λ) from two starts s₀: both legs' signs and weights must be right."""
    L, s, lam = 4, 0.5, 1.0
    results = []
    for s0 in (1.0, 2.5):
        path = integration.IntegrationPath(L=L, s=s, lam=lam, s0=s0, n_nodes=4)
        means = {
            n.name: sum_of_powers(Point(L, n.s, n.lam), n.power, seed=20 + n.index)
            for n in path.nodes()
        }
        results.append(integration.integrate(path, means))
    (a, b) = results
    assert a.start != b.start  # different exact starting points ...
    assert abs(a.log_Z - b.log_Z) < 4 * math.hypot(a.error, b.error), (a, b)  # ... same end
    assert abs(a.log_Z - a.start) > 10 * a.error  # and the legs did move log Z


def test_too_few_nodes_flag_the_integration():
    path = integration.IntegrationPath(L=4, s=0.3, lam=0.0, s0=1.0, n_nodes=2)
    means = {n.name: (fe.gaussian_sum_phi2(4, n.s), 0.01) for n in path.nodes()}
    result = integration.integrate(path, means)
    assert not result.reliable and "2 nodes a leg < 4" in result.reason


def test_a_gauge_flow_estimates_the_exact_u1_log_z():
    """U(1) at L = 4, β = 0.5: the flow's q is a density in dθ, so its log Z is the Haar
    one of the character expansion plus 2V log 2π (fieldflow.theory.U1.log_z)."""
    from fieldflow.flows.gauge import build_gauge_flow
    from fieldflow.theory import U1
    from fieldflow.u1 import exact as u1_exact
    from fieldflow.u1.point import U1Point

    point = U1Point(4, 0.5)
    torch.manual_seed(0)
    flow = build_gauge_flow(4, n_layers=4).double()  # untrained: the Haar prior, ESS ≈ 0.2
    with torch.no_grad():
        proposals = flow_proposals(flow, point, 4096, 4096, torch.Generator().manual_seed(5))
    result = fe.flow_log_z(proposals.log_weight)
    exact = U1.log_z(point)
    assert exact == pytest.approx(u1_exact.log_z(4, 0.5) + 32 * math.log(2 * math.pi))
    assert abs(result.log_Z - exact) < 4 * result.error, (result, exact)
    assert abs(result.log_Z - u1_exact.log_z(4, 0.5)) > 40 * result.error  # the offset matters
