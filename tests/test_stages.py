import math

import pandas as pd
import pytest
import torch

from fieldflow.config import ConfigError
from fieldflow.errors import ResultFileError
from fieldflow.flows import ModelFileError, load_model
from fieldflow.reader import ModelRecord
from fieldflow.stages import resolve_device, train_stage

TRAINING = {"steps": 20, "ess_every": 10, "ess_samples": 64, "batch_size": 16}


def test_train_stage_with_transfer(tmp_path):
    small = {"L": 4, "s": -4.0, "lam": 8.0}
    hyper = {"n_layers": 2, "hidden_channels": [4]}
    train_stage(
        small,
        "realnvp",
        hyper,
        TRAINING,
        "cpu",
        0,
        tmp_path / "a.pt",
        tmp_path / "a.csv",
        progress=False,
    )
    large = {"L": 6, "s": -4.0, "lam": 6.975}
    train_stage(
        large,
        "realnvp",
        hyper,
        {**TRAINING, "steps": 1},
        "cpu",
        0,
        tmp_path / "b.pt",
        tmp_path / "b.csv",
        init_model=tmp_path / "a.pt",
        progress=False,
    )
    a, _ = load_model(tmp_path / "a.pt")
    b, meta = load_model(tmp_path / "b.pt")
    assert b.L == 6 and ModelRecord.of(meta).train_steps == 1
    # One Adam step of size 1e-3 moves every weight by at most ~1e-3.
    for x, y in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.allclose(x, y, atol=2e-3)
    assert list(pd.read_csv(tmp_path / "b.csv").columns) == ["step", "seconds", "loss", "ess"]
    with pytest.raises(ModelFileError, match="not cnf"):
        train_stage(
            large,
            "cnf",
            {},
            TRAINING,
            "cpu",
            0,
            tmp_path / "c.pt",
            tmp_path / "c.csv",
            init_model=tmp_path / "a.pt",
            progress=False,
        )


def test_resolve_device():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type in ("cpu", "cuda")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA"):
            resolve_device("cuda")


@pytest.mark.parametrize("family", ["realnvp", "nsf", "cnf"])
@pytest.mark.parametrize("precision", ["float32", "float64"])
def test_sampled_log_q_matches_float64_density_of_stored_phi(tmp_path, family, precision):
    """Whatever dtype the flow samples in, the stored log q is that of the stored φ."""
    from fieldflow.flows import build_flow, save_model
    from fieldflow.io import load_phi, read_ensemble
    from fieldflow.stages import sample_flow_stage

    torch.manual_seed(1)
    flow = build_flow(family, 4, {})
    with torch.no_grad():  # random weights, away from the identity
        for p in flow.parameters():
            p.add_(0.05 * torch.randn_like(p))
    save_model(tmp_path / "m.pt", flow, family, {}, train_seconds=0.0, train_steps=0)
    sampling = {
        "n_chains": 2,
        "n_samples": 64,
        "burn_in": 0,
        "batch_size": 32,
        "precision": precision,
    }
    sample_flow_stage(
        tmp_path / "m.pt",
        {"L": 4, "s": -4.0, "lam": 8.0},
        sampling,
        "cpu",
        3,
        tmp_path / "e.zarr",
        family,
    )
    ds = read_ensemble(tmp_path / "e.zarr")
    assert ds.attrs["precision"] == precision
    assert 0 < ds.attrs["seconds_per_update"] < ds.attrs["sample_seconds"]
    assert math.isfinite(ds.attrs["seconds_per_update_error"])
    phi = torch.from_numpy(load_phi(tmp_path / "e.zarr").reshape(-1, 4, 4)).double()
    with torch.no_grad():
        exact = flow.double().log_prob(phi).numpy()
    stored = ds["log_q"].values.reshape(-1)
    tolerance = 1e-3 if precision == "float32" else 1e-6
    if family == "cnf":  # backward RK4 is not the exact inverse of forward RK4
        tolerance = max(tolerance, 1e-3)
    assert abs(stored - exact).max() < tolerance


def test_sample_flow_stage_streams_the_ensemble_of_all_proposals_at_once(tmp_path, monkeypatch):
    """Batch by batch, chains carried across batches (which straddle chains), the stage
    writes what drawing every proposal first and then running the chains gives."""
    import numpy as np

    from fieldflow import analysis, io, primaries, stages
    from fieldflow.flows import build_flow, save_model
    from fieldflow.lattice import Point
    from fieldflow.mcmc import flow_proposals, independence_metropolis

    monkeypatch.setattr(io, "MAX_CHUNK_VALUES", 64)  # L = 4: φ in chunks of 4 draws
    torch.manual_seed(1)
    hyperparameters = {"n_layers": 2, "hidden_channels": [4]}
    flow = build_flow("realnvp", 4, hyperparameters)
    with torch.no_grad():  # random weights, away from the identity
        for p in flow.parameters():
            p.add_(0.05 * torch.randn_like(p))
    save_model(
        tmp_path / "m.pt", flow, "realnvp", hyperparameters, train_seconds=0.0, train_steps=0
    )
    n_chains, n_keep, burn_in = 3, 20, 5
    sampling = {
        "n_chains": n_chains,
        "n_samples": n_keep,
        "burn_in": burn_in,
        "batch_size": 7,
        "precision": "float64",
    }
    seen = []
    ensemble_primaries = primaries.ensemble_primaries

    def counting(phi, *args, **kwargs):
        seen.append(phi.shape[0] * phi.shape[1])
        return ensemble_primaries(phi, *args, **kwargs)

    monkeypatch.setattr(primaries, "ensemble_primaries", counting)
    stages.sample_flow_stage(
        tmp_path / "m.pt",
        {"L": 4, "s": -4.0, "lam": 8.0},
        sampling,
        "cpu",
        3,
        tmp_path / "e.zarr",
        "realnvp",
    )
    assert max(seen) <= 7  # the primaries of one batch of proposals at a time
    stored = io.read_ensemble(tmp_path / "e.zarr")

    per_chain = n_keep + burn_in
    flow = flow.double()
    proposals = flow_proposals(
        flow, Point(4, -4.0, 8.0), n_chains * per_chain, 7, torch.Generator().manual_seed(3)
    )
    log_w = proposals.log_weight.reshape(n_chains, per_chain)
    chain = independence_metropolis(log_w, np.random.default_rng(3))
    flat = chain.index[:, burn_in:] + (np.arange(n_chains) * per_chain)[:, None]
    expected = {
        "phi": proposals.phi[flat],
        "action": proposals.action[flat],
        "log_q": proposals.log_q[flat],
        "log_weight": proposals.log_weight[flat],
        "accepted": chain.accepted[:, burn_in:],
        "proposal_log_weight": log_w,
        **{
            f"proposal_{k}": v
            for k, v in ensemble_primaries(proposals.phi.reshape(n_chains, per_chain, 4, 4)).items()
        },
    }
    assert set(stored.data_vars) == set(expected)
    for name, values in expected.items():
        np.testing.assert_array_equal(io.load_array(stored, name), values, err_msg=name)
    assert stored.attrs["acceptance"] == chain.accepted[:, burn_in:].mean()
    assert stored.attrs["ess"] == analysis.ess(proposals.log_weight)
    assert stored.attrs["n_proposals"] == n_chains * per_chain


def test_tables_stage_names_observables_written_before_the_quality_gate(tmp_path):
    from fieldflow.stages import tables_stage

    old = tmp_path / "old.csv"
    old.write_text(
        "L,s,lam,sampler,observable,value,error,tau_int,tau_int_error,n_samples\n"
        "4,-4.0,8.0,hmc,phi2,1.0,0.1,0.5,0.1,60\n"
    )
    lacks = r"old.csv lacks the columns \['reliable', 'reason'\]"
    with pytest.raises(ResultFileError, match=lacks):
        tables_stage([old], [], tmp_path / "o.csv", tmp_path / "s.csv")


def test_train_stage_removes_its_checkpoint_and_empty_checkpoint_directories(tmp_path):
    results = tmp_path / "results"
    checkpoint = results / "checkpoints" / "realnvp" / "L4.pt"
    training = {**TRAINING, "steps": 2, "ess_every": 2, "checkpoint_every": 1}
    train_stage(
        {"L": 4, "s": -4.0, "lam": 8.0},
        "realnvp",
        {"n_layers": 2, "hidden_channels": [4]},
        training,
        "cpu",
        0,
        results / "models" / "m.pt",
        results / "h.csv",
        checkpoint=checkpoint,
        progress=False,
    )
    assert sorted(p.name for p in results.iterdir()) == ["h.csv", "models"]


def flow_ensemble(path):
    """A small flow-like ensemble with per-proposal arrays, written by io.write_ensemble."""
    import numpy as np

    from fieldflow import io
    from fieldflow.primaries import ensemble_primaries

    rng = np.random.default_rng(0)
    phi = rng.normal(size=(2, 32, 4, 4)).astype(np.float32)
    attrs = {
        "L": 4,
        "s": -4.0,
        "lam": 8.0,
        "sampler": "realnvp",
        "seed": 0,
        "versions": "{}",
        "kind": "flow",
        "ess": 0.9,
        "n_proposals": 64,
    }
    per_proposal = {"log_weight": 0.1 * rng.normal(size=(2, 32)), **ensemble_primaries(phi)}
    per_draw = {"accepted": rng.random((2, 32)) < 0.5}
    io.write_ensemble(path, io.ensemble_dataset(phi, per_draw, attrs, per_proposal))


@pytest.mark.parametrize(
    ("name", "damage", "message"),
    [
        ("phi", "flip", "cannot read array 'phi'"),
        ("accepted", "flip", "cannot read array 'accepted'"),
        ("proposal_log_weight", "flip", "cannot read array 'proposal_log_weight'"),
        ("phi", "delete", "array 'phi' lacks 1 of its 2 chunks"),
        ("proposal_m2", "delete", "array 'proposal_m2' lacks 1 of its 2 chunks"),
    ],
)
def test_observables_stage_reports_a_damaged_chunk(tmp_path, name, damage, message):
    from fieldflow.io import EnsembleError
    from fieldflow.stages import observables_stage

    store = tmp_path / "e.zarr"
    flow_ensemble(store)
    tables = {"table_path": tmp_path / "o.csv", "reweighted_path": tmp_path / "r.csv"}
    observables_stage(store, **tables)  # intact: runs
    chunk = sorted(p for p in (store / name / "c").rglob("*") if p.is_file())[-1]
    if damage == "flip":
        raw = bytearray(chunk.read_bytes())
        raw[len(raw) // 2] ^= 0x04
        chunk.write_bytes(raw)
    else:
        chunk.unlink()
    with pytest.raises(EnsembleError, match=rf"e\.zarr: {message}"):
        observables_stage(store, **tables)


def test_observables_stage_writes_tunnelling_and_histogram(tmp_path):
    import numpy as np

    from fieldflow.stages import observables_stage
    from fieldflow.stages.observables import HISTOGRAM_COLUMNS, TUNNELLING_COLUMNS

    store = tmp_path / "e.zarr"
    flow_ensemble(store)
    paths = {
        name: tmp_path / f"{name}.csv"
        for name in ("table", "reweighted", "tunnelling", "histogram")
    }
    observables_stage(
        store,
        paths["table"],
        reweighted_path=paths["reweighted"],
        tunnelling_path=paths["tunnelling"],
        histogram_path=paths["histogram"],
    )
    table = pd.read_csv(paths["table"]).set_index("observable")
    assert np.isfinite(table.loc["magnetization", ["value", "error", "tau_int"]]).all()
    assert np.isfinite(
        pd.read_csv(paths["reweighted"]).set_index("observable").loc["magnetization", "value"]
    )
    (row,) = pd.read_csv(paths["tunnelling"]).to_dict("records")
    assert list(pd.read_csv(paths["tunnelling"]).columns) == TUNNELLING_COLUMNS
    # Independent Gaussian fields: M changes side often; no timing in this ensemble.
    assert row["sampler"] == "realnvp" and (row["n_chains"], row["n_draws"]) == (2, 32)
    assert row["crossings"] > 5 and row["threshold"] > 0 and math.isnan(row["per_second"])
    assert row["tunnel_updates"] == pytest.approx(64 / row["crossings"])
    histogram = pd.read_csv(paths["histogram"])
    assert list(histogram.columns) == HISTOGRAM_COLUMNS and len(histogram) == 60
    width = histogram["bin_high"] - histogram["bin_low"]
    assert (histogram["density"] * width).sum() == pytest.approx(1.0)
    assert histogram["bin_low"].iloc[0] == -histogram["bin_high"].iloc[-1]
    assert histogram["bin_high"].iloc[-1] % 0.25 == 0


def test_observables_stage_on_an_ensemble_stored_before_magnetization(tmp_path):
    """Raw proposals stored without M: the reweighted magnetization is NaN, not an error."""
    import numpy as np

    from fieldflow import io
    from fieldflow.primaries import ensemble_primaries
    from fieldflow.stages import observables_stage

    rng = np.random.default_rng(0)
    phi = rng.normal(size=(2, 32, 4, 4)).astype(np.float32)
    attrs = {
        "L": 4,
        "s": -4.0,
        "lam": 8.0,
        "sampler": "realnvp",
        "seed": 0,
        "versions": "{}",
        "kind": "flow",
        "ess": 0.9,
        "n_proposals": 64,
    }
    primaries = ensemble_primaries(phi)
    del primaries["m"]
    per_proposal = {"log_weight": 0.1 * rng.normal(size=(2, 32)), **primaries}
    io.write_ensemble(
        tmp_path / "e.zarr",
        io.ensemble_dataset(phi, {"accepted": rng.random((2, 32)) < 0.5}, attrs, per_proposal),
    )
    observables_stage(tmp_path / "e.zarr", tmp_path / "o.csv", reweighted_path=tmp_path / "r.csv")
    reweighted = pd.read_csv(tmp_path / "r.csv").set_index("observable")
    assert math.isnan(reweighted.loc["magnetization", "value"])
    assert not reweighted.loc["magnetization", "reliable"]
    assert reweighted.loc["magnetization", "reason"].endswith("no estimate")
    assert np.isfinite(reweighted.loc["susceptibility", "value"])
    chain = pd.read_csv(tmp_path / "o.csv").set_index("observable")
    assert np.isfinite(chain.loc["magnetization", "value"])


def test_observables_stage_reads_phi_one_chunk_at_a_time(tmp_path, monkeypatch):
    """Streamed primaries equal those of the whole array; no read holds more than a chunk."""
    import numpy as np

    from fieldflow import analysis, io, primaries, reader, stages

    monkeypatch.setattr(io, "MAX_CHUNK_VALUES", 64)  # L = 4: chunks of 4 draws
    store = tmp_path / "e.zarr"
    flow_ensemble(store)
    phi = io.load_phi(store)
    whole = primaries.ensemble_primaries(phi)
    streamed = primaries.stored_primaries(io.read_ensemble(store))
    assert streamed.keys() == whole.keys()
    for name in whole:
        np.testing.assert_array_equal(streamed[name], whole[name], err_msg=name)

    seen = []

    def counting(phi, *args, **kwargs):
        seen.append(phi.shape[0] * phi.shape[1])
        return ensemble_primaries(phi, *args, **kwargs)

    def load_array(source, name):
        assert name != "phi", "the observables stage loaded the whole of phi"
        return reader_load_array(source, name)

    ensemble_primaries, reader_load_array = primaries.ensemble_primaries, reader.load_array
    monkeypatch.setattr(primaries, "ensemble_primaries", counting)
    monkeypatch.setattr(reader, "load_array", load_array)
    stages.observables_stage(store, tmp_path / "o.csv", reweighted_path=tmp_path / "r.csv")
    assert max(seen) == 4 and sum(seen) == phi.shape[0] * phi.shape[1]
    table = pd.read_csv(tmp_path / "o.csv").set_index("observable")
    for name, estimate in analysis.observables(whole, 4).items():
        assert table.loc[name, "value"] == pytest.approx(estimate.value, rel=1e-12, nan_ok=True)
        assert table.loc[name, "error"] == pytest.approx(estimate.error, rel=1e-12, nan_ok=True)


def test_a_thinned_chain_counts_tau_int_and_crossings_in_updates(tmp_path):
    """The same stored draws, once as every update and once as every 4th: τ_int and the
    tunnel time in updates scale by 4, the crossings per 1000 updates by 1/4."""
    import numpy as np

    from fieldflow import io
    from fieldflow.stages import observables_stage

    rng = np.random.default_rng(3)
    signs = np.repeat(rng.choice([-1.0, 1.0], size=(2, 50)), 8, axis=1)  # flips every ~16
    phi = 0.7 * signs[..., None, None] + 0.1 * rng.normal(size=(2, 400, 4, 4))
    tables = {}
    for thin in (1, 4):
        attrs = {
            "L": 4,
            "s": -4.0,
            "lam": 3.0,
            "sampler": "hmc",
            "seed": 0,
            "versions": "{}",
            "kind": "mcmc",
            "thin": thin,
            "seconds_per_update": 1e-3,
        }
        store = tmp_path / f"thin{thin}.zarr"
        io.write_ensemble(store, io.ensemble_dataset(phi.astype(np.float32), {}, attrs))
        observables_stage(
            store, tmp_path / f"o{thin}.csv", tunnelling_path=tmp_path / f"t{thin}.csv"
        )
        tables[thin] = (
            pd.read_csv(tmp_path / f"o{thin}.csv").set_index("observable"),
            pd.read_csv(tmp_path / f"t{thin}.csv").iloc[0],
        )
    (o1, t1), (o4, t4) = tables[1], tables[4]
    np.testing.assert_allclose(o4["tau_int"], 4 * o1["tau_int"])
    np.testing.assert_allclose(o4["tau_int_error"], 4 * o1["tau_int_error"])
    np.testing.assert_array_equal(o4["value"], o1["value"])
    assert t4["crossings"] == t1["crossings"] > 20 and t4["thin"] == 4
    assert t4["per_1000_updates"] == pytest.approx(t1["per_1000_updates"] / 4)
    assert t4["tunnel_updates"] == pytest.approx(4 * t1["tunnel_updates"])
    assert t4["per_second"] == pytest.approx(t1["per_second"] / 4)


def test_a_refined_ode_is_saved_reloaded_and_transferred_refined(tmp_path, monkeypatch):
    """The guard doubles the RK4 steps when the integration check fails; the model file
    must then rebuild the refined flow, and a flow started from it keeps the refinement."""
    from fieldflow.flows import Flow

    def check(self, n, generator=None):  # fails until the ODE has 8 steps
        ode = next(layer for layer in self.layers if hasattr(layer, "n_steps"))
        return 1.0 if ode.n_steps < 8 else 0.0

    monkeypatch.setattr(Flow, "discretisation_error", check)
    hyper = {"n_features": 2, "n_time_basis": 2, "kernel_radius": 1, "n_steps": 4}
    small = {"L": 4, "s": -4.0, "lam": 8.0}
    train_stage(
        small,
        "cnf",
        hyper,
        TRAINING,
        "cpu",
        0,
        tmp_path / "a.pt",
        tmp_path / "a.csv",
        progress=False,
    )
    a, meta = load_model(tmp_path / "a.pt")
    assert meta["hyperparameters"]["n_steps"] == 8 and a.layers[0].n_steps == 8
    assert ModelRecord.of(meta).refinements == 1
    large = {"L": 6, "s": -4.0, "lam": 6.975}
    train_stage(
        large,
        "cnf",
        hyper,
        {**TRAINING, "steps": 2},
        "cpu",
        0,
        tmp_path / "b.pt",
        tmp_path / "b.csv",
        init_model=tmp_path / "a.pt",
        progress=False,
    )
    b, meta = load_model(tmp_path / "b.pt")
    assert meta["hyperparameters"]["n_steps"] == 8 and b.layers[0].n_steps == 8


def test_a_transferred_flow_is_fine_tuned_at_transfer_lr(tmp_path, monkeypatch):
    from fieldflow.stages import training

    seen = []
    real_train = training.train
    monkeypatch.setattr(
        training,
        "train",
        lambda flow, p, cfg, *a, **k: seen.append(cfg.lr) or real_train(flow, p, cfg, *a, **k),
    )
    small, large = {"L": 4, "s": -4.0, "lam": 8.0}, {"L": 6, "s": -4.0, "lam": 6.975}
    training = {**TRAINING, "steps": 2, "lr": 0.01, "transfer_lr": 0.002}
    train_stage(
        small,
        "realnvp",
        {"n_layers": 2},
        training,
        "cpu",
        0,
        tmp_path / "a.pt",
        tmp_path / "a.csv",
        progress=False,
    )
    train_stage(
        large,
        "realnvp",
        {"n_layers": 2},
        training,
        "cpu",
        0,
        tmp_path / "b.pt",
        tmp_path / "b.csv",
        init_model=tmp_path / "a.pt",
        progress=False,
    )
    train_stage(
        large,
        "realnvp",
        {"n_layers": 2},
        {**training, "transfer_lr": None},
        "cpu",
        0,
        tmp_path / "c.pt",
        tmp_path / "c.csv",
        init_model=tmp_path / "a.pt",
        progress=False,
    )
    assert seen == [0.01, 0.002, 0.01]
