"""Study-level tables: pulls against the baselines or the exact result, costs, exponents,
crossovers; flows and Markov chains told apart by kind, never by name."""

import math

import numpy as np
import pandas as pd
import pytest

from fieldflow import study
from fieldflow.lattice import gaussian_observables


@pytest.fixture(autouse=True)
def no_timing_systematic(monkeypatch):
    """Error formulas are checked on the batches' own spread; one test adds the floor."""
    monkeypatch.setattr(study.common, "TIMING_SYSTEMATIC", 0.0)


COLUMNS = "L,s,lam,sampler,observable,value,error,tau_int,tau_int_error,n_samples".split(",")


def row(L, s, lam, sampler, observable, value, error, tau=1.0, dtau=0.1):
    return [L, s, lam, sampler, observable, value, error, tau, dtau, 1000]


def test_agreement_pulls_against_hmc_and_the_exact_result():
    exact = gaussian_observables(4, 1.0)["susceptibility"]
    observables = pd.DataFrame(
        [
            row(8, -4.0, 6.0, "hmc", "susceptibility", 2.0, 0.03),
            row(8, -4.0, 6.0, "cnf", "susceptibility", 2.1, 0.04),
            row(4, 1.0, 0.0, "hmc", "susceptibility", exact + 0.02, 0.01),
            row(4, 1.0, 0.0, "cnf", "susceptibility", exact - 0.1, 0.02),
            row(10, -4.0, 5.5, "cnf", "susceptibility", 3.0, 0.1),  # no HMC here: no pull
        ],
        columns=COLUMNS,
    )
    reweighted = pd.DataFrame(
        [row(8, -4.0, 6.0, "cnf", "susceptibility", 1.9, 0.05)], columns=COLUMNS
    )
    kinds = {"hmc": "mcmc", "cnf": "flow"}
    table = study.agreement(observables, kinds, reweighted)
    table = table.set_index(["L", "sampler", "estimator"])
    assert table.loc[(8, "cnf", "mh"), "pull"] == pytest.approx(0.1 / 0.05)
    assert table.loc[(8, "cnf", "reweighting"), "pull"] == pytest.approx(
        -0.1 / math.hypot(0.05, 0.03)
    )
    assert table.loc[(4, "cnf", "mh"), "reference"] == "exact"
    assert table.loc[(4, "cnf", "mh"), "pull"] == pytest.approx(-5.0)
    assert table.loc[(4, "hmc", "mh"), "pull"] == pytest.approx(2.0)  # HMC checked at λ = 0
    assert (8, "hmc", "mh") not in table.index and 10 not in table.index.get_level_values("L")
    large = study.large_pulls(table.reset_index())
    assert list(large["pull"]) == [pytest.approx(-5.0)]
    messages = study.report_large_pulls(table.reset_index())
    assert len(messages) == 1 and "cnf (mh) susceptibility at L=4" in messages[0]


def test_agreement_compares_flows_with_every_baseline_and_baselines_with_each_other():
    observables = pd.DataFrame(
        [
            row(8, -4.0, 6.0, "hmc", "phi2", 1.00, 0.03),
            row(8, -4.0, 6.0, "metro", "phi2", 1.08, 0.04),  # an MCMC baseline of any name
            row(8, -4.0, 6.0, "cluster", "phi2", 1.04, 0.03),
            row(8, -4.0, 6.0, "cnf", "phi2", 1.02, 0.01),
        ],
        columns=COLUMNS,
    )
    kinds = {"hmc": "mcmc", "metro": "mcmc", "cluster": "mcmc", "cnf": "flow"}
    table = study.agreement(observables, kinds)
    pairs = set(zip(table["sampler"], table["reference"], strict=True))
    flows = {("cnf", "hmc"), ("cnf", "metro"), ("cnf", "cluster")}
    assert pairs == flows | {("hmc", "cluster"), ("metro", "cluster"), ("metro", "hmc")}
    pull = table.set_index(["sampler", "reference"]).loc[("metro", "hmc"), "pull"]
    assert pull == pytest.approx(0.08 / 0.05)


def scaling_inputs(baseline="hmc"):
    rows, samplers = [], []
    for L, xi, tau_hmc in ((6, 1.5, 1.0), (8, 2.0, 1.0 * (2.0 / 1.5) ** 2), (12, 3.0, 4.0)):
        rows += [
            row(L, -4.0, 5.0, baseline, "correlation_length", xi, 0.01),
            row(L, -4.0, 5.0, "cnf", "correlation_length", xi + 0.5, 0.02),
            row(L, -4.0, 5.0, baseline, "susceptibility", 1.0, 0.1, tau_hmc, 0.05 * tau_hmc),
            row(L, -4.0, 5.0, baseline, "abs_magnetization", 1.0, 0.1, tau_hmc, 0.05 * tau_hmc),
            row(L, -4.0, 5.0, "cnf", "susceptibility", 1.0, 0.1, 0.6, 0.01),
            row(L, -4.0, 5.0, "cnf", "abs_magnetization", 1.0, 0.1, 0.6, 0.01),
        ]
        # Timed: HMC 1 ms per trajectory, cnf 3 ms per proposal (both ± 1%), and 100 s of
        # training; the jobs' wall times (25 s, 50 s for 10⁴ samples) are not used.
        samplers += [
            [L, -4.0, 5.0, baseline, 0.8, math.nan, math.nan, 25.0, 10000, "mcmc", 1e-3, 1e-5],
            [L, -4.0, 5.0, "cnf", 0.9, 0.9, 100.0, 50.0, 10000, "flow", 3e-3, 3e-5],
        ]
    columns = (
        "L,s,lam,sampler,acceptance,ess,train_seconds,sample_seconds,n_samples,kind,"
        "seconds_per_update,seconds_per_update_error"
    )
    return pd.DataFrame(rows, columns=COLUMNS), pd.DataFrame(samplers, columns=columns.split(","))


@pytest.mark.parametrize("baseline", ["hmc", "cluster", "anything"])
def test_scaling_costs_and_crossover(baseline):
    table = study.scaling(*scaling_inputs(baseline)).set_index(["sampler", "L"])
    assert table.loc[(baseline, 12), "seconds_per_independent"] == pytest.approx(1e-3 * 2 * 4.0)
    assert table.loc[("cnf", 6), "seconds_per_independent"] == pytest.approx(3e-3 * 2 * 0.6)
    assert table.loc[("cnf", 6), "cost_1e4"] == pytest.approx(3.6e-3 + 100.0 / 1e4)
    assert (
        table.loc[(baseline, 6), "cost_1e6"] == table.loc[(baseline, 6), "seconds_per_independent"]
    )
    assert table.loc[("cnf", 8), "xi2"] == 2.0  # xi_2 comes from the Markov chain
    crossover = study.crossovers(table.reset_index()).set_index(["sampler", "baseline", "cost"])
    # cnf: 3.6 ms everywhere; the baseline: 2, 3.56 ± 0.18, 8 ms: dearer, undecided, cheaper.
    sampling = crossover.loc[("cnf", baseline, "seconds_per_independent")]
    assert sampling["first_L"] == 12 and sampling["verdict"] == "crossover"
    amortised = crossover.loc[("cnf", baseline, "cost_1e4")]
    assert math.isnan(amortised["first_L"]) and amortised["verdict"] == "none"
    assert set(crossover.index.get_level_values("sampler")) == {"cnf"}
    assert list(crossover.reset_index().columns) == study.CROSSOVER_COLUMNS


def test_crossover_against_each_of_several_baselines():
    observables, samplers = scaling_inputs("hmc")
    slow_obs, slow = scaling_inputs("cluster")
    slow = slow[slow["kind"] == "mcmc"].assign(seconds_per_update=0.1)  # 100x dearer
    observables = pd.concat([observables, slow_obs[slow_obs["sampler"] == "cluster"]])
    table = study.scaling(observables, pd.concat([samplers, slow], ignore_index=True))
    crossover = study.crossovers(table).set_index(["baseline", "cost"])
    assert crossover.loc[("hmc", "seconds_per_independent"), "first_L"] == 12
    assert crossover.loc[("cluster", "seconds_per_independent"), "first_L"] == 6


def test_scaling_uses_the_timed_seconds_per_update_and_propagates_its_error():
    table = study.scaling(*scaling_inputs()).set_index(["sampler", "L"])
    hmc = table.loc[("hmc", 12)]
    # 1 ms per trajectory as timed, not the job's 25 s / 10⁴ samples.
    assert hmc["seconds_per_sample"] == pytest.approx(1e-3)
    assert hmc["seconds_per_sample_error"] == pytest.approx(1e-5)
    # δc/c: τ_int's 5% and the timing's 1% in quadrature.
    assert hmc["seconds_per_independent_error"] == pytest.approx(8e-3 * math.hypot(0.05, 0.01))
    cnf = table.loc[("cnf", 6)]
    assert cnf["seconds_per_independent_error"] == pytest.approx(
        3.6e-3 * math.hypot(0.01 / 0.6, 0.01)
    )
    assert set(table.reset_index().columns) == set(study.SCALING_COLUMNS)


def test_thinning_is_already_in_tau_int_so_the_cost_is_per_update():
    observables, samplers = scaling_inputs()
    # observables.csv's τ_int counts updates (the stage multiplies by thin): the cost of an
    # independent sample is seconds_per_update · 2τ_int whatever thin was.
    plain = study.scaling(observables, samplers).set_index(["sampler", "L"])
    samplers["thin"] = np.where(samplers["kind"] == "mcmc", 5, np.nan)  # NaN: flows
    thinned = study.scaling(observables, samplers).set_index(["sampler", "L"])
    pd.testing.assert_frame_equal(thinned, plain)


def test_timing_error_has_a_floor_for_what_differs_between_jobs(monkeypatch):
    monkeypatch.setattr(study.common, "TIMING_SYSTEMATIC", 0.25)
    hmc = study.scaling(*scaling_inputs()).set_index(["sampler", "L"]).loc[("hmc", 12)]
    assert hmc["seconds_per_sample_error"] == pytest.approx(1e-3 * math.hypot(0.01, 0.25))
    assert hmc["seconds_per_independent_error"] == pytest.approx(
        8e-3 * math.hypot(0.05, 0.01, 0.25)
    )


def test_scaling_falls_back_to_the_job_time_whose_comparisons_stay_undecided():
    observables, samplers = scaling_inputs()
    old = samplers.drop(columns=["seconds_per_update", "seconds_per_update_error"])
    table = study.scaling(observables, old).set_index(["sampler", "L"])
    assert table.loc[("hmc", 12), "seconds_per_sample"] == pytest.approx(25.0 / 10000)
    assert table["seconds_per_sample_error"].isna().all()
    assert table["seconds_per_independent_error"].isna().all()
    crossover = study.crossovers(table.reset_index())
    assert (crossover["verdict"] == "undecided").all() and crossover["first_L"].isna().all()
    # An old ensemble among timed ones (tables_stage writes NaN): only its row falls back.
    mixed = samplers.copy()
    mixed.loc[(mixed["sampler"] == "cnf") & (mixed["L"] == 6), "seconds_per_update"] = math.nan
    table = study.scaling(observables, mixed).set_index(["sampler", "L"])
    assert table.loc[("cnf", 6), "seconds_per_sample"] == pytest.approx(50.0 / 10000)
    assert math.isnan(table.loc[("cnf", 6), "seconds_per_independent_error"])
    assert table.loc[("cnf", 8), "seconds_per_sample"] == pytest.approx(3e-3)


def cost_table(mine, theirs, mine_error=0.1, theirs_error=0.1, sizes=(6, 8, 12), lams=None):
    """A scaling table of one flow (cnf) and one baseline (hmc) with the given costs."""
    n = len(sizes)
    lams = [5.0] * n if lams is None else lams
    rows = []
    for sampler, kind, costs, errors in (
        ("cnf", "flow", mine, mine_error),
        ("hmc", "mcmc", theirs, theirs_error),
    ):
        for L, lam, cost, error in zip(sizes, lams, costs, np.broadcast_to(errors, n), strict=True):
            rows.append(
                {
                    "L": L,
                    "s": -4.0,
                    "lam": lam,
                    "sampler": sampler,
                    "kind": kind,
                    "seconds_per_independent": cost,
                    "seconds_per_independent_error": error,
                    "cost_1e4": cost,
                    "cost_1e6": cost,
                    "reliable": True,
                }
            )
    return pd.DataFrame(rows)


@pytest.mark.parametrize(
    ("theirs", "theirs_error", "verdict", "first_L"),
    [
        ([2.0, 3.0, 4.0], 0.1, "crossover", 6),  # cheaper beyond 2σ everywhere
        ([0.5, 1.1, 2.0], 0.1, "crossover", 12),  # dearer, undecided, then cheaper
        ([2.0, 3.0, 1.2], 0.1, "undecided", math.nan),  # 0.2 < 2σ = 0.28 at the largest L
        ([2.0, 3.0, 0.5], 0.1, "none", math.nan),  # dearer at the largest L
        ([2.0, 3.0, 4.0], math.nan, "undecided", math.nan),  # no timing error: no statement
        ([2.0, 3.0, 4.0], [math.nan, 0.1, 0.1], "crossover", 8),  # ... only below it
    ],
)
def test_crossover_verdict_from_costs_beyond_their_error(theirs, theirs_error, verdict, first_L):
    table = cost_table([1.0, 1.0, 1.0], theirs, theirs_error=theirs_error)
    crossover = study.crossovers(table)
    assert len(crossover) == 3 and set(crossover["verdict"]) == {verdict}
    for found in crossover["first_L"]:
        assert found == first_L or (math.isnan(found) and math.isnan(first_L))
    assert (crossover["largest_L"] == 12).all()


def test_crossover_verdict_looks_at_every_point_of_a_lattice_size():
    # Two points at L = 8: the flow is decidedly cheaper at only one, so not from L = 8.
    table = cost_table(
        [1.0] * 4, [2.0, 2.0, 1.1, 2.0], sizes=(6, 8, 8, 12), lams=[5.0, 5.0, 6.0, 5.0]
    )
    row = study.crossovers(table).iloc[0]
    assert row["verdict"] == "crossover" and row["first_L"] == 12
    # Two points at the largest L, the flow dearer at one: no crossover.
    table = cost_table([1.0] * 3, [2.0, 2.0, 0.5], sizes=(8, 12, 12), lams=[5.0, 5.0, 6.0])
    row = study.crossovers(table).iloc[0]
    assert row["verdict"] == "none" and math.isnan(row["first_L"])


def test_an_unreliable_cost_decides_nothing():
    table = cost_table([1.0, 1.0, 1.0], [2.0, 3.0, 4.0])
    unreliable = (table["sampler"] == "hmc") & (table["L"] == 12)
    table.loc[unreliable, "reliable"] = False
    assert set(study.crossovers(table)["verdict"]) == {"undecided"}
    table = cost_table([1.0, 1.0, 1.0], [2.0, 3.0, 4.0])
    table.loc[(table["sampler"] == "cnf") & (table["L"] == 6), "reliable"] = False
    row = study.crossovers(table).iloc[0]
    assert row["verdict"] == "crossover" and row["first_L"] == 8 and not row["reliable"]


def test_crossover_table_holds_decisions_and_no_timed_numbers():
    assert study.CROSSOVER_COLUMNS == [
        "sampler",
        "baseline",
        "cost",
        "first_L",
        "largest_L",
        "reliable",
        "verdict",
    ]


def test_crossover_needs_more_than_k_sigma():
    # Difference 10 = 2σ exactly (σ = hypot(3, 4) = 5): not beyond 2σ, but beyond 1σ.
    table = cost_table([10.0], [20.0], mine_error=3.0, theirs_error=4.0, sizes=(8,))
    assert study.CROSSOVER_SIGMA == 2.0
    assert set(study.crossovers(table)["verdict"]) == {"undecided"}
    assert set(study.crossovers(table, k=1.0)["verdict"]) == {"crossover"}


def test_dynamic_exponent_of_a_known_power_law():
    table = study.scaling(*scaling_inputs())
    exponents = study.dynamic_exponents(table).set_index(["sampler", "observable"])
    assert exponents.loc[("hmc", "susceptibility"), "z"] == pytest.approx(2.0, abs=1e-6)
    assert exponents.loc[("hmc", "abs_magnetization"), "n_points"] == 3
    assert exponents.loc[("cnf", "susceptibility"), "z"] == pytest.approx(0.0, abs=1e-6)


def test_one_xi_source_per_point_baselines_first():
    rows = [
        row(6, -4.0, 5.0, "cnf", "correlation_length", 1.40, 0.001),  # precise, but a flow
        row(6, -4.0, 5.0, "hmc", "correlation_length", 1.50, math.nan),  # no error
        row(6, -4.0, 5.0, "cluster", "correlation_length", 1.55, 0.02),
        row(8, -4.0, 5.0, "cnf", "correlation_length", 2.10, 0.05),  # no baseline here
        row(8, -4.0, 5.0, "nsf", "correlation_length", 2.00, 0.02),
        row(10, -4.0, 5.0, "hmc", "correlation_length", 2.5, 0.02),
        row(10, -4.0, 5.0, "cluster", "correlation_length", math.nan, math.nan),
    ]
    observables = pd.DataFrame(rows, columns=COLUMNS)
    kinds = {"cnf": "flow", "nsf": "flow", "hmc": "mcmc", "cluster": "mcmc"}
    assert study.xi_source(observables, kinds, (6, -4.0, 5.0)) == "cluster"
    assert study.xi_source(observables, kinds, (8, -4.0, 5.0)) == "nsf"
    assert study.xi_source(observables, kinds, (10, -4.0, 5.0)) == "hmc"
    assert study.xi_source(observables, kinds, (12, -4.0, 5.0)) is None
    # A baseline with a value but no error still beats every flow.
    no_cluster = observables[observables["sampler"] != "cluster"]
    assert study.xi_source(no_cluster, kinds, (6, -4.0, 5.0)) == "hmc"


def test_scaling_without_baselines_uses_one_xi_per_point():
    observables, samplers = scaling_inputs()
    flows = samplers[samplers["kind"] == "flow"]
    cnf = observables[observables["sampler"] == "cnf"]
    nsf = cnf.assign(sampler="nsf", error=0.5)
    table = study.scaling(pd.concat([cnf, nsf]), pd.concat([flows, flows.assign(sampler="nsf")]))
    per_point = table.groupby("L")["xi2"].nunique()
    assert (per_point == 1).all()
    assert set(table["xi2"]) == {2.0, 2.5, 3.5}  # cnf's (smaller error), not nsf's
    assert study.crossovers(table).empty  # no baseline to cross over


def test_costs_and_exponents_from_an_unreliable_chain_are_flagged():
    observables, samplers = scaling_inputs()
    observables["reliable"] = True
    doubtful = (observables["sampler"] == "cnf") & (observables["L"] == 12)
    observables.loc[doubtful & (observables["observable"] == "susceptibility"), "reliable"] = False
    table = study.scaling(observables, samplers).set_index(["sampler", "L"])
    assert not table.loc[("cnf", 12), "reliable"] and table.loc[("cnf", 6), "reliable"]
    assert table.xs("hmc")["reliable"].all()
    exponents = study.dynamic_exponents(table.reset_index()).set_index(["sampler", "observable"])
    assert not exponents.loc[("cnf", "susceptibility"), "reliable"]
    assert exponents.loc[("hmc", "susceptibility"), "reliable"]
    crossover = study.crossovers(table.reset_index())
    assert not crossover["reliable"].any()  # every cnf row uses the L = 12 cost


def tunnelling_inputs():
    """Two points; hmc and cnf tunnel, a stuck cluster chain is cheapest even by its bound."""
    observables, samplers = [], []
    crossings = []
    for L in (6, 8):
        for sampler, kind, value, error, tau, seconds, k in (
            ("hmc", "mcmc", 0.01, 0.02, 10.0, 1e-3, 40),
            ("cnf", "flow", -0.03, 0.02, 2.0, 3e-3, 300),
            ("cluster", "mcmc", 0.9, 0.001, 0.6, 1e-6, 0),  # one vacuum: small τ, huge pull
        ):
            observables.append(
                row(L, -4.0, 5.0, sampler, "magnetization", value, error, tau, 0.1 * tau)
                + [sampler != "cluster"]
            )
            samplers.append([L, -4.0, 5.0, sampler, kind, seconds, 0.01 * seconds, 1.0, 1000])
            crossings.append(
                {
                    "L": L,
                    "s": -4.0,
                    "lam": 5.0,
                    "sampler": sampler,
                    "n_chains": 4,
                    "n_draws": 300,
                    "crossings": k,
                    "per_1000_updates": 1000 * k / 1200,
                    "per_second": math.nan,
                    "tunnel_updates": 1200 / (k or 3),
                    "bound": "lower" if k == 0 else math.nan,
                }
            )
    columns = "L,s,lam,sampler,kind,seconds_per_update,seconds_per_update_error,sample_seconds,"
    return (
        pd.DataFrame(crossings),
        pd.DataFrame(observables, columns=[*COLUMNS, "reliable"]),
        pd.DataFrame(samplers, columns=(columns + "n_samples").split(",")),
    )


def test_tunnelling_table_bounds_a_stuck_sampler_which_is_never_cheapest(caplog):
    table = study.tunnelling(*tunnelling_inputs())
    assert list(table.columns) == study.TUNNELLING_COLUMNS and len(table) == 6
    table = table.set_index(["L", "sampler"])
    hmc, stuck = table.loc[(6, "hmc")], table.loc[(6, "cluster")]
    assert hmc["tau_m"] == 10.0 and hmc["tau_m_error"] == 1.0 and hmc["bound"] == ""
    assert hmc["seconds_per_independent_m"] == pytest.approx(1e-3 * 2 * 10.0)
    assert hmc["seconds_per_independent_m_error"] == pytest.approx(0.02 * math.hypot(0.1, 0.01))
    assert hmc["pull"] == pytest.approx(0.5) and hmc["kind"] == "mcmc" and hmc["reliable"]
    # No crossing: τ_int(M) > nN/6 replaces the Γ-method's 0.6, and so does the cost.
    assert stuck["bound"] == "lower" and stuck["tau_m"] == pytest.approx(1200 / 6)
    assert math.isnan(stuck["tau_m_error"]) and math.isnan(stuck["seconds_per_independent_m_error"])
    assert stuck["seconds_per_independent_m"] == pytest.approx(1e-6 * 2 * 200)  # < cnf's
    assert stuck["pull"] == pytest.approx(900.0) and not stuck["reliable"]
    # cnf: 3 ms × 2 × 2 = 12 ms beats hmc's 20 ms; cluster's bound is lower still, but a
    # bound is never the cheapest.
    cheapest = table[table["cheapest"]]
    assert sorted(cheapest.index) == [(6, "cnf"), (8, "cnf")]
    assert not table.xs("cluster", level="sampler")["cheapest"].any()
    with caplog.at_level("WARNING"):
        messages = study.report_stuck(table.reset_index())
    assert len(messages) == 2 and all(
        "cluster" in m and "stuck in one vacuum?" in m for m in messages
    )
    assert "pull +900.0" in caplog.text


def test_tunnelling_table_with_every_sampler_bounded_has_no_cheapest():
    crossings, observables, samplers = tunnelling_inputs()
    crossings = crossings.assign(crossings=0, bound="lower")
    table = study.tunnelling(crossings, observables, samplers)
    assert (table["bound"] == "lower").all() and not table["cheapest"].any()
    assert study.tunnelling(crossings.iloc[:0], observables, samplers).empty


def u1_cost_inputs():
    """A U(1) study at L = 8 (crossings, observables, samplers): hmc tunnels at β = 1, has
    a constant Q at β = 4 (τ_int NaN, no crossing) and at β = 6 a Γ-method τ_int(Q) above
    the bound nN/6 = 200 without a crossing; the gauge flow tunnels at every β."""
    crossings, observables, samplers = [], [], []
    for beta, hmc_tau, k in ((1.0, 30.0, 40), (4.0, math.nan, 0), (6.0, 500.0, 0)):
        for sampler, kind, tau, seconds, changes in (
            ("hmc", "mcmc", hmc_tau, 1e-3, k),
            ("gauge", "flow", 1.0, 5e-3, 600),
        ):
            ok = changes > 0
            for observable, t in (("topological_charge", tau), ("topological_susceptibility", 2.0)):
                observables.append([8, beta, sampler, observable, 0.0, 0.1, t, 0.1 * t, 1200, ok])
            samplers.append([8, beta, sampler, kind, 100.0, 1.0, 1200, seconds, 0.01 * seconds])
            crossings.append(
                {
                    "L": 8,
                    "beta": beta,
                    "sampler": sampler,
                    "n_chains": 4,
                    "n_draws": 300,
                    "crossings": changes,
                    "bound": "" if ok else "lower",
                    "thin": 1,
                }
            )
    columns = "L,beta,sampler,observable,value,error,tau_int,tau_int_error,n_samples,reliable"
    sampler_columns = (
        "L,beta,sampler,kind,train_seconds,sample_seconds,n_samples,seconds_per_update,"
        "seconds_per_update_error"
    )
    return (
        pd.DataFrame(crossings),
        pd.DataFrame(observables, columns=columns.split(",")),
        pd.DataFrame(samplers, columns=sampler_columns.split(",")).assign(acceptance=1, ess=1),
    )


def test_a_frozen_chain_prices_its_order_parameter_at_the_tunnelling_bound():
    crossings, observables, samplers = u1_cost_inputs()
    table = study.scaling(observables, samplers, crossings)
    assert list(table.columns[-2:]) == ["bound", "reliable"]
    hmc = table[table["sampler"] == "hmc"].set_index("beta")
    # Tunnelling: the Γ-method's τ_int(Q), not a bound.
    assert hmc.loc[1.0, "tau_q"] == 30.0 and hmc.loc[1.0, "tau_q_error"] == 3.0
    assert hmc.loc[1.0, "bound"] == "" and hmc.loc[1.0, "reliable"]
    # Frozen with a constant Q: no Γ-method τ at all, priced at nN/6 = 1200/6.
    frozen = hmc.loc[4.0]
    assert frozen["tau_q"] == pytest.approx(200.0) and math.isnan(frozen["tau_q_error"])
    assert frozen["seconds_per_independent"] == pytest.approx(1e-3 * 2 * 200.0)
    assert math.isnan(frozen["seconds_per_independent_error"])
    assert frozen["bound"] == "lower" and not frozen["reliable"]
    # Frozen, with a Γ-method τ above the bound: the larger of the two, still a bound.
    assert hmc.loc[6.0, "tau_q"] == 500.0 and hmc.loc[6.0, "bound"] == "lower"
    assert (table.loc[table["sampler"] == "gauge", "bound"] == "").all()
    # One τ for the order parameter: tunnelling.csv prices it the same way.
    tunnelling = study.tunnelling(
        crossings.assign(per_1000_updates=0.0, per_second=0.0, tunnel_updates=0.0),
        observables,
        samplers,
    )
    merged = table.merge(tunnelling, on=["L", "beta", "sampler"], suffixes=("", "_t"))
    assert np.array_equal(merged["tau_q"], merged["tau_q_t"], equal_nan=True)
    assert (merged["bound"] == merged["bound_t"]).all()
    # Without the tunnelling rows a constant Q stays NaN: never a small τ_int.
    assert math.isnan(
        study.scaling(observables, samplers)
        .set_index(["sampler", "beta"])
        .loc[("hmc", 4.0), "tau_q"]
    )


def test_a_phi4_scaling_table_prices_no_order_parameter_and_has_no_bound():
    observables, samplers = scaling_inputs()
    crossings = samplers[["L", "s", "lam", "sampler"]].assign(
        n_chains=4, n_draws=300, crossings=0, bound="lower", thin=1
    )
    table = study.scaling(observables, samplers, crossings)
    pd.testing.assert_frame_equal(table, study.scaling(observables, samplers))
    assert "bound" not in table and list(table.columns) == study.SCALING_COLUMNS


def test_a_study_at_one_lattice_size_gets_a_crossover_verdict_per_point():
    crossings, observables, samplers = u1_cost_inputs()
    table = study.scaling(observables, samplers, crossings)
    assert study.verdict_columns(table) == ["beta"]
    crossover = study.crossovers(table)
    assert list(crossover.columns) == ["beta", *study.CROSSOVER_COLUMNS]
    verdicts = crossover[crossover["cost"] == "seconds_per_independent"].set_index("beta")
    # β = 1: the flow's 10 ms against hmc's 60 ms; β = 4, 6: below hmc's lower bounds,
    # 0.4 s and 1 s: a frozen chain costs at least its bound, so the flow wins there too.
    assert verdicts["verdict"].to_dict() == {1.0: "crossover", 4.0: "crossover", 6.0: "crossover"}
    assert verdicts.loc[1.0, "first_L"] == 8 and verdicts.loc[1.0, "largest_L"] == 8
    assert verdicts["reliable"].all()
    # A flow dearer than a bound is not dearer than the chain, whose cost may be far higher.
    slow = table.assign(
        seconds_per_independent=np.where(
            table["sampler"] == "gauge", 5.0, table["seconds_per_independent"]
        )
    )
    verdicts = study.crossovers(slow).set_index(["beta", "cost"])["verdict"]
    assert verdicts[(1.0, "seconds_per_independent")] == "none"
    assert verdicts[(4.0, "seconds_per_independent")] == "undecided"
    # An unreliable flow decides nothing against a bound either.
    shaky = table.assign(reliable=np.where(table["sampler"] == "gauge", False, table["reliable"]))
    verdicts = study.crossovers(shaky).set_index(["beta", "cost"])["verdict"]
    assert verdicts[(4.0, "seconds_per_independent")] == "undecided"
    assert list(crossover["beta"]) == sorted(crossover["beta"])  # a point's rows together
    # φ⁴ follows lines of constant physics: one verdict along L in φ⁴'s columns
    # (test_scaling_costs_and_crossover), at a single L too.
    single = cost_table([1.0, 1.0], [2.0, 0.5], sizes=(8, 8), lams=[5.0, 6.0])
    found = study.crossovers(single)
    assert list(found.columns) == study.CROSSOVER_COLUMNS and study.verdict_columns(single) == []
    assert set(found["verdict"]) == {"none"}  # dearer at λ = 6
    # U(1) at two L: a verdict per β along L.
    both = pd.concat([table, table.assign(L=16)], ignore_index=True)
    per_beta = study.crossovers(both)
    per_beta = per_beta[per_beta["cost"] == "seconds_per_independent"].set_index("beta")
    assert per_beta["verdict"].to_dict() == {1.0: "crossover", 4.0: "crossover", 6.0: "crossover"}
    assert (per_beta["first_L"] == 8).all() and (per_beta["largest_L"] == 16).all()
