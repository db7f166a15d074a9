"""A flow family: how it builds a flow, the theories it samples, what it asks of the
lattice, how it grows with L.

Code that must treat families differently (the config's checks, transfer to a larger
lattice) asks the family, never compares names.
"""

from __future__ import annotations

from typing import Any, ClassVar

from fieldflow.flows.base import Flow


class FlowFamily:
    """One flow family, by its sampler name in every table; called like its ``build``."""

    #: The sampler name in every table.
    name: ClassVar[str]
    #: Whether its flows need an even L (checkerboard masks tile the torus only then).
    requires_even_L: ClassVar[bool] = False
    #: Whether its flows integrate an ODE, the only ones with a kinetic energy to regularise.
    integrates_ode: ClassVar[bool] = False
    #: The theories (:data:`fieldflow.theory.THEORIES` names) whose fields its flows
    #: sample: φ⁴'s real scalar field (batch, L, L) unless the family says otherwise.
    theories: ClassVar[tuple[str, ...]] = ("phi4",)

    def supports(self, theory: str) -> bool:
        """Whether its flows sample the fields of the theory called ``theory``."""
        return theory in self.theories

    @property
    def L_multiple(self) -> int:
        """Its flows take the L that are multiples of this: 2 for checkerboard masks."""
        return 2 if self.requires_even_L else 1

    def build(self, L: int, **hyperparameters: Any) -> Flow:  # pragma: no cover
        """An untrained flow for an L×L lattice."""
        raise NotImplementedError

    def __call__(self, L: int, **hyperparameters: Any) -> Flow:
        return self.build(L, **hyperparameters)

    def section_problems(self, section: dict[str, Any]) -> list[tuple[str, str]]:
        """(key, problem) of each hyperparameter in the family's config section that its
        flows cannot take; the schema has checked the types."""
        return []

    def transfer(self, flow: Flow, L_new: int, hyperparameters: dict[str, Any]) -> Flow:
        """A flow for an L_new × L_new lattice initialised from one trained at a smaller L.

        The flow must have the layers ``hyperparameters`` build (a ValueError names the
        parameters that differ); :meth:`carry_over` moves the trained state.
        """
        if L_new < flow.L:
            raise ValueError(f"transfer goes to a larger lattice, got L={flow.L} -> {L_new}")
        ref = next(flow.parameters())
        target = self.build(L_new, **hyperparameters).to(dtype=ref.dtype, device=ref.device)
        parameters = dict(flow.named_parameters())
        missing = set(dict(target.named_parameters())) - set(parameters)
        if missing:
            raise ValueError(
                f"cannot transfer {self.name}: hyperparameters differ ({sorted(missing)})"
            )
        return self.carry_over(flow, target)

    def carry_over(self, flow: Flow, target: Flow) -> Flow:
        """``target``, built for the larger lattice, with ``flow``'s trained state.

        By default every parameter as it is, for families whose parameters do not depend
        on L (convolutions, also the gauge flow's); buffers such as masks stay those built
        for the new L.
        """
        target.load_state_dict({k: v.detach() for k, v in flow.named_parameters()}, strict=False)
        return target
