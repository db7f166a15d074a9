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
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from fieldflow.analysis import Estimate, gamma_estimate

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
) -> list[str]:
    """Problems of a whole chain, shared by every estimate taken from it.

    Args:
        n_samples: configurations in the estimate (all chains).
        accepted: accepted Metropolis moves (flow proposals, HMC trajectories), if any.
        effective: ESS·N of a flow's raw proposals, if a flow.
        magnetization: M per configuration, shape (chain, draw), to check both signs.
    """
    problems = []
    if accepted is not None and accepted < MIN_ACCEPTED:
        problems.append(f"only {accepted} accepted moves in {n_samples} (< {MIN_ACCEPTED})")
    if effective is not None and not effective >= MIN_EFFECTIVE:
        problems.append(f"ESS·N = {effective:.3g} effective proposals (< {MIN_EFFECTIVE:g})")
    if magnetization is not None:
        signs = np.sign(np.asarray(magnetization, dtype=np.float64))
        sign = gamma_estimate(signs)
        stuck = int((signs == signs[:, :1]).all(axis=1).sum())
        if stuck == len(signs) and np.unique(signs[:, 0]).size > 1:
            # Chains stuck in different vacua: ⟨sign M⟩ may come out near 0, but no chain
            # ever sampled a crossing, so nothing the chains measure about it is supported.
            problems.append(f"M never changed sign within any of the {len(signs)} chains")
        elif not sign.error > 0:
            problems.append("M never changed sign")
        elif 2 * stuck > len(signs):
            # The Γ error sees only the few chains that crossed; the rest add their vacuum.
            problems.append(f"M never changed sign within {stuck} of the {len(signs)} chains")
        elif abs(sign.value) > MAX_SIGN_PULL * sign.error:
            problems.append(
                f"<sign M> = {sign.value:.3g} ± {sign.error:.2g}, not 0: stuck in one vacuum"
            )
    return problems


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
