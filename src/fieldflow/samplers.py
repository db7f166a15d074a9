"""Every sampler of a study by its name in the tables, with its kind: ``flow`` or ``mcmc``.

Code that must tell flows from Markov chains asks :func:`kind`, never compares names. A new
Markov-chain baseline is one module under :mod:`fieldflow.mcmc` with a
``stream(point, settings, seed, sink, progress) -> ChainSummary`` function that puts its
kept draws into a :class:`~fieldflow.mcmc.chain.DrawSink`, an entry in :data:`MCMC` and in
:data:`MCMC_THEORIES`, and a section of the same name in the config schema.

Every sampler says which theories it samples (:func:`supports`): a flow family by its
:attr:`~fieldflow.flows.FlowFamily.theories`, a Markov chain by :data:`MCMC_THEORIES`.
The config refuses a study that lists a sampler for a point of a theory it does not sample.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import partial
from typing import Any, Literal

from fieldflow.flows import FAMILIES
from fieldflow.mcmc.chain import ChainResult, ChainStream, collect
from fieldflow.mcmc.cluster import stream as cluster_stream
from fieldflow.mcmc.hmc import stream as hmc_stream
from fieldflow.theory import PointLike

Kind = Literal["flow", "mcmc"]
MCMCRunner = Callable[[PointLike, dict[str, Any], int, bool], ChainResult]

#: Markov-chain baselines. ``hmc`` and ``hmc_tuned`` are one algorithm with two settings
#: sections: a fixed trajectory length, and one chosen per point from ξ₂ in burn-in.
MCMC: dict[str, ChainStream] = {
    "hmc": hmc_stream,
    "hmc_tuned": hmc_stream,
    "cluster": cluster_stream,
}

#: The theories each Markov-chain baseline samples. HMC needs only a point's action and
#: force; the cluster update flips the signs of a real scalar field; hmc_tuned chooses its
#: trajectory length from φ⁴'s correlation length ξ₂.
MCMC_THEORIES: dict[str, tuple[str, ...]] = {
    "hmc": ("phi4", "u1"),
    "hmc_tuned": ("phi4",),
    "cluster": ("phi4",),
}

#: Settings of a Markov-chain section that only some theories allow: (key, value) ↦
#: theories. ``trajectory_length: auto`` measures ξ₂ of a φ⁴ field in burn-in.
SETTING_THEORIES: dict[tuple[str, Any], tuple[str, ...]] = {
    ("trajectory_length", "auto"): ("phi4",),
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


def supports(name: str, theory: str) -> bool:
    """Whether the sampler ``name`` samples points of the theory called ``theory``: a flow
    family by :meth:`~fieldflow.flows.FlowFamily.supports`, a Markov chain by
    :data:`MCMC_THEORIES`."""
    if kind(name) == "flow":
        return FAMILIES[name].supports(theory)
    return theory in MCMC_THEORIES[name]


def settings_problems(name: str, section: dict[str, Any], theory: str) -> list[tuple[str, str]]:
    """(key, problem) of each setting in a Markov chain's ``section`` that points of
    ``theory`` do not allow (:data:`SETTING_THEORIES`)."""
    return [
        (key, f"{value} is for {' and '.join(allowed)} points only")
        for (key, value), allowed in SETTING_THEORIES.items()
        if section.get(key) == value and theory not in allowed
    ]


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
