"""Every sampler of a study by its name in the tables, with its kind: ``flow`` or ``mcmc``.

Code that must tell flows from Markov chains asks :func:`kind`, never compares names. A new
Markov-chain baseline is one module under :mod:`fieldflow.mcmc` with a
``stream(point, settings, seed, sink, progress) -> ChainSummary`` function that puts its
kept draws into a :class:`~fieldflow.mcmc.chain.DrawSink`, an entry in :data:`MCMC`, and a
section of the same name in the config schema.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import partial
from typing import Any, Literal

from fieldflow.flows import FAMILIES
from fieldflow.lattice import Point
from fieldflow.mcmc.chain import ChainResult, ChainStream, collect
from fieldflow.mcmc.cluster import stream as cluster_stream
from fieldflow.mcmc.hmc import stream as hmc_stream

Kind = Literal["flow", "mcmc"]
MCMCRunner = Callable[[Point, dict[str, Any], int, bool], ChainResult]

#: Markov-chain baselines. ``hmc`` and ``hmc_tuned`` are one algorithm with two settings
#: sections: a fixed trajectory length, and one chosen per point from ξ₂ in burn-in.
MCMC: dict[str, ChainStream] = {
    "hmc": hmc_stream,
    "hmc_tuned": hmc_stream,
    "cluster": cluster_stream,
}


def names() -> list[str]:
    """Every known sampler name: the flow families, then the Markov-chain baselines."""
    return [*FAMILIES, *MCMC]


def kind(name: str) -> Kind:
    """``flow`` for a flow family with independence Metropolis, ``mcmc`` for a Markov chain."""
    if name in FAMILIES:
        return "flow"
    if name in MCMC:
        return "mcmc"
    raise ValueError(f"unknown sampler {name!r}; known: {', '.join(names())}")


def kinds(samplers: Iterable[str]) -> dict[str, Kind]:
    """``{name: kind}`` of each name."""
    return {name: kind(name) for name in samplers}


def mcmc_stream(name: str) -> ChainStream:
    """The ``stream`` function of a Markov-chain baseline."""
    if kind(name) != "mcmc":
        raise ValueError(f"{name!r} is a flow, not a Markov-chain baseline")
    return MCMC[name]


def mcmc_runner(name: str) -> MCMCRunner:
    """A Markov-chain baseline with its draws kept in memory, as one ``ChainResult``."""
    return partial(collect, mcmc_stream(name))
