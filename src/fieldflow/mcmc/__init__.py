"""Markov-chain samplers: HMC, the embedded-Ising cluster algorithm, and independence
Metropolis–Hastings over flow proposals. Every baseline streams its draws into a
:class:`DrawSink` and returns a :class:`ChainSummary`, or a :class:`ChainResult` in memory."""

from fieldflow.mcmc.chain import ChainResult, ChainSummary, DrawSink
from fieldflow.mcmc.hmc import HMCResult, HMCRun, hmc, hmc_stream, leapfrog, omelyan, tune_step_size
from fieldflow.mcmc.metropolis import FlowChain, flow_proposals, independence_metropolis

__all__ = [
    "ChainResult",
    "ChainSummary",
    "DrawSink",
    "FlowChain",
    "HMCResult",
    "HMCRun",
    "flow_proposals",
    "hmc",
    "hmc_stream",
    "independence_metropolis",
    "leapfrog",
    "omelyan",
    "tune_step_size",
]
