r"""Whether a chain can support the error bars computed from it.

The Γ-method's error is only as good as its estimate of τ_int, and that needs a run many
times longer than τ_int. A chain that barely moves (a flow whose proposals are almost all
rejected, a sampler stuck in one vacuum) gives a small error around a wrong value, and
only an independent reference would show it. These checks use nothing but the chain
itself, so an estimate is flagged whether or not another sampler ran beside it.

Criteria (each failed one is a reason):

- the run is at least :data:`MIN_RUN_PER_TAU` τ_int long (Wolff, hep-lat/0306017: N ≳ 100 τ);
- a Metropolis chain accepted at least :data:`MIN_ACCEPTED` moves;
- a flow's raw proposals hold at least :data:`MIN_EFFECTIVE` effective samples, ESS·N;
- the magnetization visited both signs: φ → −φ makes ⟨sign M⟩ = 0 exactly at any finite
  volume, so a chain whose ⟨sign M⟩ is more than :data:`MAX_SIGN_PULL` errors from 0 (or
  that never changed sign) has not sampled both halves of the distribution. Chains that
  each stay in one vacuum, some in each, can average ⟨sign M⟩ to about 0; they are caught
  separately: no chain, or fewer than half of the chains, ever changed sign.

The last criterion is the theory's (its :class:`~fieldflow.theory.OrderParameter`): for
U(1) the topological charge Q must change sector along the chains (C: θ → −θ makes
⟨sign Q⟩ = 0), and a χ_t from chains stuck in one topological sector is flagged with the
same checks in Q's words.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from fieldflow.analysis import Estimate, gamma_estimate
from fieldflow.theory import PHI4, OrderParameter

MIN_RUN_PER_TAU = 100
MIN_ACCEPTED = 100
MIN_EFFECTIVE = 100.0
MAX_SIGN_PULL = 4.0


@dataclass(frozen=True)
class Quality:
    """Whether an estimate is reliable, and if not, every reason, joined by "; "."""

    reliable: bool
    reason: str


def chain_problems(
    n_samples: int,
    accepted: int | None = None,
    effective: float | None = None,
    magnetization: np.ndarray | None = None,
    order: OrderParameter = PHI4.order_parameter,
) -> list[str]:
    """Problems of a whole chain, shared by every estimate taken from it.

    Args:
        n_samples: configurations in the estimate (all chains).
        accepted: accepted Metropolis moves (flow proposals, HMC trajectories), if any.
        effective: ESS·N of a flow's raw proposals, if a flow.
        magnetization: the order parameter per configuration, shape (chain, draw), to
            check that the chains change sector: φ⁴'s M (both signs), or with ``order``
            another theory's (U(1)'s Q).
        order: the theory's order parameter: its sectors and the words for them.
    """
    problems = []
    if accepted is not None and accepted < MIN_ACCEPTED:
        problems.append(f"only {accepted} accepted moves in {n_samples} (< {MIN_ACCEPTED})")
    if effective is not None and not effective >= MIN_EFFECTIVE:
        problems.append(f"ESS·N = {effective:.3g} effective proposals (< {MIN_EFFECTIVE:g})")
    if magnetization is not None:
        problems.extend(_sector_problems(np.asarray(magnetization, dtype=np.float64), order))
    return problems


def _sector_problems(values: np.ndarray, order: OrderParameter) -> list[str]:
    """Whether chains of ``values`` (chain, draw) moved between the sectors of ``order``.

    A chain is stuck if its sector never changes; ⟨sign⟩ of the sectors must be 0 within
    :data:`MAX_SIGN_PULL` errors (φ⁴: sectors sign M; U(1): round Q, whose sign is odd
    under charge conjugation too).
    """
    sectors = order.sector(values)
    sign = gamma_estimate(np.sign(sectors))
    stuck = int((sectors == sectors[:, :1]).all(axis=1).sum())
    symbol, never = order.symbol, f"{order.symbol} never changed {order.change}"
    if stuck == len(sectors) and np.unique(sectors[:, 0]).size > 1:
        # Chains stuck in different sectors: ⟨sign⟩ may come out near 0, but no chain ever
        # sampled a crossing, so nothing the chains measure about it is supported.
        return [f"{never} within any of the {len(sectors)} chains"]
    if not sign.error > 0:
        return [never]
    if 2 * stuck > len(sectors):
        # The Γ error sees only the few chains that crossed; the rest add their sector.
        return [f"{never} within {stuck} of the {len(sectors)} chains"]
    if abs(sign.value) > MAX_SIGN_PULL * sign.error:
        return [f"<sign {symbol}> = {sign.value:.3g} ± {sign.error:.2g}, not 0: {order.stuck}"]
    return []


def judge(estimate: Estimate, n_samples: int, problems: list[str]) -> Quality:
    """The verdict on one estimate: its chain's problems plus its own run length vs τ_int."""
    reasons = list(problems)
    if not math.isfinite(estimate.value):
        reasons.append("no estimate")
    elif not math.isfinite(estimate.tau_int):
        reasons.append("no τ_int")
    elif n_samples < MIN_RUN_PER_TAU * estimate.tau_int:
        reasons.append(
            f"run of {n_samples} < {MIN_RUN_PER_TAU} τ_int = "
            f"{MIN_RUN_PER_TAU * estimate.tau_int:.0f}"
        )
    return Quality(not reasons, "; ".join(reasons))
