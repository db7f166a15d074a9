r"""What training minimises, and the settings of a training run.

The reverse Kullback–Leibler divergence up to the constant log Z (Albergo et al. 2019),

    L(θ) = E_{φ∼q_θ} [ log q_θ(φ) + S(φ) ]  ≥  −log Z,

estimated on a fresh batch each step, by its reparameterisation gradient or its path
gradient (Vaitl et al. arXiv:2207.08219), optionally with the kinetic energy of an ODE's
paths added (Finlay et al. arXiv:2002.02798). The warm-up minimises the same loss for a
flow's global layers alone while its ODE layers are still the identity.
"""

from __future__ import annotations

import copy
import logging
import math
from dataclasses import asdict, dataclass

import torch
from torch import Tensor

from fieldflow.errors import FieldflowError
from fieldflow.flows import Flow
from fieldflow.guard import ode_layers
from fieldflow.theory import PointLike

log = logging.getLogger(__name__)

ESTIMATORS = ("plain", "path")


@dataclass(frozen=True)
class TrainConfig:
    """Budget and optimiser settings; ``steps`` or ``max_seconds`` (or both) bound the run."""

    steps: int | None = 2500
    max_seconds: float | None = None
    batch_size: int = 64
    lr: float = 1e-3
    lr_schedule: str = "cosine"
    ess_every: int = 100
    ess_samples: int = 1024
    checkpoint_every: int = 250
    grad_clip: float | None = 100.0
    max_recoveries: int = 5
    #: Largest tolerated |Δ log q| between a continuous flow and its 2× finer integration,
    #: checked at every ESS measurement and at the end; beyond it the ODE is refined.
    max_discretisation_error: float = 0.2
    #: Doublings of the ODE's steps (RK4: n_steps × 2; dopri5: tolerances / 100) the check
    #: may make in one run; once they are spent, a failed check restores a measured state.
    max_refinements: int = 2
    #: Steps of the warm-up of the global layers (see the module docstring); 0: none.
    warmup_steps: int = 0
    #: Weight of the kinetic energy ∫₀¹ ‖v‖² dt / V of the ODE's paths in the loss; 0: off.
    kinetic_weight: float = 0.0
    #: Gradient estimator of the reverse KL: "plain" (reparameterisation) or "path".
    estimator: str = "plain"

    def __post_init__(self) -> None:
        if self.steps is None and self.max_seconds is None:
            raise ValueError("training needs a budget: set steps, max_seconds, or both")
        if self.lr_schedule not in ("constant", "cosine"):
            raise ValueError(f"lr_schedule must be 'constant' or 'cosine', got {self.lr_schedule}")
        if self.warmup_steps < 0:
            raise ValueError(f"warmup_steps must be >= 0, got {self.warmup_steps}")
        if self.max_refinements < 0:
            raise ValueError(f"max_refinements must be >= 0, got {self.max_refinements}")
        if not (math.isfinite(self.kinetic_weight) and self.kinetic_weight >= 0):
            raise ValueError(
                f"kinetic_weight must be a finite number >= 0, got {self.kinetic_weight}"
            )
        if self.estimator not in ESTIMATORS:
            raise ValueError(f"estimator must be one of {ESTIMATORS}, got {self.estimator!r}")

    def progress(self, step: int, seconds: float) -> float:
        """Fraction of the budget used, in [0, 1]: the larger of steps and seconds."""
        fractions = [0.0]
        if self.steps is not None:
            fractions.append(step / self.steps)
        if self.max_seconds is not None:
            fractions.append(seconds / self.max_seconds)
        return min(1.0, max(fractions))

    def lr_at(self, step: int, seconds: float) -> float:
        """Learning rate: constant, or cosine-annealed from lr to lr/100 over the budget."""
        if self.lr_schedule == "constant":
            return self.lr
        cosine = 0.5 * (1.0 + math.cos(math.pi * self.progress(step, seconds)))
        return self.lr * (0.01 + 0.99 * cosine)


def config_from_dict(settings: dict) -> TrainConfig:
    """TrainConfig from the ``training`` section of a study config."""
    known = set(asdict(TrainConfig()).keys())
    return TrainConfig(**{k: v for k, v in settings.items() if k in known})


class TrainingDiverged(FieldflowError, RuntimeError):
    """The loss or the integration check failed more often than the recovery budget
    allows, or no state of the run passed the integration check."""


def reverse_kl(
    flow: Flow, point: PointLike, config: TrainConfig, generator: torch.Generator
) -> tuple[Tensor, Tensor]:
    r"""The objective of one training step and its reverse-KL estimate, on a fresh batch.

    KL = mean over the batch of log q(φ) + S(φ), φ = f(z), an estimate of KL(q‖p) − log Z.
    The objective has the value KL and its reparameterisation gradient (``plain``), or,
    with ``estimator="path"``, log q evaluated by the inverse flow with its parameters held
    fixed: its gradient is the path gradient E[∇_φ(log q + S) · ∂φ/∂θ], without the score
    term of zero mean (Vaitl et al. arXiv:2207.08219), at the cost of the inverse pass.
    With ``kinetic_weight`` λ_K the objective gains λ_K · mean K, K = ∫₀¹ ‖v‖² dt / V of
    the ODE's paths (Finlay et al. arXiv:2002.02798).

    Returns:
        (objective, KL), scalars; the history records KL.
    """
    if config.kinetic_weight:
        phi, log_q, energy = flow.sample_with_kinetic(config.batch_size, generator)
    else:
        phi, log_q = flow.sample(config.batch_size, generator=generator)
    s = point.action(phi)
    kl = (log_q + s).mean()
    objective = kl
    if config.estimator == "path":
        frozen = copy.deepcopy(flow).requires_grad_(False)
        objective = (frozen.log_prob(phi) + s).mean()
    if config.kinetic_weight:
        objective = objective + config.kinetic_weight * energy.mean()
    return objective, kl


def warm_up(flow: Flow, point: PointLike, config: TrainConfig, generator: torch.Generator) -> int:
    """Train the flow's global layers alone while its ODE layers are the identity.

    The global layers are those without ``refined`` (no ODE to integrate); the ODE layers
    must all be the identity (``is_identity()``), so that the flow of the global layers
    alone is the whole flow. Adam at the constant rate ``config.lr`` for
    ``config.warmup_steps`` steps of ``config.batch_size`` samples. Returns the steps taken:
    0 when there is nothing to warm up (no global or no ODE layer, or an ODE layer that has
    already learnt something, as after a transfer).
    """
    odes = ode_layers(flow)
    head = [layer for layer in flow.layers if layer not in odes]
    if not (config.warmup_steps and odes and head) or not all(o.is_identity() for o in odes):
        return 0
    alone = Flow(flow.L, head)
    optimizer = torch.optim.Adam(alone.parameters(), lr=config.lr)
    for _ in range(config.warmup_steps):
        phi, log_q = alone.sample(config.batch_size, generator=generator)
        loss = (log_q + point.action(phi)).mean()
        if not torch.isfinite(loss):
            raise TrainingDiverged("loss non-finite in the warm-up of the global layers")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if config.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(alone.parameters(), config.grad_clip)
        optimizer.step()
    log.info("warm-up: %d steps of the global layers, loss %.4f", config.warmup_steps, loss.item())
    return config.warmup_steps
