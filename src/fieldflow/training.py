r"""Reverse-KL training of a flow towards p(φ) ∝ exp(−S(φ)) (Albergo et al. 2019).

The loss is the reverse Kullback–Leibler divergence up to the constant log Z,

    L(θ) = E_{φ∼q_θ} [ log q_θ(φ) + S(φ) ]  ≥  −log Z,

estimated on a fresh batch each step and minimised with Adam. Training stops after a
budget in steps and/or wall-clock seconds, keeps a history (step, seconds, loss, ESS on
fresh samples), and writes a checkpoint from which a killed run resumes where it left off.

A warm-up (``warmup_steps``) may come first: the same loss for the flow's global layers
alone (those that integrate no ODE, such as the cnf's zero-mode spline) while every ODE
layer is still the identity. It costs a few milliseconds a step and lets the global layers
find the ordered phase's two vacua before the local vector field starts to learn.

A continuous flow's log q is exact only to its integrator's error, and training can learn a
vector field stiff enough to exploit it. At every ESS measurement (and at the end) log q is
compared with a twice-finer integration; beyond ``max_discretisation_error`` the ODE's steps
are doubled (``max_refinements`` times in a run) before the run falls back on a stored
state. The run returns its last state unless an earlier state that passed the check
measures better again on fresh samples, or the last fails even refined; then the best
passing one (``TrainResult.final_state`` says which). ``kinetic_weight`` adds the kinetic energy
of the ODE's paths to the loss (Finlay et al. arXiv:2002.02798), which keeps them straight
and cheap to integrate; ``estimator="path"`` uses the path gradient of the reverse KL
(Vaitl et al. arXiv:2207.08219).
"""

from __future__ import annotations

import copy
import glob
import logging
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import Tensor
from tqdm.auto import tqdm

from fieldflow.errors import FieldflowError
from fieldflow.flows import Flow, ModelFileError, tensor_digest
from fieldflow.guard import Guard, Snapshot, ode_layers
from fieldflow.io import remove_stale_partials
from fieldflow.lattice import Point, action

log = logging.getLogger(__name__)

HISTORY_COLUMNS = ("step", "seconds", "loss", "ess")
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
            raise ValueError(f"kinetic_weight must be a finite number >= 0, got "
                             f"{self.kinetic_weight}")  # fmt: skip
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


@dataclass(frozen=True)
class TrainResult:
    """``steps`` of the main loop, ``warmup_steps`` taken before it; ``seconds`` of both.

    ``final_state`` says which state the flow was left in: ``last`` (the state after the
    last step), ``refined`` (the same, its ODE refined by the final check), ``best`` (an
    earlier measured state with a higher ESS, or the last failed the check) or
    ``initial`` (the state before the first step: nothing trained measured better);
    ``final_step`` and ``final_ess`` are that state's step and measured ESS.
    ``hyperparameter_override`` holds the integration settings of the returned flow's ODE
    (``n_steps``, ``rtol``, ``atol``; empty without one): merged into the family's
    hyperparameters, they rebuild the flow as it was trained and measured.
    """

    steps: int
    seconds: float
    history: list[dict[str, float]]
    recoveries: int
    warmup_steps: int = 0
    refinements: int = 0
    final_state: str = "last"
    final_step: int = 0
    final_ess: float = math.nan
    hyperparameter_override: dict[str, Any] = field(default_factory=dict)


class TrainingDiverged(FieldflowError, RuntimeError):
    """The loss or the integration check failed more often than the recovery budget
    allows, or no state of the run passed the integration check."""


def reverse_kl(
    flow: Flow, point: Point, config: TrainConfig, generator: torch.Generator
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
    s = action(phi, point.s, point.lam)
    kl = (log_q + s).mean()
    objective = kl
    if config.estimator == "path":
        frozen = copy.deepcopy(flow).requires_grad_(False)
        objective = (frozen.log_prob(phi) + s).mean()
    if config.kinetic_weight:
        objective = objective + config.kinetic_weight * energy.mean()
    return objective, kl


def warm_up(flow: Flow, point: Point, config: TrainConfig, generator: torch.Generator) -> int:
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
        loss = (log_q + action(phi, point.s, point.lam)).mean()
        if not torch.isfinite(loss):
            raise TrainingDiverged("loss non-finite in the warm-up of the global layers")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if config.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(alone.parameters(), config.grad_clip)
        optimizer.step()
    log.info("warm-up: %d steps of the global layers, loss %.4f", config.warmup_steps,
             loss.item())  # fmt: skip
    return config.warmup_steps


def _state(
    flow, optimizer, generators, step, seconds, history, recoveries, fingerprint, guard
):
    """Everything a resumed run needs to continue exactly where this one stopped.

    ``generators``: the training noise and the guard's probe, whose states both decide
    what a resumed run returns.
    """
    generator, probe = generators
    return {
        "model": flow.state_dict(),
        "optimizer": optimizer.state_dict(),
        "generator": generator.get_state(),
        "probe": probe.get_state(),
        "step": step,
        "seconds": seconds,
        "history": history,
        "recoveries": recoveries,
        "fingerprint": fingerprint,
        **guard.state(),
    }


def _write_checkpoint(path: Path, state: dict) -> None:
    """Write ``state`` atomically with :func:`tensor_digest` of all its tensors.

    A partial file of a writer killed before this process started is removed first.
    """
    tmp = path.with_name(path.name + ".partial")
    state = {**state, "sha256": tensor_digest(state)}
    remove_stale_partials(path.parent, glob.escape(tmp.name))
    for attempt in (1, 2):
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            torch.save(state, tmp)
            break
        except (FileNotFoundError, RuntimeError):
            # A job finishing just now may remove the empty directory between mkdir and
            # save (io.discard of its own checkpoint): make it again, once.
            if attempt == 2 or path.parent.is_dir():
                raise
    tmp.replace(path)


def _read_checkpoint(path: Path, fingerprint: str) -> dict | None:
    """The state saved in ``path``, or None if it belongs to other settings.

    A checkpoint that cannot be loaded, or whose tensors (model, optimizer, generator) do
    not match their recorded hash, is a :class:`ModelFileError`; one without a hash
    (written by an older fieldflow) is used with a warning.
    """
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        recorded = state.pop("sha256", None)
        actual = tensor_digest(state)
    except Exception as err:
        raise ModelFileError(
            f"checkpoint {path} is corrupt ({' '.join(str(err).split())}); delete it to train "
            "from scratch"
        ) from err
    if recorded is None:
        log.warning("checkpoint %s records no hash of its tensors (written by an older "
                    "fieldflow): they cannot be verified", path)  # fmt: skip
    elif actual != recorded:
        raise ModelFileError(
            f"checkpoint {path} is corrupt (its tensors do not match their recorded hash); "
            "delete it to train from scratch"
        )
    if state.get("fingerprint") != fingerprint:
        log.warning("checkpoint %s belongs to other settings; starting from scratch", path)
        return None
    return state


def train(
    flow: Flow,
    point: Point,
    config: TrainConfig,
    seed: int,
    checkpoint: str | Path | None = None,
    fingerprint: str = "",
    progress: bool = True,
) -> TrainResult:
    """Train ``flow`` in place by reverse KL; resume from ``checkpoint`` if it exists.

    The state before the first step is measured like the later ones (on a generator of
    its own, so that the training noise does not depend on it), and the flow is left in
    the best measured state (:meth:`fieldflow.guard.Guard.settle`, ``TrainResult.final_state``).

    Args:
        flow: the flow, already on its device.
        point: the (L, s, λ) of the target.
        config: budget and optimiser settings.
        seed: seeds the noise of every step, so a run is reproducible.
        checkpoint: path written every ``checkpoint_every`` steps and read at start.
        fingerprint: identifies the settings; a checkpoint of other settings is ignored.
    Raises:
        ValueError: ``kinetic_weight`` for a flow without an ODE.
        TrainingDiverged: the recoveries are spent, or no state passed the check.
    """
    if config.kinetic_weight and not ode_layers(flow):
        raise ValueError(
            f"training.kinetic_weight = {config.kinetic_weight:g} needs a flow that integrates "
            "an ODE (the cnf); set it in cnf.training, or 0 for this flow"
        )
    device = next(flow.parameters()).device
    generator = torch.Generator(device=device).manual_seed(seed)
    probe = torch.Generator(device=device).manual_seed(seed + 1)
    optimizer = torch.optim.Adam(flow.parameters(), lr=config.lr)
    guard = Guard(flow, point, config.max_discretisation_error, config.max_refinements,
                  config.ess_samples, generator)  # fmt: skip
    step, elapsed, history, recoveries = 0, 0.0, [], 0
    checkpoint = Path(checkpoint) if checkpoint is not None else None
    if checkpoint is not None and checkpoint.exists():
        state = _read_checkpoint(checkpoint, fingerprint)
        if state is not None:
            flow.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            generator.set_state(state["generator"])
            if "probe" in state:  # checkpoints before session 5 lack it
                probe.set_state(state["probe"])
            step, elapsed = state["step"], state["seconds"]
            history, recoveries = state["history"], state["recoveries"]
            guard.load(state)
            log.info("resumed from %s at step %d (%.1f s)", checkpoint, step, elapsed)

    warm_start = time.perf_counter()
    warmed = warm_up(flow, point, config, generator) if step == 0 else 0
    elapsed += time.perf_counter() - warm_start if warmed else 0.0
    start = time.perf_counter() - elapsed
    if step == 0:
        guard.measure(0, probe)
        elapsed = time.perf_counter() - start
    last_good = copy.deepcopy((flow.state_dict(), optimizer.state_dict()))
    bar = tqdm(total=config.steps, initial=step, disable=not progress, desc="train", mininterval=10)
    final = None  # (step, ESS or None, refined) of the last measurement

    def out_of_budget() -> bool:
        over_steps = config.steps is not None and step >= config.steps
        over_time = config.max_seconds is not None and elapsed >= config.max_seconds
        return over_steps or over_time

    while not out_of_budget():
        optimizer.zero_grad(set_to_none=True)
        objective, kl = reverse_kl(flow, point, config, generator)
        if not (torch.isfinite(objective) and torch.isfinite(kl)):
            recoveries += 1
            log.warning("non-finite loss at step %d: restoring last good state", step)
            if recoveries > config.max_recoveries:
                raise TrainingDiverged(
                    f"loss non-finite {recoveries} times at step {step}; lower the lr"
                )
            flow.load_state_dict(last_good[0])
            optimizer.load_state_dict(last_good[1])
            continue
        # Each recovery halves the learning rate for the rest of the run.
        for group in optimizer.param_groups:
            group["lr"] = config.lr_at(step, elapsed) * 0.5**recoveries
        objective.backward()
        if config.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(flow.parameters(), config.grad_clip)
        optimizer.step()
        step += 1
        elapsed = time.perf_counter() - start
        bar.update(1)
        done = out_of_budget()
        if step % config.ess_every == 0 or done:
            refinements = guard.refinements
            value = guard.measure(step)
            final = (step, value, guard.refinements > refinements)
            if value is None and not done:
                # A stiff vector field whose integration has a fictitious log q (the loss
                # then falls below its bound -log Z), with no refinement left: as bad as a NaN.
                recoveries += 1
                log.warning("step %d: log q off by %.3g against a twice finer integration "
                            "at %s; restoring the last good state", step, guard.error,
                            guard.integration())  # fmt: skip
                if recoveries > config.max_recoveries:
                    raise TrainingDiverged(
                        f"integration error {guard.error:.3g} of log q at step {step} after "
                        f"{recoveries - 1} recoveries and {guard.refinements} refinements; "
                        "lower the lr or raise n_steps"
                    )
                flow.load_state_dict(last_good[0])
                optimizer.load_state_dict(last_good[1])
                continue
            if value is not None:
                history.append({"step": step, "seconds": elapsed, "loss": kl.item(), "ess": value})
                bar.set_postfix(loss=f"{kl.item():.3f}", ess=f"{value:.3f}")
                log.info("step %d  %.1f s  loss %.4f  ESS %.3f", step, elapsed, kl.item(), value)
                last_good = copy.deepcopy((flow.state_dict(), optimizer.state_dict()))
        if checkpoint is not None and step % config.checkpoint_every == 0:
            state = _state(flow, optimizer, (generator, probe), step, elapsed, history,
                           recoveries, fingerprint, guard)  # fmt: skip
            _write_checkpoint(checkpoint, state)
    bar.close()
    if final is None or final[0] != step:  # resumed at the end of the budget
        refinements = guard.refinements
        final = (step, guard.measure(step), guard.refinements > refinements)
    settled = guard.settle(*final, probe)
    if settled is None:
        raise TrainingDiverged(
            f"no state of the run passed the integration check: log q is off by "
            f"{guard.error:.3g} at {guard.integration()} after {guard.refinements} "
            "refinements; raise n_steps or max_refinements, or lower the lr"
        )
    name, kept = settled
    _report(name, kept, step, guard, passed=final[1] is not None)
    return TrainResult(
        step, elapsed, history, recoveries, warmed, guard.refinements, name, kept.step,
        kept.ess, guard.integration(),
    )  # fmt: skip


def _report(name: str, kept: Snapshot, step: int, guard: Guard, passed: bool) -> None:
    """One log line on the state the run returns, and why."""
    where = f"step {kept.step}, ESS {kept.ess:.3f}, {guard.integration() or 'exact log q'}"
    if name in ("last", "refined"):
        log.info("returning the %s state (%s)", name, where)
        return
    why = (
        f"it measured a higher ESS than the last (step {step})"
        if passed
        else f"the last (step {step}) failed the integration check: log q off by "
        f"{guard.error:.3g} after {guard.refinements} refinements"
    )
    if name == "best":
        log.warning("returning the best measured state (%s): %s", where, why)
    else:
        log.warning("returning the initial state, before training (%s): no trained state "
                    "measured better; %s", where, why)  # fmt: skip


def config_from_dict(settings: dict) -> TrainConfig:
    """TrainConfig from the ``training`` section of a study config."""
    known = set(asdict(TrainConfig()).keys())
    return TrainConfig(**{k: v for k, v in settings.items() if k in known})


#: Columns of results/tables/transfer.csv.
TRANSFER_COLUMNS = (
    "flow", "L", "s", "lam", "source_L", "source_train_seconds", "target_ess",
    "seconds_transfer", "seconds_scratch", "final_ess_transfer", "final_ess_scratch",
)  # fmt: skip


def seconds_to_ess(history: pd.DataFrame, target: float) -> float:
    """Training seconds at the first ESS measurement ≥ ``target`` (NaN if never reached)."""
    reached = history[history["ess"] >= target]
    return float(reached["seconds"].iloc[0]) if len(reached) else math.nan


def final_ess(history: pd.DataFrame, last: int = 3) -> float:
    """Mean of the last ``last`` ESS measurements: one 1024-sample ESS is noisy."""
    return float(history["ess"].tail(last).mean()) if len(history) else math.nan


def transfer_saving(
    transferred: pd.DataFrame, scratch: pd.DataFrame, fraction: float = 0.8
) -> dict[str, float]:
    """How much sooner a transferred flow reaches the ESS a from-scratch one ends with.

    The target is ``fraction`` of the scratch run's final ESS (:func:`final_ess`); each
    run's time to it is the first measurement at or above it (NaN if never reached).
    """
    target = fraction * final_ess(scratch)
    return {
        "target_ess": target,
        "seconds_transfer": seconds_to_ess(transferred, target),
        "seconds_scratch": seconds_to_ess(scratch, target),
        "final_ess_transfer": final_ess(transferred),
        "final_ess_scratch": final_ess(scratch),
    }
