"""Study-level tables: pulls against the baselines or the exact result, costs, exponents,
crossovers; flows and Markov chains told apart by kind, never by name."""

import math

import pandas as pd
import pytest

from fieldflow import study
from fieldflow.lattice import gaussian_observables

COLUMNS = "L,s,lam,sampler,observable,value,error,tau_int,tau_int_error,n_samples".split(",")


def row(L, s, lam, sampler, observable, value, error, tau=1.0, dtau=0.1):
    return [L, s, lam, sampler, observable, value, error, tau, dtau, 1000]


def test_agreement_pulls_against_hmc_and_the_exact_result():
    exact = gaussian_observables(4, 1.0)["susceptibility"]
    observables = pd.DataFrame([
        row(8, -4.0, 6.0, "hmc", "susceptibility", 2.0, 0.03),
        row(8, -4.0, 6.0, "cnf", "susceptibility", 2.1, 0.04),
        row(4, 1.0, 0.0, "hmc", "susceptibility", exact + 0.02, 0.01),
        row(4, 1.0, 0.0, "cnf", "susceptibility", exact - 0.1, 0.02),
        row(10, -4.0, 5.5, "cnf", "susceptibility", 3.0, 0.1),  # no HMC here: no pull
    ], columns=COLUMNS)  # fmt: skip
    reweighted = pd.DataFrame([row(8, -4.0, 6.0, "cnf", "susceptibility", 1.9, 0.05)],
                              columns=COLUMNS)  # fmt: skip
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
    observables = pd.DataFrame([
        row(8, -4.0, 6.0, "hmc", "phi2", 1.00, 0.03),
        row(8, -4.0, 6.0, "metro", "phi2", 1.08, 0.04),  # an MCMC baseline of any name
        row(8, -4.0, 6.0, "cluster", "phi2", 1.04, 0.03),
        row(8, -4.0, 6.0, "cnf", "phi2", 1.02, 0.01),
    ], columns=COLUMNS)  # fmt: skip
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
        rows += [row(L, -4.0, 5.0, baseline, "correlation_length", xi, 0.01),
                 row(L, -4.0, 5.0, "cnf", "correlation_length", xi + 0.5, 0.02),
                 row(L, -4.0, 5.0, baseline, "susceptibility", 1.0, 0.1, tau_hmc, 0.05 * tau_hmc),
                 row(L, -4.0, 5.0, baseline, "abs_magnetization", 1.0, 0.1, tau_hmc,
                     0.05 * tau_hmc),
                 row(L, -4.0, 5.0, "cnf", "susceptibility", 1.0, 0.1, 0.6, 0.01),
                 row(L, -4.0, 5.0, "cnf", "abs_magnetization", 1.0, 0.1, 0.6, 0.01)]  # fmt: skip
        # HMC: 1 ms per trajectory; cnf: 3 ms per proposal and 100 s of training.
        samplers += [[L, -4.0, 5.0, baseline, 0.8, math.nan, math.nan, 10.0, 10000, "mcmc"],
                     [L, -4.0, 5.0, "cnf", 0.9, 0.9, 100.0, 30.0, 10000, "flow"]]  # fmt: skip
    columns = "L,s,lam,sampler,acceptance,ess,train_seconds,sample_seconds,n_samples,kind"
    return pd.DataFrame(rows, columns=COLUMNS), pd.DataFrame(samplers, columns=columns.split(","))


@pytest.mark.parametrize("baseline", ["hmc", "cluster", "anything"])
def test_scaling_costs_and_crossover(baseline):
    table = study.scaling(*scaling_inputs(baseline)).set_index(["sampler", "L"])
    assert table.loc[(baseline, 12), "seconds_per_independent"] == pytest.approx(1e-3 * 2 * 4.0)
    assert table.loc[("cnf", 6), "seconds_per_independent"] == pytest.approx(3e-3 * 2 * 0.6)
    assert table.loc[("cnf", 6), "cost_1e4"] == pytest.approx(3.6e-3 + 100.0 / 1e4)
    assert (table.loc[(baseline, 6), "cost_1e6"]
            == table.loc[(baseline, 6), "seconds_per_independent"])  # fmt: skip
    assert table.loc[("cnf", 8), "xi2"] == 2.0  # xi_2 comes from the Markov chain
    crossover = study.crossovers(table.reset_index()).set_index(["sampler", "baseline", "cost"])
    # cnf: 3.6 ms everywhere; the baseline: 2, 3.6, 8 ms: cheaper (strictly) from L = 12 on.
    assert crossover.loc[("cnf", baseline, "seconds_per_independent"), "first_L"] == 12
    assert math.isnan(crossover.loc[("cnf", baseline, "cost_1e4"), "first_L"])
    assert set(crossover.index.get_level_values("sampler")) == {"cnf"}


def test_crossover_against_each_of_several_baselines():
    observables, samplers = scaling_inputs("hmc")
    slow_obs, slow = scaling_inputs("cluster")
    slow = slow[slow["kind"] == "mcmc"].assign(sample_seconds=1000.0)  # 100x dearer
    observables = pd.concat([observables, slow_obs[slow_obs["sampler"] == "cluster"]])
    table = study.scaling(observables, pd.concat([samplers, slow], ignore_index=True))
    crossover = study.crossovers(table).set_index(["baseline", "cost"])
    assert crossover.loc[("hmc", "seconds_per_independent"), "first_L"] == 12
    assert crossover.loc[("cluster", "seconds_per_independent"), "first_L"] == 6


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
