"""Ensembles on disk: xarray Datasets in Zarr format 3 (DESIGN.md §3).

A store is written under a temporary name beside its destination and renamed into place
only when complete, so a job killed midway never leaves a store that looks finished;
``read_ensemble`` also checks a ``complete`` attribute written last.

Integrity: every chunk is written (even one equal to the fill value) and carries a CRC32C
of its compressed bytes, so a lost chunk or a flipped bit is an :class:`EnsembleError`
naming the store and the array, never fill values or wrong numbers. Partial stores and
files left by killed writers are removed by the next writer of the same output.

Memory: arrays are chunked per chain along ``draw`` (and ``proposal``), a chunk holding at
most :data:`MAX_CHUNK_DRAWS` draws and :data:`MAX_CHUNK_VALUES` values, so that
:class:`EnsembleWriter` (which writes a store chunk by chunk as a sampler produces it) and
:func:`iter_chunks` (which reads one back chunk by chunk) hold one chunk, not the ensemble.
"""

from __future__ import annotations

import glob
import json
import logging
import shutil
import uuid
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import numpy as np
import xarray as xr
from numpy.typing import DTypeLike

from fieldflow.errors import FieldflowError

log = logging.getLogger(__name__)

REQUIRED_ATTRS = ("L", "s", "lam", "sampler", "seed", "versions")
#: Most draws (or proposals) of one chain in one chunk.
MAX_CHUNK_DRAWS = 4096
#: Most values in one chunk: 1 MiB of float32 φ, 256 draws at L = 32.
MAX_CHUNK_VALUES = 2**18


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


def chunk_draws(n_draws: int, values_per_draw: int = 1) -> int:
    """Draws of one chain in a chunk of an array with ``values_per_draw`` values per draw.

    At most ``n_draws``, :data:`MAX_CHUNK_DRAWS` and :data:`MAX_CHUNK_VALUES` /
    ``values_per_draw``; at least one.
    """
    return max(1, min(n_draws, MAX_CHUNK_DRAWS, MAX_CHUNK_VALUES // max(1, values_per_draw)))


def _encoding(dataset: xr.Dataset, n_draws: int) -> dict[str, dict[str, Any]]:
    """Codecs (:func:`chunk_compressors`) and chunks (1, :func:`chunk_draws`, ...) per array.

    Every array, per-proposal ones included, is chunked by the number of draws ``n_draws``.
    """
    encoding: dict[str, dict[str, Any]] = {
        name: {"compressors": chunk_compressors()} for name in dataset.variables
    }
    for name, var in dataset.data_vars.items():
        trailing = tuple(var.shape[2:])
        draws = chunk_draws(n_draws, int(np.prod(trailing, dtype=np.int64)))
        encoding[name]["chunks"] = (1, draws) + trailing
    return encoding


def _partial_name(path: Path) -> Path:
    """A fresh temporary name beside ``path``, after removing those of dead writers."""
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_partials(path.parent, f".{glob.escape(path.name)}.*.partial")
    return path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.partial")


def _create(tmp: Path, dataset: xr.Dataset, n_draws: int) -> None:
    """Write ``dataset`` to ``tmp``, flagged incomplete, every chunk written."""
    dataset = dataset.copy()
    dataset.attrs.update(complete=False, all_chunks=True)
    dataset.to_zarr(
        tmp,
        mode="w",
        zarr_format=3,
        consolidated=False,
        encoding=_encoding(dataset, n_draws),
        write_empty_chunks=True,
    )


def _finish(tmp: Path, path: Path, attrs: Mapping[str, Any] | None = None) -> None:
    """Set ``attrs``, then ``complete``, consolidate and rename ``tmp`` to ``path``."""
    import zarr

    group = zarr.open_group(tmp, mode="r+")
    if attrs:
        group.attrs.update(attrs)
    # Flag completion only once every array is on disk.
    group.attrs["complete"] = True
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # consolidated metadata is a zarr-python extension
        zarr.consolidate_metadata(tmp)
    if path.exists():
        shutil.rmtree(path)
    tmp.rename(path)


def write_ensemble(path: str | Path, dataset: xr.Dataset) -> None:
    """Write atomically to ``path`` (a directory ending in .zarr), replacing any old store.

    Every array's chunks carry a CRC32C (:func:`chunk_compressors`), and every chunk is
    written even where it equals the fill value, which ``attrs["all_chunks"]`` records so
    that :func:`read_ensemble` can tell a lost chunk from a skipped one. Partial stores of
    writers killed before this process started are removed first.
    """
    path = Path(path)
    tmp = _partial_name(path)
    _create(tmp, dataset, dataset.sizes["draw"])
    _finish(tmp, path)


class EnsembleWriter:
    """Write an ensemble chunk by chunk as it is sampled, holding one chunk per chain.

    ``with EnsembleWriter(path, attrs) as out:``, then :meth:`start` declares the full
    shapes, which creates the store under a temporary name with the chunks and codecs of
    :func:`write_ensemble`; :meth:`append` and :meth:`append_proposals` add the next draws
    (proposals) of every chain, or of one chain, and write each chunk once it is full.
    Leaving the block normally checks that every array is full, writes :attr:`attrs`
    (update them meanwhile, e.g. with timings), then ``complete``, and renames the store
    into place: it then equals what :func:`write_ensemble` writes for the same data. An
    error leaves only the temporary store, which the next writer of ``path`` removes.
    """

    def __init__(self, path: str | Path, attrs: Mapping[str, Any]) -> None:
        self.path = Path(path)
        self.attrs: dict[str, Any] = dict(attrs)
        #: Lengths of the dimensions ``chain`` and ``draw``, once :meth:`start` set them.
        self.sizes: dict[str, int] = {}
        self._tmp: Path | None = None
        self._columns: dict[str, _Column] = {}

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if kind is None:
            self.close()
        elif self._tmp is not None:
            log.info("%s left incomplete after an error; the next writer removes it", self._tmp)

    def start(
        self,
        n_chains: int,
        n_draws: int,
        L: int,
        per_draw: Mapping[str, DTypeLike],
        per_proposal: Mapping[str, tuple[int, ...]] | None = None,
    ) -> None:
        """Create the store: φ (n_chains, n_draws, L, L) and the arrays to come.

        Args:
            per_draw: dtype of each per-draw series, stored (chain, draw) as by
                :func:`ensemble_dataset` (floats as float64).
            per_proposal: shape of each per-proposal series of one chain, (n_proposals,)
                or (n_proposals, t), stored float64 as ``proposal_<name>``.
        """
        import zarr

        if self._tmp is not None:
            raise ValueError(f"{self.path}: the store was already started")
        per_proposal = dict(per_proposal or {})
        template = ensemble_dataset(
            np.zeros((n_chains, 0, L, L), dtype=np.float32),
            {name: np.zeros((n_chains, 0), dtype=dtype) for name, dtype in per_draw.items()},
            self.attrs,
            {name: np.zeros((n_chains, 0, *shape[1:])) for name, shape in per_proposal.items()},
        )
        self.sizes = {"chain": n_chains, "draw": n_draws}
        tmp = _partial_name(self.path)
        self._tmp = tmp
        _create(tmp, template, n_draws)
        lengths = {name: n_draws for name in ("phi", *per_draw)}
        lengths.update({f"proposal_{name}": shape[0] for name, shape in per_proposal.items()})
        group = zarr.open_group(tmp, mode="r+")
        for name, length in lengths.items():
            array = group[name]
            array.resize((n_chains, length, *array.shape[2:]))
            self._columns[name] = _Column(name, array.with_config({"write_empty_chunks": True}))

    def append(
        self, phi: np.ndarray, per_draw: Mapping[str, np.ndarray], chain: int | None = None
    ) -> None:
        """The next draws: φ (chain, k, L, L) and each series (chain, k) of every chain, or
        with ``chain``, φ (k, L, L) and series (k,) of that chain. Every declared series
        comes with φ."""
        self._check_started()
        names = {"phi", *per_draw}
        expected = {name for name in self._columns if not name.startswith("proposal_")}
        if names != expected:
            raise ValueError(f"{self.path}: append gets {sorted(names)}, not {sorted(expected)}")
        self._add({"phi": phi, **per_draw}, chain)

    def append_proposals(self, values: Mapping[str, np.ndarray], chain: int | None = None) -> None:
        """The next raw proposals of every chain, each (chain, k[, t]), or of ``chain``."""
        self._add({f"proposal_{name}": v for name, v in values.items()}, chain)

    def _check_started(self) -> None:
        if self._tmp is None:
            raise ValueError(f"{self.path}: call start() before writing draws")

    def _add(self, values: Mapping[str, np.ndarray], chain: int | None) -> None:
        self._check_started()
        unknown = set(values) - set(self._columns)
        if unknown:
            raise ValueError(f"{self.path}: no array {sorted(unknown)} was declared")
        for name, array in values.items():
            column = self._columns[name]
            if chain is not None:
                column.add(chain, array)
                continue
            if len(array) != column.n_chains:
                raise ValueError(f"{name} has {len(array)} chains, not {column.n_chains}")
            for c in range(column.n_chains):
                column.add(c, array[c])

    def close(self) -> None:
        """Write :attr:`attrs`, then ``complete``, and rename the full store into place."""
        if self._tmp is None:
            raise ValueError(f"{self.path}: nothing to write (start() was never called)")
        for column in self._columns.values():
            column.check_full(self._tmp)
        attrs = {k: v.item() if isinstance(v, np.generic) else v for k, v in self.attrs.items()}
        _finish(self._tmp, self.path, attrs)


class _Column:
    """One array of a store being written along its axis 1, per chain, a chunk at a time."""

    def __init__(self, name: str, array: Any) -> None:
        self.name = name
        self.array = array
        self.n_chains, self.length = array.shape[:2]
        self.step = array.chunks[1]
        self.written = [0] * self.n_chains
        self.pending: list[list[np.ndarray]] = [[] for _ in range(self.n_chains)]
        self.count = [0] * self.n_chains

    def add(self, chain: int, values: np.ndarray) -> None:
        """Buffer ``values`` (k, ...) as the next of ``chain``; write the chunks now full."""
        values = np.asarray(values, dtype=self.array.dtype)
        if values.shape[1:] != self.array.shape[2:]:
            expected = ("k", *self.array.shape[2:])
            raise ValueError(f"{self.name} gets values of shape {values.shape}, not {expected}")
        if self.written[chain] + self.count[chain] + len(values) > self.length:
            raise ValueError(f"{self.name} of chain {chain} would exceed its {self.length}")
        self.pending[chain].append(values)
        self.count[chain] += len(values)
        while self.written[chain] < self.length:
            start = self.written[chain]
            stop = min(start + self.step, self.length)
            if start + self.count[chain] < stop:
                break  # the chunk is not full yet
            block = np.concatenate(self.pending[chain])
            self.array[chain, start:stop] = block[: stop - start]
            rest = block[stop - start :]
            self.pending[chain] = [rest] if len(rest) else []
            self.count[chain] = len(rest)
            self.written[chain] = stop

    def check_full(self, store: Path) -> None:
        """Raise :class:`ValueError` unless every chain has all its values."""
        for chain, (written, count) in enumerate(zip(self.written, self.count, strict=True)):
            if written + count < self.length:
                have = written + count
                raise ValueError(f"{store}: {self.name} of chain {chain} has {have} of its "
                                 f"{self.length} values; the store stays incomplete")  # fmt: skip


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


def iter_chunks(dataset: xr.Dataset, name: str = "phi") -> Iterator[tuple[int, slice, np.ndarray]]:
    """Values of one array of :func:`read_ensemble`, one chunk along its axis 1 at a time.

    Yields (chain, draws, values) with ``values`` the array at ``[chain, draws]``, shape
    (len(draws), ...), so that a reader holds one chunk, not the array. A corrupt chunk
    is an :class:`EnsembleError` naming the store and the array, as in :func:`load_array`.
    """
    store = dataset.encoding.get("source", "(unnamed store)")
    if name not in dataset:
        raise EnsembleError(f"ensemble {store} has no array {name!r}")
    variable = dataset[name]
    n_chains, length = variable.shape[:2]
    chunks = variable.encoding.get("chunks") or (1, MAX_CHUNK_DRAWS)
    step = max(1, int(chunks[1]))
    for chain in range(n_chains):
        for start in range(0, length, step):
            draws = slice(start, min(start + step, length))
            try:
                values = variable[chain, draws].values
            except Exception as err:
                raise EnsembleError(
                    f"ensemble {store}: cannot read array {name!r}, a chunk of it is corrupt: "
                    f"{_one_line(err)}"
                ) from err
            yield chain, draws, values


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
