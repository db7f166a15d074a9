r"""Independence Metropolis–Hastings over flow proposals (Albergo et al. 2019).

Proposals φ' ~ q are independent of the current state, so the chain accepts φ' with
probability min(1, w(φ')/w(φ)), w = exp(−S − log q). The chain samples p exactly
whatever the flow's quality; a poor flow shows as low acceptance and long τ_int.
Log weights are handled in float64.

Proposals can be drawn all at once (:func:`flow_proposals`) or batch by batch
(:func:`iter_proposals`), with a :class:`StreamingChain` per chain continued across the
batches: the same proposals and the same chain, without holding them all.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from fieldflow.flows import Flow
from fieldflow.mcmc.timing import Stopwatch, UpdateTime, clock_for
from fieldflow.theory import PointLike

#: Proposals are drawn in at least this many timed batches (fewer only if n is smaller).
MIN_TIMED_BATCHES = 8


@dataclass(frozen=True)
class Proposals:
    """Independent flow samples: φ (n, *field_shape) float32, log q and S (n,) float64.

    ``timing``: seconds per proposal (drawing it, its log q and S), from the timed batches.
    """

    phi: np.ndarray
    log_q: np.ndarray
    action: np.ndarray
    timing: UpdateTime

    @property
    def log_weight(self) -> np.ndarray:
        return -self.action - self.log_q


@dataclass(frozen=True)
class ProposalBatch:
    """Consecutive flow samples (or the chain's states after them): φ (k, *field_shape)
    float32, log q and S (k,) float64."""

    phi: np.ndarray
    log_q: np.ndarray
    action: np.ndarray

    @property
    def log_weight(self) -> np.ndarray:
        return -self.action - self.log_q

    def __len__(self) -> int:
        return len(self.log_q)

    def __getitem__(self, index: slice | np.ndarray) -> ProposalBatch:
        return ProposalBatch(self.phi[index], self.log_q[index], self.action[index])


@dataclass(frozen=True)
class FlowChain:
    """State index into the proposals per (chain, draw) and whether that draw accepted."""

    index: np.ndarray
    accepted: np.ndarray

    @property
    def acceptance(self) -> float:
        return float(self.accepted.mean())


def iter_proposals(
    flow: Flow,
    point: PointLike,
    n: int,
    batch_size: int,
    generator: torch.Generator,
    watch: Stopwatch,
) -> Iterator[ProposalBatch]:
    """The n proposals of :func:`flow_proposals`, in its batches, one batch at a time.

    Each batch is timed by ``watch`` up to its copy to the host, not what the caller then
    does with it.
    """
    batch_size = max(1, min(batch_size, math.ceil(n / MIN_TIMED_BATCHES)))
    for start in range(0, n, batch_size):
        size = min(batch_size, n - start)
        with watch.batch(size), torch.no_grad():
            phi, log_q = flow.sample(size, generator=generator)
            s = point.action(phi.double()).cpu().numpy()
            batch = ProposalBatch(phi.float().cpu().numpy(), log_q.double().cpu().numpy(), s)
        yield batch


def flow_proposals(
    flow: Flow, point: PointLike, n: int, batch_size: int, generator: torch.Generator
) -> Proposals:
    """Draw n proposals in batches; φ is kept in float32, S and log w in float64.

    Batches hold at most ``batch_size`` proposals and are at least
    :data:`MIN_TIMED_BATCHES` (each at least one proposal), each timed up to its copy to
    the host (which waits for a GPU), for the seconds per proposal in ``timing``.

    The flow runs in its own dtype. In float32, log q differs from the float64 value of
    the same z by ~1e-5 (measured: std 1e-5, max 6e-5 for trained L = 10 flows of every
    family), five orders of magnitude below the spread of log w, and φ is then exactly
    the configuration stored; ``flow.double()`` removes even that at ~2-4x the cost.
    """
    watch = Stopwatch(clock_for(next(flow.parameters()).device.type))
    batches = list(iter_proposals(flow, point, n, batch_size, generator, watch))
    return Proposals(
        np.concatenate([b.phi for b in batches]),
        np.concatenate([b.log_q for b in batches]),
        np.concatenate([b.action for b in batches]),
        watch.result(),
    )


def _metropolis(
    log_weight: np.ndarray, log_u: np.ndarray, current: float | None
) -> tuple[np.ndarray, np.ndarray, float | None]:
    """One chain over consecutive proposals: accept j if log u_j < log w_j − log w(state).

    ``current`` is the log weight of the state before them, None at the start of the
    chain, where the first proposal is the starting state (accepted). Returns the index
    of the state after each proposal (−1: the state before them), the accepted flags, and
    the log weight of the last state.
    """
    index = np.empty(len(log_weight), dtype=np.int64)
    accepted = np.empty(len(log_weight), dtype=bool)
    state = -1
    for j, (lw, lu) in enumerate(zip(log_weight.tolist(), log_u.tolist(), strict=True)):
        accept = current is None or lu < lw - current
        if accept:
            state, current = j, lw
        index[j], accepted[j] = state, accept
    return index, accepted, current


class StreamingChain:
    """One independence Metropolis–Hastings chain fed its proposals batch by batch.

    It holds its current state (φ, log q, S) only, so that a batch's proposals can be
    dropped once :meth:`extend` has run over them; the first proposal it is given is the
    starting state. Fed the proposals of a row of :func:`independence_metropolis` with
    the same uniform numbers, in any batches, it makes the same chain.
    """

    def __init__(self) -> None:
        self._state: ProposalBatch | None = None
        self._log_weight: float | None = None

    def extend(
        self, proposals: ProposalBatch, log_u: np.ndarray
    ) -> tuple[ProposalBatch, np.ndarray]:
        """The states after each of ``proposals`` and whether each was accepted.

        Args:
            proposals: the next k proposals of this chain.
            log_u: log of k uniform numbers, one per proposal.
        """
        index, accepted, self._log_weight = _metropolis(
            proposals.log_weight, np.asarray(log_u), self._log_weight
        )
        pool = proposals
        if self._state is not None:  # index −1 is the state before this batch
            pool = ProposalBatch(
                *(
                    np.concatenate([getattr(self._state, f), getattr(proposals, f)])
                    for f in ("phi", "log_q", "action")
                )
            )
            index = index + 1
        states = pool[index]
        if len(states):
            self._state = states[-1:]
        return states, accepted


def independence_metropolis(log_weight: np.ndarray, rng: np.random.Generator) -> FlowChain:
    """Run one independence MH chain per row of proposal log weights.

    Args:
        log_weight: log w = −S − log q of the proposals, shape (chain, n) float64.
        rng: source of the uniform numbers of the accept step, drawn (chain, n) in C
            order, one per proposal (the first proposal's unused).
    Returns:
        the index (into each row) of the state after every proposal, and whether each
        proposal was accepted; the first proposal of each row is the starting state.
    """
    log_weight = np.asarray(log_weight, dtype=np.float64)
    n_chains, n = log_weight.shape
    log_u = np.log(rng.uniform(size=(n_chains, n)))
    index = np.zeros((n_chains, n), dtype=np.int64)
    accepted = np.zeros((n_chains, n), dtype=bool)
    for chain in range(n_chains):
        index[chain], accepted[chain], _ = _metropolis(log_weight[chain], log_u[chain], None)
    return FlowChain(index, accepted)
