"""The sampler registry, the generic Markov-chain stage, and the baselines against each other."""

import numpy as np
import pandas as pd
import pytest

from fieldflow import analysis, samplers
from fieldflow.flows import FAMILIES
from fieldflow.io import read_ensemble
from fieldflow.lattice import Point, gaussian_observables
from fieldflow.stages import ensemble_primaries, mcmc_stage, tables_stage
from fieldflow.stages.observables import OBSERVABLE_COLUMNS
from fieldflow.stages.tables import SAMPLER_COLUMNS

E1 = Point(6, -4.0, 6.975)


def test_every_sampler_has_one_kind():
    assert {samplers.kind(name) for name in FAMILIES} == {"flow"}
    assert {samplers.kind(name) for name in samplers.MCMC} == {"mcmc"}
    assert samplers.kinds(["cnf", "cluster"]) == {"cnf": "flow", "cluster": "mcmc"}
    with pytest.raises(ValueError, match="unknown sampler 'glauber'"):
        samplers.kind("glauber")
    with pytest.raises(ValueError, match="is a flow"):
        samplers.mcmc_runner("realnvp")


@pytest.mark.parametrize("name", sorted(samplers.MCMC))
def test_mcmc_stage_writes_an_ensemble_the_tables_read(tmp_path, name):
    settings = {"n_chains": 3, "n_trajectories": 20, "n_updates": 20, "burn_in": 10}
    if name.startswith("hmc"):
        settings["trajectory_length"] = "auto" if name == "hmc_tuned" else 1.0
    point = {"L": 4, "s": -4.0, "lam": 8.0}
    path = tmp_path / "ensembles" / name / "L4.zarr"
    mcmc_stage(name, point, settings, seed=1, ensemble_path=path, progress=False)
    ds = read_ensemble(path)
    assert ds.attrs["kind"] == "mcmc" and ds.attrs["sampler"] == name
    assert ds["phi"].shape == (3, 20, 4, 4) and ds["action"].dtype == np.float64
    assert ds.attrs["step_size"] > 0 and ds.attrs["sample_seconds"] > 0
    rows = pd.DataFrame(
        [[4, -4.0, 8.0, name, "phi2", 1.0, 0.1, 0.5, 0.1, 60, True, ""]], columns=OBSERVABLE_COLUMNS
    )
    rows.to_csv(tmp_path / "obs.csv", index=False)
    tables_stage(
        [tmp_path / "obs.csv"], [path], tmp_path / "o.csv", tmp_path / "s.csv", tmp_path / "p.csv"
    )
    assert 0 < ds.attrs["seconds_per_update"] < ds.attrs["sample_seconds"]
    table = pd.read_csv(tmp_path / "s.csv")
    assert table.loc[0, "kind"] == "mcmc" and table.loc[0, "n_samples"] == 60
    assert list(table.columns) == SAMPLER_COLUMNS
    assert table.loc[0, "seconds_per_update"] > 0
    assert np.isfinite(table.loc[0, "seconds_per_update_error"])
    assert pd.read_csv(tmp_path / "p.csv").empty  # parameter counts are for flows only


@pytest.mark.parametrize("name", ["hmc", "cluster"])
def test_mcmc_stage_streams_thinned_draws_a_chunk_at_a_time(tmp_path, monkeypatch, name):
    """The store holds what the in-memory run keeps; φ is never buffered beyond a chunk."""
    from fieldflow import io
    from fieldflow.column import ChunkedColumn

    monkeypatch.setattr(io, "MAX_CHUNK_VALUES", 64)  # L = 4: φ in chunks of 4 draws
    buffered = []
    add = ChunkedColumn.add

    def tracking_add(column, chain, values):
        add(column, chain, values)
        if column.name == "phi":
            buffered.append((len(values), column.filled[chain]))

    monkeypatch.setattr(ChunkedColumn, "add", tracking_add)
    settings = {"n_chains": 3, "n_trajectories": 10, "n_updates": 10, "burn_in": 10, "thin": 2}
    point = {"L": 4, "s": -4.0, "lam": 8.0}
    path = tmp_path / "e.zarr"
    mcmc_stage(name, point, settings, seed=1, ensemble_path=path, progress=False)
    assert max(size for size, _ in buffered) == 1  # one kept draw per append
    assert max(pending for _, pending in buffered) < 4  # a full chunk is written at once
    memory = samplers.mcmc_runner(name)(Point(4, -4.0, 8.0), settings, 1, False)
    ds = read_ensemble(path)
    assert ds.attrs["thin"] == 2 and ds.attrs["acceptance"] == memory.acceptance
    np.testing.assert_array_equal(ds["phi"].values, memory.phi)
    for key, values in memory.per_draw.items():
        np.testing.assert_array_equal(ds[key].values, values)


def test_bad_point_is_refused_before_anything_is_written(tmp_path):
    path = tmp_path / "e.zarr"
    with pytest.raises(ValueError, match="s > 0|unbounded|s <= 0"):
        mcmc_stage(
            "cluster",
            {"L": 4, "s": -1.0, "lam": 0.0},
            {"n_chains": 2, "n_updates": 10, "burn_in": 0},
            seed=0,
            ensemble_path=path,
            progress=False,
        )
    assert not path.exists() and not list(tmp_path.iterdir())


def estimates(name: str, settings: dict, seed: int) -> dict[str, analysis.Estimate]:
    result = samplers.mcmc_runner(name)(E1, settings, seed, False)
    return analysis.observables(ensemble_primaries(result.phi), E1.L)


def test_cluster_and_hmc_agree_at_E1():
    """Two exact samplers of one theory agree within 4σ in every observable (L = 6)."""
    hmc = estimates(
        "hmc",
        {"n_chains": 64, "n_trajectories": 1000, "burn_in": 100, "trajectory_length": 1.0},
        seed=11,
    )
    cluster = estimates("cluster", {"n_chains": 64, "n_updates": 1000, "burn_in": 100}, seed=12)
    assert set(hmc) == set(cluster)
    for name in hmc:
        a, b = hmc[name], cluster[name]
        assert np.isfinite(a.value) and np.isfinite(b.value), name
        assert abs(a.value - b.value) < 4 * np.hypot(a.error, b.error), (name, a, b)


def test_tuned_hmc_reproduces_the_exact_gaussian_theory():
    point = Point(8, 0.1, 0.0)
    settings = {"n_chains": 32, "n_trajectories": 600, "burn_in": 200, "trajectory_length": "auto"}
    result = samplers.mcmc_runner("hmc_tuned")(point, settings, 3, False)
    assert result.info["trajectory_length"] > 1.2  # ξ₂ ≈ 3.2 here: 0.5 ξ₂ ≈ 1.6
    found = analysis.observables(ensemble_primaries(result.phi), point.L)
    for name, exact in gaussian_observables(point.L, point.s).items():
        if name in found:
            estimate = found[name]
            assert abs(estimate.value - exact) < 4 * estimate.error, (name, estimate, exact)
