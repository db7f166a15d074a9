"""Ensembles on disk: xarray Datasets in Zarr format 3 (DESIGN.md §3).

A store is written under a temporary name beside its destination and renamed into place
only when complete, so a job killed midway never leaves a store that looks finished;
``read_ensemble`` also checks a ``complete`` attribute written last.

Integrity: every chunk is written (even one equal to the fill value) and carries a CRC32C
of its compressed bytes, so a lost chunk or a flipped bit is an :class:`EnsembleError`
naming the store and the array, never fill values or wrong numbers. Partial stores and
files left by killed writers are removed by the next writer of the same output.
"""

from __future__ import annotations

import glob
import json
import logging
import shutil
import uuid
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from fieldflow.errors import FieldflowError

log = logging.getLogger(__name__)

REQUIRED_ATTRS = ("L", "s", "lam", "sampler", "seed", "versions")


class EnsembleError(FieldflowError, RuntimeError):
    """An ensemble store that is missing, incomplete or corrupt."""


def versions() -> str:
    """Versions of the packages that produced a result, as JSON."""
    import pyerrors
    import torch
    import zarr

    import fieldflow

    found = {
        "fieldflow": fieldflow.__version__,
        "numpy": np.__version__,
        "torch": torch.__version__,
        "xarray": xr.__version__,
        "zarr": zarr.__version__,
        "pyerrors": pyerrors.__version__,
    }
    return json.dumps(found, sort_keys=True)


def ensemble_dataset(
    phi: np.ndarray,
    per_draw: dict[str, np.ndarray],
    attrs: dict[str, Any],
    per_proposal: dict[str, np.ndarray] | None = None,
) -> xr.Dataset:
    """Dataset with ``phi`` (chain, draw, x, y) float32 and per-draw (chain, draw) fields.

    ``per_proposal`` fields (flows only) describe every raw proposal of each chain, dims
    (chain, proposal[, t]); they are stored as ``proposal_<name>`` for the reweighting
    estimator.
    """
    if phi.ndim != 4:
        raise ValueError(f"phi must have shape (chain, draw, x, y), got {phi.shape}")
    data = {"phi": (("chain", "draw", "x", "y"), np.asarray(phi, dtype=np.float32))}
    for name, values in per_draw.items():
        values = np.asarray(values)
        if values.shape != phi.shape[:2]:
            raise ValueError(f"{name} has shape {values.shape}, expected {phi.shape[:2]}")
        if values.dtype.kind == "f":
            values = values.astype(np.float64)
        data[name] = (("chain", "draw"), values)
    for name, values in (per_proposal or {}).items():
        values = np.asarray(values, dtype=np.float64)
        if values.shape[0] != phi.shape[0]:
            raise ValueError(f"proposal_{name} has {values.shape[0]} chains, not {phi.shape[0]}")
        dims = ("chain", "proposal", "t")[: values.ndim]
        data[f"proposal_{name}"] = (dims, values)
    missing = [key for key in REQUIRED_ATTRS if key not in attrs]
    if missing:
        raise ValueError(f"ensemble attrs lack {missing}")
    return xr.Dataset(data, attrs=dict(attrs))


def chunk_compressors() -> tuple[Any, ...]:
    """Zstd, then a CRC32C of the compressed bytes: a flipped bit fails the read loudly."""
    from zarr.codecs import Crc32cCodec, ZstdCodec

    return (ZstdCodec(), Crc32cCodec())


def write_ensemble(path: str | Path, dataset: xr.Dataset) -> None:
    """Write atomically to ``path`` (a directory ending in .zarr), replacing any old store.

    Every array's chunks carry a CRC32C (:func:`chunk_compressors`), and every chunk is
    written even where it equals the fill value, which ``attrs["all_chunks"]`` records so
    that :func:`read_ensemble` can tell a lost chunk from a skipped one. Partial stores of
    writers killed before this process started are removed first.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_partials(path.parent, f".{glob.escape(path.name)}.*.partial")
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.partial")
    draws = min(dataset.sizes["draw"], 4096)
    encoding: dict[str, dict[str, Any]] = {
        name: {"compressors": chunk_compressors()} for name in dataset.variables
    }
    for name, var in dataset.data_vars.items():
        encoding[name]["chunks"] = (1, draws) + tuple(var.shape[2:])
    dataset = dataset.copy()
    dataset.attrs.update(complete=False, all_chunks=True)
    dataset.to_zarr(
        tmp,
        mode="w",
        zarr_format=3,
        consolidated=False,
        encoding=encoding,
        write_empty_chunks=True,
    )
    # Flag completion only once every array is on disk.
    import zarr

    group = zarr.open_group(tmp, mode="r+")
    group.attrs["complete"] = True
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # consolidated metadata is a zarr-python extension
        zarr.consolidate_metadata(tmp)
    if path.exists():
        shutil.rmtree(path)
    tmp.rename(path)


def read_ensemble(path: str | Path) -> xr.Dataset:
    """Open an ensemble lazily; raise :class:`EnsembleError` naming the file if unusable.

    Beyond its metadata, every array must have all the chunks of its chunk grid on disk
    (:func:`check_chunks`). Values are read lazily: read them through :func:`load_array`,
    which reports a chunk that fails its checksum by store and array.
    """
    path = Path(path)
    if not path.exists():
        raise EnsembleError(f"ensemble {path} does not exist")
    try:
        dataset = xr.open_zarr(path, chunks=None)
    except Exception as err:
        raise EnsembleError(
            f"ensemble {path} is corrupt or not a Zarr store: {_one_line(err)}"
        ) from err
    if not dataset.attrs.get("complete", False):
        raise EnsembleError(f"ensemble {path} is incomplete (its writer did not finish)")
    if "phi" not in dataset or dataset["phi"].dims != ("chain", "draw", "x", "y"):
        raise EnsembleError(f"ensemble {path} has no phi(chain, draw, x, y) array")
    check_chunks(path, every_array=bool(dataset.attrs.get("all_chunks", False)))
    return dataset


def check_chunks(path: Path, every_array: bool) -> None:
    """Raise :class:`EnsembleError` if an array has fewer chunks on disk than its grid.

    zarr reads a missing chunk as fill values (NaN, 0, False), so a lost chunk file would
    otherwise pass for data. Stores written with ``attrs["all_chunks"]`` (every chunk
    written, as :func:`write_ensemble` does) are checked array by array. Older stores
    skipped chunks equal to the fill value, which a chunk of ``accepted`` may legitimately
    be (all False), so there only ``phi`` is checked: a chunk of sampled fields never
    equals the fill value throughout.
    """
    import zarr

    try:
        group = zarr.open_group(path, mode="r")
        counts = {name: (a.nchunks, a.nchunks_initialized) for name, a in group.arrays()}
    except Exception as err:
        raise EnsembleError(f"ensemble {path} is corrupt: {_one_line(err)}") from err
    for name, (total, stored) in sorted(counts.items()):
        if (every_array or name == "phi") and stored < total:
            raise EnsembleError(
                f"ensemble {path}: array {name!r} lacks {total - stored} of its {total} "
                "chunks (lost or deleted); rerun the job that wrote it"
            )


def load_array(source: str | Path | xr.Dataset, name: str) -> np.ndarray:
    """Values of one array of an ensemble, from its path or from :func:`read_ensemble`.

    A chunk that fails its CRC32C or cannot be decoded is an :class:`EnsembleError`
    naming the store and the array, not an exception from deep inside zarr.
    """
    if isinstance(source, xr.Dataset):
        dataset, store = source, source.encoding.get("source", "(unnamed store)")
    else:
        dataset, store = read_ensemble(source), source
    if name not in dataset:
        raise EnsembleError(f"ensemble {store} has no array {name!r}")
    try:
        return dataset[name].values
    except Exception as err:
        raise EnsembleError(
            f"ensemble {store}: cannot read array {name!r}, a chunk of it is corrupt: "
            f"{_one_line(err)}"
        ) from err


def load_phi(path: str | Path) -> np.ndarray:
    """φ of an ensemble as a (chain, draw, L, L) array, with corruption reported by file."""
    return load_array(path, "phi")


def remove_stale_partials(directory: Path, pattern: str) -> list[Path]:
    """Remove the entries of ``directory`` matching ``pattern`` older than this process.

    Atomic writers leave a partial file or store behind only when killed. Snakemake never
    runs two jobs for one output at once, so a partial last modified before this process
    started belongs to a dead writer; a newer one may be a live writer's and is kept.
    """
    import psutil

    started = psutil.Process().create_time()
    removed = []
    for entry in sorted(directory.glob(pattern)):
        try:
            if entry.lstat().st_mtime >= started:
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        except FileNotFoundError:  # removed meanwhile by someone else
            continue
        log.info("removed %s, left behind by a writer that was killed", entry)
        removed.append(entry)
    return removed


def discard(path: str | Path, empty_parents: int = 0) -> None:
    """Delete the file ``path`` if present, then up to ``empty_parents`` empty parents."""
    path = Path(path)
    path.unlink(missing_ok=True)
    for parent in list(path.parents)[:empty_parents]:
        try:
            parent.rmdir()
        except OSError:  # not empty (another job's files), or not removable at all
            break


def _one_line(error: BaseException) -> str:
    """The message of ``error`` with its whitespace, newlines included, collapsed."""
    return " ".join(str(error).split())
