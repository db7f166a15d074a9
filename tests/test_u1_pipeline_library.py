"""A U(1) point through the library's pipeline: ensembles on disk, observables, quality and
tunnelling per theory, against fieldflow.u1.exact; the φ⁴ store keeps its contract."""

import math

import numpy as np
import pandas as pd
import pytest
import torch

from fieldflow import analysis, io, primaries, quality, tunnelling
from fieldflow.stages.observables import OBSERVABLE_COLUMNS, observables_stage
from fieldflow.stages.sampling import mcmc_stage, sample_flow
from fieldflow.theory import PHI4, U1
from fieldflow.u1.exact import references
from fieldflow.u1.lattice import plaquette
from fieldflow.u1.point import U1Point

U1_ROWS = ["plaquette", "topological_susceptibility", "topological_charge"]
U1_COLUMNS = ["L", "beta", *OBSERVABLE_COLUMNS[3:]]


def stage_outputs(store, tmp_path) -> dict[str, pd.DataFrame]:
    """Every output of :func:`observables_stage` of ``store``, read back."""
    names = ("table", "reweighted", "correlator", "tunnelling", "histogram")
    paths = {name: tmp_path / f"{name}.csv" for name in names}
    observables_stage(
        store,
        paths["table"],
        reweighted_path=paths["reweighted"],
        correlator_path=paths["correlator"],
        tunnelling_path=paths["tunnelling"],
        histogram_path=paths["histogram"],
    )
    return {name: pd.read_csv(path) for name, path in paths.items()}


def assert_exact(table: pd.DataFrame, beta: float, L: int = 4) -> None:
    """Plaquette and χ_t within 4σ of the exact values, ⟨Q⟩ within 4σ of 0."""
    exact = {**references(L, beta), "topological_charge": 0.0}
    rows = table.set_index("observable")
    for name, value in exact.items():
        row = rows.loc[name]
        assert row.error > 0 and math.isfinite(row.tau_int) and row.tau_int > 0.3
        assert abs(row.value - value) < 4 * row.error, (name, row.value, value, row.error)


def test_u1_hmc_ensemble_on_disk_and_its_table(tmp_path):
    store = tmp_path / "hmc" / "L4_beta1.zarr"
    settings = {"n_chains": 12, "n_trajectories": 300, "burn_in": 50}
    mcmc_stage("hmc", U1Point(4, 1.0), settings, seed=7, ensemble_path=store, progress=False)

    dataset = io.read_ensemble(store)
    assert set(dataset.data_vars) == {"links", "action", "accepted"}
    assert dataset["links"].dims == ("chain", "draw", "mu", "x", "y")
    assert dataset["links"].shape == (12, 300, 2, 4, 4) and dataset["links"].dtype == np.float32
    attrs = dataset.attrs
    assert (attrs["L"], attrs["beta"], attrs["theory"]) == (4, 1.0, "u1")
    assert "s" not in attrs and "lam" not in attrs and attrs["kind"] == "mcmc"
    assert io.theory_of(dataset) is U1
    # primaries read chunk by chunk are the theory's, in float64, with integer charges
    stored = primaries.stored_primaries(dataset)
    links = torch.from_numpy(io.load_array(dataset, "links").reshape(-1, 2, 4, 4)).double()
    for name, values in U1.primaries(links).items():
        np.testing.assert_array_equal(stored[name], values.numpy().reshape(12, 300))
    np.testing.assert_allclose(stored["charge"], np.rint(stored["charge"]), atol=1e-4)

    out = stage_outputs(store, tmp_path)
    table = out["table"]
    assert list(table.columns) == U1_COLUMNS and list(table.observable) == U1_ROWS
    assert (table.sampler == "hmc").all() and (table.n_samples == 3600).all()
    assert table.reliable.all()
    assert_exact(table, beta=1.0)
    # The plaquette's error carries the tail of Q's slow mode (analysis.with_slow_mode).
    plain = analysis.observables(stored, 4, theory=U1)
    tailed = analysis.with_slow_mode(stored, 4, 2.0, U1, plain)["plaquette"]
    row = table.set_index("observable").loc["plaquette"]
    assert row["error"] == pytest.approx(tailed.error) and row["tau_int"] == pytest.approx(
        tailed.tau_int
    )
    assert tailed.error >= plain["plaquette"].error
    assert out["reweighted"].empty and list(out["reweighted"].columns) == U1_COLUMNS
    assert out["correlator"].empty and list(out["correlator"].columns)[:3] == [
        "L",
        "beta",
        "sampler",
    ]
    (crossing,) = out["tunnelling"].to_dict("records")
    assert crossing["threshold"] == 0.5 and crossing["crossings"] > 100
    assert crossing["crossings"] == tunnelling.sector_changes(stored["charge"])[1].sum()
    assert list(out["histogram"].columns)[:3] == ["L", "beta", "sampler"]


def test_u1_flow_ensemble_reweights_exactly(tmp_path):
    """An untrained gauge flow at β = 0.5 (ESS ≈ 0.16): its Metropolis chain and the
    reweighted raw proposals both reproduce the exact values; the reweighted means are
    Σ w O / Σ w of the stored arrays."""
    gauge = pytest.importorskip("fieldflow.flows.gauge")
    torch.manual_seed(0)
    flow = gauge.build_gauge_flow(4, n_layers=4).double().eval()
    point, store = U1Point(4, 0.5), tmp_path / "gauge.zarr"
    sampling = {"n_chains": 2, "n_samples": 1024, "burn_in": 16, "batch_size": 520}
    sample_flow(flow, point, sampling, seed=3, ensemble_path=store, sampler="gauge")

    dataset = io.read_ensemble(store)
    assert dataset["links"].shape == (2, 1024, 2, 4, 4)
    proposal_names = {"log_weight", "plaquette", "charge", "charge2"}
    assert {n for n in dataset.data_vars if n.startswith("proposal_")} == {
        f"proposal_{n}" for n in proposal_names
    }
    assert dataset.attrs["kind"] == "flow" and dataset.attrs["precision"] == "float64"
    # the chain's states carry their own weights, w = exp(−S − log q)
    action, log_q, log_w = (io.load_array(dataset, n) for n in ("action", "log_q", "log_weight"))
    np.testing.assert_allclose(log_w, -action - log_q, rtol=0, atol=1e-9)

    out = stage_outputs(store, tmp_path)
    for name in ("table", "reweighted"):
        assert list(out[name].columns) == U1_COLUMNS and list(out[name].observable) == U1_ROWS
        assert out[name].reliable.all(), out[name].reason.tolist()
        assert_exact(out[name], beta=0.5)
    log_w, raw = primaries.stored_proposals(dataset)
    w = np.exp(log_w - log_w.max())
    by_hand = {
        "plaquette": (w * raw["plaquette"]).sum() / w.sum(),
        "topological_susceptibility": (w * raw["charge2"]).sum() / w.sum() / 16,
        "topological_charge": (w * raw["charge"]).sum() / w.sum(),
    }
    rows = out["reweighted"].set_index("observable")
    for name, value in by_hand.items():
        assert rows.loc[name].value == pytest.approx(value, rel=1e-12, abs=1e-15)


def test_reweighting_by_theory_is_the_weighted_mean():
    rng = np.random.default_rng(1)
    raw = {
        "plaquette": rng.random((2, 50)),
        "charge": rng.integers(-2, 3, (2, 50)).astype(np.float64),
    }
    raw["charge2"] = raw["charge"] ** 2
    log_w = rng.normal(size=(2, 50))
    found = analysis.observables(raw, 3, log_weights=log_w, theory=U1)
    w = np.exp(log_w)
    assert list(found) == U1_ROWS
    chi = (w * raw["charge2"]).sum() / w.sum() / 9
    assert found["topological_susceptibility"].value == pytest.approx(chi, rel=1e-12)
    plain = analysis.observables(raw, 3, theory=U1)
    assert plain["topological_charge"].value == pytest.approx(raw["charge"].mean(), rel=1e-12)


def test_chains_stuck_in_one_sector_flag_chi_t(tmp_path):
    """Every chain keeps one charge (a configuration of HMC at β = 1, jittered): χ_t is
    flagged, naming the topological sector, and nothing tunnels."""
    rng = np.random.default_rng(2)
    sample = tmp_path / "sample.zarr"
    settings = {"n_chains": 8, "n_trajectories": 20, "burn_in": 20}
    mcmc_stage("hmc", U1Point(4, 1.0), settings, seed=1, ensemble_path=sample, progress=False)
    links = io.load_array(sample, "links").reshape(-1, 2, 4, 4)
    as_tensor = torch.from_numpy(links).double()
    charges = np.rint(U1.primaries(as_tensor)["charge"].numpy())
    inside = plaquette(as_tensor).abs().amax(dim=(1, 2)).numpy() < math.pi - 0.1
    picks = [int(np.flatnonzero((charges == q) & inside)[0]) for q in (-1, 0, 1, 1)]
    # a small jitter moves none of their plaquettes across ±π, so no chain changes Q
    frozen = links[picks][:, None] + 0.002 * rng.standard_normal((4, 64, 2, 4, 4))
    attrs = {"L": 4, "beta": 1.0, "theory": "u1", "sampler": "hmc", "seed": 0}
    dataset = io.ensemble_dataset(
        frozen.astype(np.float32), {}, {**attrs, "kind": "mcmc", "versions": io.versions()}
    )
    store = tmp_path / "stuck.zarr"
    io.write_ensemble(store, dataset)
    assert (
        np.unique(np.rint(primaries.stored_primaries(io.read_ensemble(store))["charge"])).size == 3
    )

    out = stage_outputs(store, tmp_path)
    chi = out["table"].set_index("observable").loc["topological_susceptibility"]
    assert not chi.reliable
    assert "Q never changed topological sector within any of the 4 chains" in chi.reason
    # Q is rounded in the primaries: every chain is constant, and its τ_int(Q) is no
    # estimate at all (not pyerrors' ½ with error 0, nor ½ of the rounding noise).
    charge = out["table"].set_index("observable").loc["topological_charge"]
    assert math.isnan(charge.tau_int) and math.isnan(charge.error) and not charge.reliable
    assert out["tunnelling"].crossings.item() == 0 and out["tunnelling"].bound.item() == "lower"


def test_sector_problems_in_the_theorys_words():
    order = U1.order_parameter
    moving = np.tile([0.0, 1.0, 0.0, -1.0], (4, 25))
    assert quality.chain_problems(400, magnetization=moving, order=order) == []
    zero = np.zeros((4, 100)) + 1e-6
    assert quality.chain_problems(400, magnetization=zero, order=order) == [
        "Q never changed topological sector"
    ]
    half = moving.copy()
    half[:3] = 2.0
    assert quality.chain_problems(400, magnetization=half, order=order) == [
        "Q never changed topological sector within 3 of the 4 chains"
    ]
    # φ⁴'s words are unchanged, and the default
    assert quality.chain_problems(400, magnetization=-np.ones((4, 100))) == ["M never changed sign"]
    assert PHI4.order_parameter.primary == "m" and order.primary == "charge"


def test_sector_changes_count_integer_moves():
    q = np.array([[0.0, 1e-5, 1.0, 1.0, -1.0, -1.0], [2.0, 2.0, 2.0, 2.0, 2.0, 2.0 - 1e-5]])
    threshold, counts = tunnelling.sector_changes(q)
    assert threshold == 0.5 and counts.tolist() == [2, 0]
    found = tunnelling.tunnelling(q, count=U1.order_parameter.count)
    assert found.crossings == 2 and found.threshold == 0.5
    # φ⁴'s count is the band-crossing one, as before
    m = np.array([[-1.0, 1.0, -1.0, 0.1]])
    assert PHI4.order_parameter.count(m)[1].tolist() == [2]
    assert tunnelling.tunnelling(m).per_chain == (2,)


def test_phi4_store_keeps_its_contract(tmp_path):
    store = tmp_path / "phi4.zarr"
    point = {"L": 4, "s": -4.0, "lam": 8.0}
    settings = {"n_chains": 2, "n_trajectories": 30, "burn_in": 10}
    mcmc_stage("hmc", point, settings, seed=2, ensemble_path=store, progress=False)
    dataset = io.read_ensemble(store)
    assert set(dataset.data_vars) == {"phi", "action", "accepted"}
    assert dataset["phi"].dims == ("chain", "draw", "x", "y")
    assert dataset["phi"].dtype == np.float32 and dataset["phi"].shape == (2, 30, 4, 4)
    assert dataset["action"].dtype == np.float64 and dataset["accepted"].dtype == bool
    attrs = dataset.attrs
    assert set(io.REQUIRED_ATTRS) | {"kind", "theory"} <= set(attrs) and "beta" not in attrs
    assert (attrs["L"], attrs["s"], attrs["lam"], attrs["theory"]) == (4, -4.0, 8.0, "phi4")
    assert attrs["sampler"] == "hmc" and attrs["kind"] == "mcmc" and attrs["seed"] == 2
    assert attrs["primaries_version"] == PHI4.primaries_version
    table = stage_outputs(store, tmp_path)["table"]
    assert list(table.columns) == OBSERVABLE_COLUMNS
    assert list(table.observable) == list(PHI4.observables)


def set_theory(store, name: str) -> None:
    """Change a finished store's ``theory`` attr, consolidated metadata included."""
    import warnings

    import zarr

    zarr.open_group(store, mode="r+").attrs["theory"] = name
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        zarr.consolidate_metadata(store)


def test_stores_name_their_theory(tmp_path):
    phi = np.random.default_rng(0).normal(size=(2, 4, 4, 4)).astype(np.float32)
    attrs = {"L": 4, "s": -4.0, "lam": 8.0, "sampler": "hmc", "seed": 0, "versions": "{}"}
    old = tmp_path / "old.zarr"  # written before there were theories: no attr, φ⁴
    io.write_ensemble(old, io.ensemble_dataset(phi, {}, attrs))
    assert io.theory_of(io.read_ensemble(old)) is PHI4
    with pytest.raises(ValueError, match=r"links must have shape \(chain, draw, mu, x, y\)"):
        io.ensemble_dataset(phi, {}, {**attrs, "theory": "u1"})
    with pytest.raises(ValueError, match=r"attrs lack \['beta'\]"):
        io.ensemble_dataset(phi[:, :, None].repeat(2, 2), {}, {**attrs, "theory": "u1"})
    with pytest.raises(ValueError, match="unknown theory 'su2'"):
        io.ensemble_dataset(phi, {}, {**attrs, "theory": "su2"})
    set_theory(old, "u1")
    with pytest.raises(io.EnsembleError, match=r"old.zarr has no links\(chain, draw, mu, x, y\)"):
        io.read_ensemble(old)
    set_theory(old, "su2")
    with pytest.raises(io.EnsembleError, match=r"old.zarr: unknown theory 'su2'"):
        io.read_ensemble(old)


def test_mcmc_stage_refuses_a_sampler_of_another_theory(tmp_path):
    store = tmp_path / "cluster.zarr"
    settings = {"n_chains": 2, "n_trajectories": 4, "burn_in": 2}
    with pytest.raises(ValueError, match="cluster does not sample u1 points such as L4_beta1"):
        mcmc_stage("cluster", U1Point(4, 1.0), settings, seed=0, ensemble_path=store)
    assert not store.exists()
