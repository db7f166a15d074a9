"""Markov-chain samplers: HMC and independence Metropolis–Hastings over flow proposals."""

from fieldflow.mcmc.hmc import HMCResult, hmc, leapfrog, omelyan, tune_step_size
from fieldflow.mcmc.metropolis import FlowChain, flow_proposals, independence_metropolis

__all__ = [
    "FlowChain",
    "HMCResult",
    "flow_proposals",
    "hmc",
    "independence_metropolis",
    "leapfrog",
    "omelyan",
    "tune_step_size",
]
