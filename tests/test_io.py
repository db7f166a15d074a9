import json

import numpy as np
import pytest
import xarray as xr
import zarr

from fieldflow import io
from fieldflow.lattice import PRIMARIES_VERSION


def dataset(seed=0):
    rng = np.random.default_rng(seed)
    phi = rng.normal(size=(2, 5, 4, 4)).astype(np.float32)
    per_draw = {"action": rng.normal(size=(2, 5)), "accepted": rng.random((2, 5)) < 0.5}
    attrs = {"L": 4, "s": -4.0, "lam": 8.0, "sampler": "hmc", "seed": 3, "versions": io.versions()}
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


def flow_like_dataset(seed=0, draws=5):
    """A dataset with an all-zero array, an all-False ``accepted`` and per-proposal arrays."""
    rng = np.random.default_rng(seed)
    phi = rng.normal(size=(2, draws, 4, 4)).astype(np.float32)
    per_draw = {"zeros": np.zeros((2, draws)), "accepted": np.zeros((2, draws), dtype=bool)}
    per_proposal = {"log_weight": rng.normal(size=(2, 3 * draws))}
    attrs = {
        "L": 4,
        "s": -4.0,
        "lam": 8.0,
        "sampler": "realnvp",
        "seed": 3,
        "versions": io.versions(),
    }
    return io.ensemble_dataset(phi, per_draw, attrs, per_proposal)


def chunk_files(store, name):
    return sorted(p for p in (store / name / "c").rglob("*") if p.is_file())


def flip_bit(file, bit=0):
    raw = bytearray(file.read_bytes())
    raw[len(raw) // 2] ^= 1 << bit
    file.write_bytes(raw)


def test_every_chunk_is_written_with_a_crc32c(tmp_path):
    path = tmp_path / "e.zarr"
    ds = flow_like_dataset()
    io.write_ensemble(path, ds)
    for name in ds.data_vars:
        codecs = json.loads((path / name / "zarr.json").read_text())["codecs"]
        assert codecs[-1]["name"] == "crc32c", name
        # Fill-value chunks (all zero, all False) are on disk too.
        assert len(chunk_files(path, name)) == zarr.open_array(path / name).nchunks, name
    back = io.read_ensemble(path)
    assert back.attrs["all_chunks"] is True
    for name in ds.data_vars:
        np.testing.assert_array_equal(io.load_array(back, name), ds[name].values)


@pytest.mark.parametrize("name", ["phi", "proposal_log_weight", "accepted"])
@pytest.mark.parametrize("bit", [0, 7])
def test_flipped_bit_in_a_chunk_names_store_and_array(tmp_path, name, bit):
    path = tmp_path / "e.zarr"
    io.write_ensemble(path, flow_like_dataset())
    flip_bit(chunk_files(path, name)[1], bit)
    dataset = io.read_ensemble(path)  # metadata is intact; the chunk fails when read
    with pytest.raises(io.EnsembleError, match=rf"e\.zarr: cannot read array '{name}'") as info:
        io.load_array(dataset, name)
    assert "\n" not in str(info.value)
    if name == "phi":
        with pytest.raises(io.EnsembleError, match=r"e\.zarr: cannot read array 'phi'"):
            io.load_phi(path)


@pytest.mark.parametrize("name", ["phi", "zeros", "accepted", "proposal_log_weight"])
def test_deleted_chunk_names_store_array_and_count(tmp_path, name):
    path = tmp_path / "e.zarr"
    io.write_ensemble(path, flow_like_dataset())
    chunk_files(path, name)[0].unlink()
    with pytest.raises(
        io.EnsembleError, match=rf"e\.zarr: array '{name}' lacks 1 of its \d+ chunks"
    ):
        io.read_ensemble(path)


@pytest.mark.filterwarnings("ignore:Failed to open Zarr store with consolidated metadata")
def test_old_store_without_all_chunks_reads_and_checks_phi_only(tmp_path):
    # A chain as written before fieldflow wrote every chunk: fill-value chunks skipped, no
    # CRC. It stores no primaries, so it needs no primaries_version either.
    path = tmp_path / "old.zarr"
    ds = flow_like_dataset().drop_vars("proposal_log_weight")
    ds.attrs["complete"] = True
    ds.to_zarr(path, zarr_format=3, consolidated=False)
    assert chunk_files(path, "accepted") == []
    back = io.read_ensemble(path)
    assert not io.load_array(back, "accepted").any()
    np.testing.assert_array_equal(io.load_phi(path), ds["phi"].values)
    chunk_files(path, "phi")[0].unlink()
    with pytest.raises(io.EnsembleError, match=r"old\.zarr: array 'phi' lacks 1 of its"):
        io.read_ensemble(path)


def test_load_array_names_a_missing_array(tmp_path):
    path = tmp_path / "e.zarr"
    io.write_ensemble(path, dataset())
    with pytest.raises(io.EnsembleError, match=r"e\.zarr has no array 'log_q'"):
        io.load_array(path, "log_q")


def test_stale_partial_stores_are_removed_and_fresh_ones_kept(tmp_path):
    import os

    import psutil

    path = tmp_path / "e.zarr"
    stale = tmp_path / ".e.zarr.deadbeef.partial"
    (stale / "phi").mkdir(parents=True)
    (stale / "zarr.json").write_text("{}")
    before = psutil.Process().create_time() - 60
    os.utime(stale, (before, before))
    fresh = tmp_path / ".e.zarr.0123abcd.partial"  # a live writer's, as far as we know
    fresh.mkdir()
    other = tmp_path / ".f.zarr.deadbeef.partial"  # another output's: not ours to judge
    other.mkdir()
    os.utime(other, (before, before))
    io.write_ensemble(path, dataset())
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([path.name, fresh.name, other.name])


def test_discard_removes_a_file_and_its_empty_parents(tmp_path):
    checkpoints = tmp_path / "results" / "checkpoints"
    for flow in ("realnvp", "nsf"):
        (checkpoints / flow).mkdir(parents=True)
        (checkpoints / flow / "L4.pt").write_bytes(b"x")
    io.discard(checkpoints / "realnvp" / "L4.pt", empty_parents=2)
    assert not (checkpoints / "realnvp").exists() and (checkpoints / "nsf").exists()
    io.discard(checkpoints / "nsf" / "L4.pt", empty_parents=2)
    assert not checkpoints.exists() and (tmp_path / "results").exists()
    io.discard(checkpoints / "nsf" / "L4.pt", empty_parents=2)  # already gone: no error


def store_files(store):
    """Every file of a store but the group's metadata, by relative path, with its bytes."""
    return {
        str(p.relative_to(store)): p.read_bytes()
        for p in sorted(store.rglob("*"))
        if p.is_file() and p.relative_to(store) != type(p)("zarr.json")
    }


def correlated_dataset(draws=10, seed=0):
    """Two chains with per-draw and per-proposal arrays, a (chain, proposal, t) one too."""
    rng = np.random.default_rng(seed)
    phi = rng.normal(size=(2, draws, 4, 4)).astype(np.float32)
    per_draw = {"action": rng.normal(size=(2, draws)), "accepted": rng.random((2, draws)) < 0.5}
    per_proposal = {
        "log_weight": rng.normal(size=(2, 3 * draws)),
        "correlator": rng.normal(size=(2, 3 * draws, 4)),
    }
    attrs = {
        "L": 4,
        "s": -4.0,
        "lam": 8.0,
        "sampler": "realnvp",
        "seed": 3,
        "versions": io.versions(),
        "kind": "flow",
    }
    return io.ensemble_dataset(phi, per_draw, attrs, per_proposal)


def write_in_blocks(path, ds, attrs, blocks=(3, 1, 6)):
    """Write ``ds`` through an EnsembleWriter: draws of all chains in ``blocks``, proposals
    chain by chain in blocks of 7."""
    n_chains, n_draws = ds.sizes["chain"], ds.sizes["draw"]
    with io.EnsembleWriter(path, attrs) as out:
        out.start(
            n_chains,
            n_draws,
            (ds.sizes["x"], ds.sizes["y"]),
            per_draw={"action": np.float64, "accepted": bool},
            per_proposal={
                "log_weight": ds["proposal_log_weight"].shape[1:],
                "correlator": ds["proposal_correlator"].shape[1:],
            },
        )
        start = 0
        for size in blocks:
            draws = slice(start, start + size)
            series = {name: ds[name].values[:, draws] for name in ("action", "accepted")}
            out.append(ds["phi"].values[:, draws], series)
            start += size
        for chain in range(n_chains):
            for first in range(0, ds.sizes["proposal"], 7):
                part = slice(first, first + 7)
                out.append_proposals(
                    {
                        name: ds[f"proposal_{name}"].values[chain, part]
                        for name in ("log_weight", "correlator")
                    },
                    chain,
                )
        out.attrs["seconds_per_update"] = 0.25  # known only at the end


def test_writer_in_blocks_writes_what_write_ensemble_writes(tmp_path, monkeypatch):
    monkeypatch.setattr(io, "MAX_CHUNK_VALUES", 64)  # φ: chunks of 4 draws; others of 10
    ds = correlated_dataset()
    whole, blocks = tmp_path / "whole.zarr", tmp_path / "blocks.zarr"
    io.write_ensemble(whole, ds.assign_attrs(seconds_per_update=0.25))
    write_in_blocks(blocks, ds, dict(ds.attrs))
    assert zarr.open_array(blocks / "phi").chunks == (1, 4, 4, 4)
    assert zarr.open_array(blocks / "proposal_correlator").chunks == (1, 10, 4)
    # Same chunks, byte for byte, and the same array metadata (shapes, codecs, fill values).
    assert store_files(blocks) == store_files(whole)
    a, b = io.read_ensemble(whole), io.read_ensemble(blocks)
    assert a.attrs == b.attrs and b.attrs["complete"] and b.attrs["seconds_per_update"] == 0.25
    for name in ds.data_vars:
        np.testing.assert_array_equal(io.load_array(b, name), ds[name].values)
        assert io.load_array(b, name).dtype == io.load_array(a, name).dtype
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blocks.zarr", "whole.zarr"]


def test_writer_refuses_a_short_store_and_an_error_leaves_only_a_partial(tmp_path):
    import os

    import psutil

    path = tmp_path / "e.zarr"
    ds = correlated_dataset()
    with pytest.raises(ValueError, match=r"phi of chain 0 has 4 of its 10 values"):
        write_in_blocks(path, ds, dict(ds.attrs), blocks=(4,))
    with pytest.raises(RuntimeError, match="killed"):
        with io.EnsembleWriter(path, dict(ds.attrs)) as out:
            out.start(2, 10, (4, 4), per_draw={"action": np.float64})
            out.append(ds["phi"].values[:, :5], {"action": ds["action"].values[:, :5]})
            raise RuntimeError("killed")
    assert not path.exists()
    partials = sorted(tmp_path.glob(".e.zarr.*.partial"))
    assert len(partials) == 2
    with pytest.raises(io.EnsembleError, match="does not exist"):
        io.read_ensemble(path)
    before = psutil.Process().create_time() - 60
    for partial in partials:  # as if left by an earlier, killed process
        os.utime(partial, (before, before))
    write_in_blocks(path, ds, dict(ds.attrs))
    assert [p.name for p in tmp_path.iterdir()] == [path.name]
    np.testing.assert_array_equal(io.load_phi(path), ds["phi"].values)


def test_writer_checks_what_it_is_given(tmp_path):
    ds = correlated_dataset()
    out = io.EnsembleWriter(tmp_path / "e.zarr", dict(ds.attrs))
    with pytest.raises(ValueError, match="call start"):
        out.append(ds["phi"].values, {})
    out.start(2, 10, (4, 4), per_draw={"action": np.float64})
    with pytest.raises(ValueError, match="not \\['action', 'phi'\\]"):
        out.append(ds["phi"].values, {})
    with pytest.raises(ValueError, match="phi of chain 0 would exceed its 10"):
        out.append(np.zeros((2, 11, 4, 4)), {"action": np.zeros((2, 11))})
    with pytest.raises(ValueError, match="values of shape"):
        out.append(np.zeros((2, 1, 3, 3)), {"action": np.zeros((2, 1))})
    with pytest.raises(ValueError, match="no array \\['proposal_log_q'\\]"):
        out.append_proposals({"log_q": np.zeros((2, 1))})


def test_iter_chunks_reads_one_chunk_at_a_time(tmp_path, monkeypatch):
    monkeypatch.setattr(io, "MAX_CHUNK_VALUES", 64)
    path = tmp_path / "e.zarr"
    ds = correlated_dataset()
    io.write_ensemble(path, ds)
    dataset = io.read_ensemble(path)
    pieces = list(io.iter_chunks(dataset, "phi"))
    assert [(c, d.start, d.stop) for c, d, _ in pieces] == [
        (c, a, min(a + 4, 10)) for c in (0, 1) for a in (0, 4, 8)
    ]
    for chain, draws, values in pieces:
        np.testing.assert_array_equal(values, ds["phi"].values[chain, draws])
    flip_bit(chunk_files(path, "phi")[4])
    with pytest.raises(io.EnsembleError, match=r"e\.zarr: cannot read array 'phi'"):
        list(io.iter_chunks(io.read_ensemble(path), "phi"))


def test_both_writers_record_the_primaries_version(tmp_path):
    ds = correlated_dataset()
    io.write_ensemble(tmp_path / "whole.zarr", ds)
    write_in_blocks(tmp_path / "blocks.zarr", ds, dict(ds.attrs))
    for name in ("whole.zarr", "blocks.zarr"):
        attrs = io.read_ensemble(tmp_path / name).attrs
        assert attrs["primaries_version"] == PRIMARIES_VERSION >= 1


@pytest.mark.parametrize("version", [None, 0, PRIMARIES_VERSION + 1])
@pytest.mark.filterwarnings("ignore:Consolidated metadata is currently not part")
def test_stored_primaries_of_another_version_are_refused_in_one_line(tmp_path, version):
    """Reweighting reads the primaries stored at sampling time: those of an older fieldflow
    (or of none recorded) would be misread, so the store must be resampled."""
    path = tmp_path / "ensembles" / "cnf" / "X.zarr"
    io.write_ensemble(path, correlated_dataset())
    group = zarr.open_group(path, mode="r+")
    if version is None:  # written before fieldflow recorded it
        del group.attrs["primaries_version"]
    else:
        group.attrs["primaries_version"] = version
    zarr.consolidate_metadata(path)
    with pytest.raises(io.EnsembleError) as info:
        io.read_ensemble(path)
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"{path} stores primaries version ")
    if version is None or version < PRIMARIES_VERSION:
        assert message == (
            f"{path} stores primaries version {version or 0}, this fieldflow needs "
            f"{PRIMARIES_VERSION}: resample it (delete the store and rerun snakemake)"
        )
    else:
        assert "newer than this fieldflow's" in message


@pytest.mark.filterwarnings("ignore:Consolidated metadata is currently not part")
def test_a_store_from_before_the_attr_with_every_version_1_primary_still_reads(tmp_path):
    from fieldflow.primaries import ensemble_primaries

    rng = np.random.default_rng(0)
    phi = rng.normal(size=(2, 16, 4, 4)).astype(np.float32)
    proposals = {"log_weight": rng.normal(size=(2, 16)), **ensemble_primaries(phi)}
    attrs = {"L": 4, "s": -4.0, "lam": 8.0, "sampler": "cnf", "seed": 0, "versions": "{}"}
    path = tmp_path / "old.zarr"
    io.write_ensemble(path, io.ensemble_dataset(phi, {}, attrs, proposals))
    group = zarr.open_group(path, mode="r+")
    del group.attrs["primaries_version"]
    zarr.consolidate_metadata(path)
    assert "proposal_m" in io.read_ensemble(path)  # the primaries of version 1: readable


@pytest.mark.filterwarnings("ignore:Consolidated metadata is currently not part")
def test_a_chain_without_stored_primaries_needs_no_primaries_version(tmp_path):
    path = tmp_path / "e.zarr"
    io.write_ensemble(path, dataset())
    group = zarr.open_group(path, mode="r+")
    del group.attrs["primaries_version"]
    zarr.consolidate_metadata(path)
    assert "primaries_version" not in io.read_ensemble(path).attrs
