r"""The guard of training: an integration check that refines the ODE, and the best state.

A continuous flow's log q is exact only to its integrator's error, and training can learn
a vector field stiff enough to exploit it: with fixed-step RK4 the loss then falls below
its bound −log Z on a fictitious log q. At every measurement the guard compares log q with
a twice-finer integration (:meth:`~fieldflow.flows.Flow.discretisation_error`); beyond the
limit it refines every ODE layer (RK4: twice the steps; dopri5: tolerances / 100) and
checks again, a bounded number of times in a run. A state that passes has its ESS
measured, and the best by ESS is kept, so that a run never returns a flow worse than the
best state it has measured (:meth:`Guard.settle`).
"""

from __future__ import annotations

import copy
import logging
import math
from dataclasses import dataclass
from typing import Any

import torch

from fieldflow.flows import Flow
from fieldflow.theory import PointLike
from fieldflow.weights import ess

log = logging.getLogger(__name__)


@torch.no_grad()
def flow_ess(flow: Flow, point: PointLike, n: int, generator: torch.Generator) -> float:
    """ESS per sample, (Σw)²/(N Σw²), of n fresh proposals; weights in float64."""
    phi, log_q = flow.sample(n, generator=generator)
    log_w = -point.action(phi.double()) - log_q.double()
    return ess(log_w.cpu().numpy())


def ode_layers(flow: Flow) -> list[torch.nn.Module]:
    """The layers of ``flow`` that integrate an ODE: those that expose ``refined()``."""
    return [layer for layer in flow.layers if getattr(layer, "refined", None) is not None]


@dataclass(frozen=True)
class Snapshot:
    """A measured state: parameters, its ODE layers' ``integration``, ESS, step."""

    model: dict
    integration: list[dict[str, Any]]
    ess: float
    step: int

    @property
    def name(self) -> str:
        """``initial`` for the state before the first step, else ``best``."""
        return "initial" if self.step == 0 else "best"


class Guard:
    """Checks, refines and remembers the states of one training run of ``flow``.

    Args:
        flow: the flow being trained (its ODE layers are refined in place).
        point: the target, for the ESS.
        limit: largest tolerated |Δ log q| over 64 samples.
        max_refinements: refinements allowed in the run.
        ess_samples: proposals per ESS measurement.
        generator: noise of the checks and ESS measurements.
    """

    def __init__(
        self,
        flow: Flow,
        point: PointLike,
        limit: float,
        max_refinements: int,
        ess_samples: int,
        generator: torch.Generator,
    ) -> None:
        self.flow, self.point, self.generator = flow, point, generator
        self.limit, self.max_refinements, self.ess_samples = limit, max_refinements, ess_samples
        self.odes = ode_layers(flow)
        self.best: Snapshot | None = None
        self.refinements = 0
        self.error = 0.0

    def integration(self) -> dict[str, Any]:
        """The ODE's integration settings now (of the first ODE layer; empty without)."""
        return dict(self.odes[0].integration) if self.odes else {}

    def snapshot(self, ess_value: float, step: int) -> Snapshot:
        integration = [ode.integration for ode in self.odes]
        return Snapshot(copy.deepcopy(self.flow.state_dict()), integration, ess_value, step)

    def restore(self, snapshot: Snapshot) -> None:
        self.flow.load_state_dict(snapshot.model)
        for ode, settings in zip(self.odes, snapshot.integration, strict=True):
            ode.integration = settings

    def measure(self, step: int, generator: torch.Generator | None = None) -> float | None:
        """ESS of the current state, or None if it fails the check with no refinement left.

        A passing state becomes the best if its ESS is at least the best's (a tie goes to
        the later state). ``generator`` replaces the guard's own for this measurement.
        """
        generator = generator or self.generator
        self.error = self.flow.discretisation_error(64, generator)
        left = self.max_refinements if self.odes else 0
        while not self.error <= self.limit and self.refinements < left:
            for ode in self.odes:
                ode.refine()
            self.refinements += 1
            log.warning(
                "step %d: log q off by %.3g against a twice finer integration; refined to %s",
                step,
                self.error,
                self.integration(),
            )
            self.error = self.flow.discretisation_error(64, generator)
        if not self.error <= self.limit:
            return None
        value = flow_ess(self.flow, self.point, self.ess_samples, generator)
        # A NaN ESS never displaces a finite one, and a NaN best is always replaced.
        if self.best is None or math.isnan(self.best.ess) or value >= self.best.ess:
            self.best = self.snapshot(value, step)
        return value

    def settle(
        self, step: int, value: float | None, refined: bool, probe: torch.Generator
    ) -> tuple[str, Snapshot] | None:
        """Leave the flow in the state to return; that state's name and snapshot.

        Args:
            step: the last step.
            value: the last state's ESS, None if it failed the check.
            refined: whether the last state's check refined the ODE.
            probe: noise to measure an earlier state again.
        Returns:
            (``last`` or ``refined``, the last state) if it passed and no earlier state
            measured better; otherwise (``best`` or ``initial``, the best measured state).
            An earlier state with a higher recorded ESS is measured again on fresh samples
            (the largest of many noisy measurements is biased up) and must still beat the
            last. None, with the flow left as it is, if no state ever passed the check.
        """
        if value is not None:
            name = "refined" if refined else "last"
            if self.best.step == step:
                return name, self.best
            last = self.snapshot(value, step)
            self.restore(self.best)
            again = flow_ess(self.flow, self.point, self.ess_samples, probe)
            if again <= value:
                self.restore(last)
                return name, last
            return self.best.name, Snapshot(**{**vars(self.best), "ess": again})
        if self.best is None:
            return None
        self.restore(self.best)
        return self.best.name, self.best

    def state(self) -> dict[str, Any]:
        """What a checkpoint keeps of the guard."""
        best = None if self.best is None else dict(vars(self.best))
        integration = [ode.integration for ode in self.odes]
        return {"best": best, "refinements": self.refinements, "integration": integration}

    def load(self, state: dict[str, Any]) -> None:
        """Take up a checkpoint's :meth:`state` (absent from an older fieldflow's)."""
        for ode, settings in zip(self.odes, state.get("integration", []), strict=False):
            ode.integration = settings
        self.refinements = state.get("refinements", 0)
        best = state.get("best")
        self.best = None if best is None else Snapshot(**best)
