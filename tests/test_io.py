import json

import numpy as np
import pytest
import xarray as xr

from fieldflow import io


def dataset(seed=0):
    rng = np.random.default_rng(seed)
    phi = rng.normal(size=(2, 5, 4, 4)).astype(np.float32)
    per_draw = {"action": rng.normal(size=(2, 5)), "accepted": rng.random((2, 5)) < 0.5}
    attrs = {"L": 4, "s": -4.0, "lam": 8.0, "sampler": "hmc", "seed": 3,
             "versions": io.versions()}  # fmt: skip
    return io.ensemble_dataset(phi, per_draw, attrs)


def test_round_trip_through_xarray_open_zarr(tmp_path):
    path = tmp_path / "ensembles" / "hmc" / "L4_s-4_lam8.zarr"
    ds = dataset()
    io.write_ensemble(path, ds)
    back = xr.open_zarr(path, chunks=None)
    assert back["phi"].dims == ("chain", "draw", "x", "y")
    assert back["phi"].dtype == np.float32 and back["action"].dtype == np.float64
    assert back["accepted"].dtype == bool
    np.testing.assert_array_equal(back["phi"].values, ds["phi"].values)
    assert back.attrs["L"] == 4 and back.attrs["sampler"] == "hmc" and back.attrs["complete"]
    assert "torch" in json.loads(back.attrs["versions"])
    assert (path / "zarr.json").exists()  # Zarr format 3
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no leftovers


def test_overwrite_replaces_old_store(tmp_path):
    path = tmp_path / "e.zarr"
    io.write_ensemble(path, dataset(0))
    io.write_ensemble(path, dataset(1))
    np.testing.assert_array_equal(io.load_phi(path), dataset(1)["phi"].values)


def test_missing_incomplete_and_corrupt_stores_name_the_file(tmp_path):
    with pytest.raises(io.EnsembleError, match="missing.zarr does not exist"):
        io.read_ensemble(tmp_path / "missing.zarr")
    incomplete = tmp_path / "half.zarr"
    ds = dataset()
    ds.to_zarr(incomplete, zarr_format=3, consolidated=False)  # as if killed before the flag
    with pytest.raises(io.EnsembleError, match="half.zarr is incomplete"):
        io.read_ensemble(incomplete)
    corrupt = tmp_path / "corrupt.zarr"
    io.write_ensemble(corrupt, ds)
    (corrupt / "zarr.json").write_text("{not json")
    with pytest.raises(io.EnsembleError, match="corrupt.zarr"):
        io.read_ensemble(corrupt)


def test_bad_shapes_rejected():
    with pytest.raises(ValueError, match="chain, draw"):
        io.ensemble_dataset(np.zeros((5, 4, 4)), {}, {})
    with pytest.raises(ValueError, match="action"):
        io.ensemble_dataset(np.zeros((2, 5, 4, 4)), {"action": np.zeros(3)}, {})
