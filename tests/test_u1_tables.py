"""A U(1) study through the gathering stages and the figures: tables in the point columns
L, beta, every plaquette and χ_t estimate pulled against the exact value, the τ_int and
cost of Q, and every figure of the registry drawn (or honestly not applicable)."""

import numpy as np
import pandas as pd
import pytest
import torch

from fieldflow import errors, io, plots, study
from fieldflow.stages.observables import observables_stage
from fieldflow.stages.sampling import mcmc_stage, sample_flow
from fieldflow.stages.tables import study_stage, tables_stage
from fieldflow.theory import PHI4, U1
from fieldflow.u1.exact import references
from fieldflow.u1.point import U1Point

STUDY_TABLES = (
    "reweighting",
    "correlators",
    "agreement",
    "scaling",
    "exponents",
    "crossover",
    "tunnelling",
    "magnetization_histograms",
)
#: (sampler, β) of the study: HMC at two couplings, an untrained gauge flow at the first.
ENSEMBLES = (("hmc", 1.0), ("hmc", 2.0), ("gauge", 1.0))


@pytest.fixture(scope="module")
def u1_study(tmp_path_factory) -> dict:
    """Two HMC ensembles and a gauge-flow ensemble at L = 4, their per-ensemble tables,
    and the gathered and study tables, all read back."""
    gauge = pytest.importorskip("fieldflow.flows.gauge")
    root = tmp_path_factory.mktemp("u1_study")
    per: dict[str, list] = {k: [] for k in ("", "reweighted", "correlator", "tunnelling", "hist")}
    stores = []
    for sampler, beta in ENSEMBLES:
        point = U1Point(4, beta)
        store = root / "ensembles" / sampler / f"{point.key}.zarr"
        if sampler == "hmc":
            settings = {"n_chains": 8, "n_trajectories": 200, "burn_in": 30}
            mcmc_stage(sampler, point, settings, seed=11, ensemble_path=store, progress=False)
        else:
            torch.manual_seed(0)
            flow = gauge.build_gauge_flow(4, n_layers=4).double().eval()
            sampling = {"n_chains": 2, "n_samples": 512, "burn_in": 16, "batch_size": 528}
            sample_flow(flow, point, sampling, seed=3, ensemble_path=store, sampler=sampler)
        stores.append(store)
        base = root / "observables" / sampler / point.key
        paths = {k: base.with_name(f"{base.name}{'.' + k if k else ''}.csv") for k in per}
        observables_stage(
            store,
            paths[""],
            reweighted_path=paths["reweighted"],
            correlator_path=paths["correlator"],
            tunnelling_path=paths["tunnelling"],
            histogram_path=paths["hist"],
        )
        for key, path in paths.items():
            per[key].append(path)
    tables = root / "tables"
    tables_stage(per[""], stores, tables / "observables.csv", tables / "samplers.csv")
    outputs = {name: tables / f"{name}.csv" for name in STUDY_TABLES}
    warnings = study_stage(
        tables / "observables.csv",
        tables / "samplers.csv",
        per["reweighted"],
        per["correlator"],
        outputs,
        tunnelling_tables=per["tunnelling"],
        histogram_tables=per["hist"],
    )
    read = {name: pd.read_csv(path) for name, path in outputs.items()}
    for name in ("observables", "samplers"):
        read[name] = pd.read_csv(tables / f"{name}.csv")
    last = io.read_ensemble(stores[0]).isel(chain=[0], draw=slice(-3, None))
    return {
        "root": root,
        "tables": read,
        "warnings": warnings,
        "per_ensemble": per,
        "stores": stores,
        "links": io.load_array(last, U1.field)[0],
    }


def test_contract_tables_have_the_u1_point_columns(u1_study):
    observables, samplers = u1_study["tables"]["observables"], u1_study["tables"]["samplers"]
    assert list(observables.columns[:3]) == ["L", "beta", "sampler"]
    assert "s" not in observables and "lam" not in samplers
    assert list(samplers.columns[:4]) == ["L", "beta", "sampler", "acceptance"]
    assert set(observables["observable"]) == set(U1.observables)
    assert len(observables) == 3 * len(ENSEMBLES) and len(samplers) == len(ENSEMBLES)
    # sorted by point, then sampler
    assert list(zip(samplers.beta, samplers.sampler, strict=True)) == [
        (1.0, "gauge"),
        (1.0, "hmc"),
        (2.0, "hmc"),
    ]
    assert dict(zip(samplers.sampler, samplers.kind, strict=False)) == {
        "gauge": "flow",
        "hmc": "mcmc",
    }


def test_every_estimate_is_pulled_against_the_exact_value(u1_study):
    agreement = u1_study["tables"]["agreement"]
    assert list(agreement.columns[:3]) == ["L", "beta", "sampler"]
    exact = agreement[agreement["reference"] == "exact"]
    # plaquette, χ_t and ⟨Q⟩ (exactly 0) of every chain (3) and of the flow's reweighting (1)
    assert len(exact) == 3 * (len(ENSEMBLES) + 1)
    assert set(exact.observable) == {
        "plaquette",
        "topological_susceptibility",
        "topological_charge",
    }
    for r in exact.itertuples():
        expected = {**references(4, r.beta), "topological_charge": 0.0}[r.observable]
        assert r.reference_value == expected
        assert r.reference_error == 0.0
        assert r.pull == pytest.approx((r.value - r.reference_value) / r.error)
        assert abs(r.pull) < 5.0, (r.sampler, r.observable, r.pull)
    assert set(agreement["reference"]) == {"exact"}


def test_costs_and_tunnelling_are_of_the_topological_charge(u1_study):
    tables = u1_study["tables"]
    scaling, observables = tables["scaling"], tables["observables"]
    assert list(scaling.columns[:8]) == [
        "L",
        "beta",
        "sampler",
        "kind",
        "tau_q",
        "tau_q_error",
        "tau_chi_t",
        "tau_chi_t_error",
    ]
    assert "xi2" not in scaling and tables["exponents"].empty
    assert list(scaling.columns[-2:]) == ["bound", "reliable"]
    tau_q = observables[observables["observable"] == "topological_charge"]
    tunnelling = tables["tunnelling"].set_index(["beta", "sampler"])
    for r in scaling.itertuples():
        (row,) = tau_q[(tau_q.sampler == r.sampler) & (tau_q.beta == r.beta)].itertuples()
        # τ_int(Q) of the Γ-method, or where no chain changed sector the bound; either
        # way the number in tunnelling.csv.
        if pd.isna(r.bound):  # "" reads back as NaN
            assert r.tau_q == row.tau_int
        assert r.tau_q == tunnelling.loc[(r.beta, r.sampler), "tau_q"]
        assert r.seconds_per_independent == pytest.approx(2 * r.tau_q * r.seconds_per_sample)
    # One L: a verdict per β where a flow and a baseline both ran (the flow only at β = 1).
    crossover = tables["crossover"]
    assert list(crossover.columns) == ["beta", *study.CROSSOVER_COLUMNS]
    assert set(crossover["baseline"]) == {"hmc"} and set(crossover["beta"]) == {1.0}
    tunnelling = tables["tunnelling"]
    assert list(tunnelling.columns[:3]) == ["L", "beta", "sampler"]
    assert {"tau_q", "charge", "seconds_per_independent_q"} <= set(tunnelling.columns)
    assert "magnetization" not in tunnelling and len(tunnelling) == len(ENSEMBLES)
    assert np.isfinite(tunnelling["pull"]).all()
    assert tables["correlators"].empty and list(tables["correlators"].columns[:2]) == ["L", "beta"]
    histograms = tables["magnetization_histograms"]
    assert list(histograms.columns[:3]) == ["L", "beta", "sampler"]
    assert not histograms.empty


def test_every_figure_draws_for_a_u1_study(u1_study, tmp_path):
    tables = u1_study["tables"]
    inputs = {
        **tables,
        "histories": {},
        "ensembles": {"hmc L4_beta1": u1_study["links"]},
        "anchors": plots.load_anchors(),
        "free_energy": pd.DataFrame(columns=["L", "beta", "sampler"]),
    }
    theory = study.theory_of(tables["observables"]).name
    assert theory == "u1"
    names = plots.figure_names()
    assert {"correlators", "scaling", "free_energy"} <= set(names) - set(
        plots.figure_names(theory=theory)
    )
    for name in names:
        if name == "transfer":
            continue
        png, pdf = plots.save_figure(plots.draw(name, inputs, theory), tmp_path / name)
        assert png.stat().st_size > 0 and pdf.stat().st_size > 0, name
    # U(1) labels: β on the axis of the cost and tunnelling figures, the symbols in panels
    tunnelling = plots.tunnelling(tables["tunnelling"]).axes[0]
    assert tunnelling.get_xlabel() == "β" and "Q" in tunnelling.get_ylabel()
    assert plots.cost_per_sample(tables["scaling"], tables["crossover"]).axes[0].get_xlabel() == (
        "β"
    )
    titles = [ax.get_title() for ax in plots.observables_comparison(tables["observables"]).axes]
    assert r"plaquette $\langle\cos\theta_P\rangle$" in titles
    ticks = plots.tau_int(tables["observables"]).axes[0].get_xticklabels()
    assert [t.get_text() for t in ticks] == ["L=4 β=1", "L=4 β=2"]
    skipped = plots.draw("correlators", inputs, theory).axes[0].texts[0].get_text()
    assert "not applicable" in skipped and "u1" in skipped


def test_a_study_of_two_theories_is_refused(u1_study, tmp_path):
    phi4 = u1_study["per_ensemble"][""][0].with_name("phi4.csv")
    frame = pd.read_csv(u1_study["per_ensemble"][""][0]).rename(columns={"beta": "s"})
    frame.insert(2, "lam", 0.0)
    frame.to_csv(phi4, index=False)
    tables = [*u1_study["per_ensemble"][""], phi4]
    with pytest.raises(errors.ResultFileError, match=r"one theory.*phi4\.csv \(phi4\)"):
        tables_stage(tables, [], tmp_path / "o.csv", tmp_path / "s.csv")
    with pytest.raises(errors.ResultFileError, match="is not of one theory"):
        study.theory_of_columns(["L", "s", "lam", "beta", "sampler"])
    assert study.theory_of_columns(["L", "beta", "sampler"]) is U1
    assert study.theory_of_columns(["sampler", "L", "lam", "s"]) is PHI4


def test_the_exact_figure_draws_the_theorys_exact_values(u1_study):
    observables = u1_study["tables"]["observables"]
    fig = plots.exact_comparison(observables)
    panels = {ax.get_title(): ax for ax in fig.axes if ax.get_title()}
    # a panel per observable with an exact value (plaquette, χ_t, ⟨Q⟩ = 0), a bar per β
    assert len(panels) == 3
    plaquette = panels[r"plaquette $\langle\cos\theta_P\rangle$"]
    bars = [c for c in plaquette.collections if c.get_label() == "exact"]
    levels = sorted(seg[0][1] for bar in bars for seg in bar.get_segments())
    assert levels == pytest.approx(
        [references(4, 1.0)["plaquette"], references(4, 2.0)["plaquette"]]
    )
    # a φ⁴ study away from λ = 0 has none, and says so; every figure applies to φ⁴
    phi4 = observables.rename(columns={"beta": "s"}).assign(lam=6.0)
    phi4 = phi4[["L", "s", "lam", *observables.columns[2:]]]
    note = plots.exact_comparison(phi4).axes[0].texts[0].get_text()
    assert note == "no exact values at the points of this phi4 study"
    assert plots.figure_names(theory="phi4") == plots.figure_names()
    assert plots.point_label({"L": 8, "beta": 2.5}) == "L=8 β=2.5"
    assert plots.point_label({"L": 8, "s": -4.0, "lam": 6.975}) == "L=8 s=-4 λ=6.975"


def test_free_energy_of_a_gauge_flow_is_pulled_against_the_exact_log_z(u1_study, tmp_path):
    from fieldflow.stages.free_energy import free_energy_stage

    flows = [store for store in u1_study["stores"] if store.parent.name == "gauge"]
    table = free_energy_stage(flows, {}, {}, "hmc", tmp_path / "free_energy.csv")
    assert list(table.columns[:5]) == ["L", "beta", "sampler", "method", "log_Z"]
    [row] = table.itertuples()
    exact = U1.log_z(U1Point(4, 1.0))
    assert row.pull == pytest.approx((row.log_Z - exact) / row.error)
    assert row.f == pytest.approx(-row.log_Z / 16)
