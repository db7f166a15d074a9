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
(Vaitl et al. arXiv:2207.08219). The loss and the settings are :mod:`fieldflow.objective`,
the checkpoints :mod:`fieldflow.checkpoint`.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from fieldflow.checkpoint import read_checkpoint, training_state, write_checkpoint
from fieldflow.flows import Flow, without_saved_masks
from fieldflow.guard import Guard, Snapshot, ode_layers
from fieldflow.objective import (
    ESTIMATORS,
    TrainConfig,
    TrainingDiverged,
    config_from_dict,
    reverse_kl,
    warm_up,
)
from fieldflow.theory import PointLike

__all__ = [
    "ESTIMATORS",
    "TrainConfig",
    "TrainResult",
    "TrainingDiverged",
    "config_from_dict",
    "reverse_kl",
    "train",
    "warm_up",
]

log = logging.getLogger(__name__)

HISTORY_COLUMNS = ("step", "seconds", "loss", "ess")
#: The checkpoint writer under its former name (benchmarks/bad_inputs.py uses it).
_write_checkpoint = write_checkpoint


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


def train(
    flow: Flow,
    point: PointLike,
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
        point: the target, of any theory (its action S gives the loss).
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
    guard = Guard(
        flow,
        point,
        config.max_discretisation_error,
        config.max_refinements,
        config.ess_samples,
        generator,
    )
    step, elapsed, history, recoveries = 0, 0.0, [], 0
    checkpoint = Path(checkpoint) if checkpoint is not None else None
    if checkpoint is not None and checkpoint.exists():
        state = read_checkpoint(checkpoint, fingerprint)
        if state is not None:
            flow.load_state_dict(without_saved_masks(state["model"]))
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
                log.warning(
                    "step %d: log q off by %.3g against a twice finer integration "
                    "at %s; restoring the last good state",
                    step,
                    guard.error,
                    guard.integration(),
                )
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
            state = training_state(
                flow,
                optimizer,
                (generator, probe),
                step,
                elapsed,
                history,
                recoveries,
                fingerprint,
                guard,
            )
            write_checkpoint(checkpoint, state)
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
        step,
        elapsed,
        history,
        recoveries,
        warmed,
        guard.refinements,
        name,
        kept.step,
        kept.ess,
        guard.integration(),
    )


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
        log.warning(
            "returning the initial state, before training (%s): no trained state "
            "measured better; %s",
            where,
            why,
        )
