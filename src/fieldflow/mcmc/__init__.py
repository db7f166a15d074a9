"""Markov-chain samplers: HMC, the embedded-Ising cluster algorithm, and independence
Metropolis–Hastings over flow proposals. Every baseline returns a :class:`ChainResult`."""

from fieldflow.mcmc.chain import ChainResult
from fieldflow.mcmc.hmc import HMCResult, hmc, leapfrog, omelyan, tune_step_size
from fieldflow.mcmc.metropolis import FlowChain, flow_proposals, independence_metropolis

__all__ = [
    "ChainResult",
    "FlowChain",
    "HMCResult",
    "flow_proposals",
    "hmc",
    "independence_metropolis",
    "leapfrog",
    "omelyan",
    "tune_step_size",
]
