"""What a study asks of the machine: memory per sampling job and disk for its ensembles.

:func:`check_resources` refuses, before any job runs, a study whose largest job would not
fit in memory or whose ensembles would not fit on disk, and says which point and sampler
to shrink. A configuration holds the values of its theory's field shape: L² for φ⁴,
2 L² for U(1) links (:attr:`fieldflow.theory.Theory.field_shape`).
"""

from __future__ import annotations

import math
import os
import shutil
from pathlib import Path
from typing import Any

from fieldflow.io import chunk_draws
from fieldflow.theory import PointLike

#: Memory per configuration a sampling job holds, in units of the float32 field
#: (4 bytes a value): the configuration as drawn, its copy in the store's write buffer,
#: and the codecs' working copy.
MEMORY_PER_CONFIGURATION = 3
#: The keys of Markov-chain settings that count kept draws per chain.
_DRAW_KEYS = ("n_trajectories", "n_updates")


def field_values(point: PointLike) -> int:
    """Values in one configuration of ``point``'s field: L² for φ⁴, 2 L² for U(1) links."""
    return math.prod(point.theory.field_shape(point.L))


def ensemble_sizes(config: dict[str, Any]) -> list[tuple[str, PointLike, int, int]]:
    """(sampler, point, configurations drawn, configurations kept) of every ensemble.

    Flows draw ``n_chains · (n_samples + burn_in)`` proposals and keep ``n_chains ·
    n_samples``; a Markov chain keeps ``n_chains`` times its draws per chain (its burn-in
    is not stored). ``config`` must be validated, so that defaults are filled in.
    """
    from fieldflow.config import points  # config re-exports this module

    sampling = config["sampling"]
    flow_draws = sampling["n_chains"] * (sampling["n_samples"] + sampling["burn_in"])
    sizes = []
    for point in points(config):
        for flow in config["flows"]:
            sizes.append((flow, point, flow_draws, sampling["n_chains"] * sampling["n_samples"]))
        for name in config["mcmc"]:
            section = config.get(name, {})
            draws = next((section[key] for key in _DRAW_KEYS if key in section), 0)
            sizes.append(
                (
                    name,
                    point,
                    section.get("n_chains", 0) * draws,
                    section.get("n_chains", 0) * draws,
                )
            )
    return sizes


def sampling_memory(config: dict[str, Any], sampler: str, point: PointLike) -> tuple[int, float]:
    """(configurations held, bytes) of one sampling job, which streams its ensemble.

    Per chain the job holds its current state and one chunk of the store
    (:func:`fieldflow.io.chunk_draws`), and a flow also one batch of proposals, each
    :data:`MEMORY_PER_CONFIGURATION` float32 fields; the draw count itself does not
    matter. Add the per-configuration scalars and correlator (L + 8 float64) of the
    observables job that reads the ensemble back, which keeps those of every draw.
    """
    if sampler in config["flows"]:
        section = config["sampling"]
        chains, per_chain = section["n_chains"], section["n_samples"]
        batch = section["batch_size"]
    else:
        section = config.get(sampler, {})
        chains = section.get("n_chains", 0)
        per_chain, batch = next((section[k] for k in _DRAW_KEYS if k in section), 0), 0
    values = field_values(point)
    held = chains * (chunk_draws(max(per_chain, 1), values) + 1) + batch
    fields = MEMORY_PER_CONFIGURATION * 4.0 * values * held
    primaries = 8.0 * (point.L + 8) * chains * per_chain
    return held, fields + primaries


def physical_memory() -> float:
    """This machine's physical memory in bytes."""
    return float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


def check_resources(config: dict[str, Any], results: str | Path = "results") -> None:
    """Refuse a study whose ensembles do not fit this machine, with the estimate.

    Memory: the largest job, estimated by :func:`sampling_memory`, against
    ``memory_limit_gb`` or this machine's physical memory. Disk: the ensembles not yet
    under ``results`` store 4 bytes per value of each kept configuration (random floats barely
    compress), against the free space there.

    Raises:
        ConfigError: naming the point and sampler of the largest job, or the disk need.
    """
    from fieldflow.config import ConfigError, points  # config re-exports this module

    sizes = ensemble_sizes(config)
    if not sizes:
        return
    index = {point.key: i for i, point in enumerate(points(config))}
    limit = config.get("memory_limit_gb")
    limit_bytes = limit * 1e9 if limit is not None else physical_memory()
    memory = {(name, p): sampling_memory(config, name, p) for name, p, _, _ in sizes}
    (sampler, point), (held, need) = max(memory.items(), key=lambda item: item[1][1])
    shape = "x".join(map(str, point.theory.field_shape(point.L)))
    if need > limit_bytes:
        where = "memory_limit_gb" if limit is not None else "this machine's memory"
        raise ConfigError(
            f"config key 'points[{index[point.key]}].L': {sampler} at L={point.L} would hold "
            f"about {need / 1e9:.1f} GB ({held:,} configurations of {shape} "
            "and the scalars of every draw), "
            f"more than {where} ({limit_bytes / 1e9:.1f} GB); lower its n_chains or batch_size"
            + ("" if limit is not None else ", or set memory_limit_gb for larger nodes")
        )
    results = Path(results)
    missing = [
        (name, p, kept)
        for name, p, _, kept in sizes
        if not (results / "ensembles" / name / f"{p.key}.zarr").exists()
    ]
    disk = sum(4.0 * field_values(p) * kept for _, p, kept in missing)
    existing = next(parent for parent in (results, *results.absolute().parents) if parent.exists())
    free = shutil.disk_usage(existing).free
    if disk > free:
        raise ConfigError(
            f"config key 'points': the {len(missing)} ensembles still to write need about "
            f"{disk / 1e9:.1f} GB on disk, but {existing.absolute()} has {free / 1e9:.1f} GB "
            "free; lower the sample counts or free space"
        )
