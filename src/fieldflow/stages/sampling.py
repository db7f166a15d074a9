"""Sampling stages: a flow's proposals and their independence Metropolis-Hastings chains,
and the Markov-chain baselines, each written to its ensemble store as it is sampled.

They run at a point of any theory (:class:`fieldflow.theory.PointLike`): the store's attrs
hold the theory's name (``theory``) and the point's columns (φ⁴: L, s, lam; U(1): L, beta),
and its field is the theory's (:attr:`fieldflow.theory.Theory.field`).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fieldflow import io, primaries, samplers, weights
from fieldflow.flows import Flow, load_model
from fieldflow.mcmc.metropolis import ProposalBatch, StreamingChain, iter_proposals
from fieldflow.mcmc.timing import Stopwatch, UpdateTime, clock_for
from fieldflow.reader import ModelRecord
from fieldflow.stages.jobs import point_of, resolve_device
from fieldflow.theory import PointLike

log = logging.getLogger(__name__)


def _point(point: Mapping[str, Any] | str | PointLike) -> PointLike:
    """The point of a config point or key (:func:`fieldflow.stages.jobs.point_of`), or
    ``point`` itself where it is one already (a :class:`~fieldflow.theory.PointLike`)."""
    if isinstance(point, str):
        return point_of(point)
    return point_of(dict(point)) if isinstance(point, Mapping) else point


def point_attrs(p: PointLike) -> dict[str, Any]:
    """The attrs of a store at ``p``: its columns (``L`` first), then ``theory``."""
    return {**p.columns(), "theory": p.theory.name}


def sample_flow_stage(
    model_path: str | Path,
    point: Mapping[str, Any] | str | PointLike,
    sampling: dict[str, Any],
    device: str,
    seed: int,
    ensemble_path: str | Path,
    sampler: str,
) -> None:
    """Draw flow proposals, run independence MH chains, write the ensemble, batch by batch.

    Memory does not grow with the number of samples (:func:`_flow_chains`), and the
    ensemble is the one that drawing every proposal first would give, for the same seed.
    ``sample_seconds`` is the wall time of proposals, chains and writing together;
    ``seconds_per_update`` (and its error) the median seconds per proposal over the timed
    batches, free of the Metropolis step and the writing. ``point`` is a config point, a
    point key or a point of any theory (:func:`_point`); the flow's family must fit it.
    """
    flow, meta = load_model(model_path)
    model = ModelRecord.of(meta)
    precision = {"float32": torch.float32, "float64": torch.float64}[
        sampling.get("precision", "float64")
    ]
    flow = flow.to(resolve_device(device), dtype=precision).eval()
    sample_flow(
        flow,
        _point(point),
        sampling,
        seed,
        ensemble_path,
        sampler,
        model.train_seconds,
        model.train_steps,
    )


def sample_flow(
    flow: Flow,
    p: PointLike,
    sampling: dict[str, Any],
    seed: int,
    ensemble_path: str | Path,
    sampler: str,
    train_seconds: float = 0.0,
    train_steps: int = 0,
) -> None:
    """:func:`sample_flow_stage` of a flow already loaded, on its device and in its
    precision: its independence MH chains at ``p``, written to ``ensemble_path``.

    ``train_seconds`` and ``train_steps`` are the training's, recorded in the attrs.
    """
    n_chains, per_chain = sampling["n_chains"], sampling["n_samples"] + sampling["burn_in"]
    precision = next(flow.parameters()).dtype
    attrs = {
        **point_attrs(p),
        "sampler": sampler,
        "kind": "flow",
        "seed": seed,
        "versions": io.versions(),
        "train_seconds": train_seconds,
        "train_steps": train_steps,
        "parameters": flow.n_parameters(),
        "n_proposals": int(n_chains * per_chain),
        "precision": str(precision).removeprefix("torch."),
    }
    start = time.perf_counter()
    generator = torch.Generator(device=next(flow.parameters()).device).manual_seed(seed)
    with io.EnsembleWriter(ensemble_path, attrs) as out:
        acceptance, log_w, timing = _flow_chains(flow, p, sampling, generator, seed, out)
        out.attrs.update(
            {
                "acceptance": acceptance,
                "ess": weights.ess(log_w),
                "sample_seconds": time.perf_counter() - start,
                # |Δ log q| against a 2× finer integration (0 for exact coupling flows).
                "discretisation_error": flow.discretisation_error(256, generator),
                **timing.info(),
            }
        )
        attrs = out.attrs
    if attrs["discretisation_error"] > 0.2:
        log.warning(
            "%s at %s: log q is off by up to %.3g against a finer integration; the "
            "Metropolis chain targets a distorted distribution",
            sampler,
            p.key,
            attrs["discretisation_error"],
        )
    log.info(
        "%s at %s: acceptance %.3f, ESS %.3f", sampler, p.key, attrs["acceptance"], attrs["ess"]
    )


def _flow_chains(
    flow: Flow,
    p: PointLike,
    sampling: dict[str, Any],
    generator: torch.Generator,
    seed: int,
    out: io.EnsembleWriter,
) -> tuple[float, np.ndarray, UpdateTime]:
    """Flow proposals and their independence MH chains, into ``out`` batch by batch.

    Proposals come in batches (:func:`fieldflow.mcmc.metropolis.iter_proposals`), chain
    after chain: ``n_chains · (burn_in + n_samples)`` of them, numbered chain · per_chain
    + position. Each batch extends its chain (a
    :class:`~fieldflow.mcmc.metropolis.StreamingChain` carries the current state to the
    next batch, the uniform numbers come from ``default_rng(seed)`` in proposal order);
    its kept chain states and the primaries of its raw proposals (the theory's
    :attr:`~fieldflow.theory.Theory.measurements`) then go to ``out``.

    Returns:
        the acceptance over the kept draws, the log weights of every proposal
        (chain, per_chain), for the ESS, and the seconds per proposal.
    """
    n_chains, n_keep, burn_in = sampling["n_chains"], sampling["n_samples"], sampling["burn_in"]
    per_chain = n_keep + burn_in
    theory = p.theory
    shape = theory.field_shape(p.L)
    probe = primaries.ensemble_primaries(np.zeros((1, 1, *shape), dtype=np.float32), theory=theory)
    per_proposal = {"log_weight": (per_chain,)}
    per_proposal.update({name: (per_chain, *v.shape[2:]) for name, v in probe.items()})
    per_draw = {
        "action": np.float64,
        "log_q": np.float64,
        "log_weight": np.float64,
        "accepted": np.bool_,
    }
    out.start(n_chains, n_keep, shape, per_draw, per_proposal)
    rng = np.random.default_rng(seed)
    watch = Stopwatch(clock_for(next(flow.parameters()).device.type))
    chains = [StreamingChain() for _ in range(n_chains)]
    log_w = np.empty((n_chains, per_chain))
    accepted, first = 0, 0
    batches = iter_proposals(
        flow, p, n_chains * per_chain, sampling["batch_size"], generator, watch
    )
    for batch in batches:
        for chain, where, part in _by_chain(batch, first, per_chain):
            states, accept = chains[chain].extend(part, np.log(rng.uniform(size=len(part))))
            log_w[chain, where] = part.log_weight
            kept = slice(max(burn_in - where.start, 0), None)
            states, accept = states[kept], accept[kept]
            if len(states):
                accepted += int(accept.sum())
                series = {
                    "action": states.action,
                    "log_q": states.log_q,
                    "log_weight": states.log_weight,
                    "accepted": accept,
                }
                out.append(states.phi, series, chain=chain)
            measured = primaries.ensemble_primaries(part.phi[None], theory=theory)
            stored = {k: v[0] for k, v in measured.items()}
            out.append_proposals({"log_weight": part.log_weight, **stored}, chain=chain)
        first += len(batch)
    acceptance = accepted / (n_chains * n_keep) if n_keep else math.nan
    return acceptance, log_w, watch.result()


def _by_chain(
    batch: ProposalBatch, first: int, per_chain: int
) -> Iterator[tuple[int, slice, ProposalBatch]]:
    """Split proposals numbered ``first``… (chain · per_chain + position) by chain.

    Yields (chain, its positions, its proposals of ``batch``).
    """
    offset = 0
    while offset < len(batch):
        chain, position = divmod(first + offset, per_chain)
        size = min(per_chain - position, len(batch) - offset)
        yield chain, slice(position, position + size), batch[offset : offset + size]
        offset += size


def mcmc_stage(
    sampler: str,
    point: Mapping[str, Any] | str | PointLike,
    settings: dict[str, Any],
    seed: int,
    ensemble_path: str | Path,
    progress: bool = True,
) -> None:
    """Run a Markov-chain baseline of :data:`fieldflow.samplers.MCMC` at one point.

    ``point`` is a config point, a point key or a point of any theory (:func:`_point`) that
    the sampler samples (a ValueError naming both otherwise); ``settings`` is the config
    section of the same name. The kept draws go to the store as they are made
    (:class:`fieldflow.io.EnsembleWriter`), so memory does not grow with the run. The
    ensemble's ``sample_seconds`` covers burn-in, tuning and writing; its
    ``seconds_per_update`` (and error), from the sampler's info, times the production
    updates only, batch by batch, thinned away or not; ``thin`` is in the info too.
    """
    run = samplers.mcmc_stream(sampler)
    p = _point(point)
    if not samplers.supports(sampler, p.theory.name):  # the config checks; a direct call too
        raise ValueError(f"{sampler} does not sample {p.theory.name} points such as {p.key}")
    attrs = {
        **point_attrs(p),
        "sampler": sampler,
        "kind": "mcmc",
        "seed": seed,
        "versions": io.versions(),
    }
    start = time.perf_counter()
    with io.EnsembleWriter(ensemble_path, attrs) as out:
        result = run(p, settings, seed, out, progress)
        seconds = time.perf_counter() - start
        out.attrs.update(
            acceptance=result.acceptance,
            sample_seconds=seconds,
            n_proposals=out.sizes["chain"] * out.sizes["draw"],
        )
        clash = out.attrs.keys() & result.info.keys()
        if clash:
            raise ValueError(f"{sampler} reports {sorted(clash)} in its info, which the stage sets")
        out.attrs.update(result.info)
    details = ", ".join(
        f"{key} {value:.4g}" if isinstance(value, float) else f"{key} {value}"
        for key, value in result.info.items()
    )
    log.info(
        "%s at %s: acceptance %.3f, %s, %.1f s", sampler, p.key, result.acceptance, details, seconds
    )
