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
"""

from __future__ import annotations

import copy
import glob
import logging
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd
import torch
from tqdm.auto import tqdm

from fieldflow.analysis import ess
from fieldflow.errors import FieldflowError
from fieldflow.flows import Flow, ModelFileError, tensor_digest
from fieldflow.io import remove_stale_partials
from fieldflow.lattice import Point, action

log = logging.getLogger(__name__)

HISTORY_COLUMNS = ("step", "seconds", "loss", "ess")


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
    #: checked at every ESS measurement; beyond it the run is treated as diverged.
    max_discretisation_error: float = 0.2
    #: Steps of the warm-up of the global layers (see the module docstring); 0: none.
    warmup_steps: int = 0

    def __post_init__(self) -> None:
        if self.steps is None and self.max_seconds is None:
            raise ValueError("training needs a budget: set steps, max_seconds, or both")
        if self.lr_schedule not in ("constant", "cosine"):
            raise ValueError(f"lr_schedule must be 'constant' or 'cosine', got {self.lr_schedule}")
        if self.warmup_steps < 0:
            raise ValueError(f"warmup_steps must be >= 0, got {self.warmup_steps}")

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
    """``steps`` of the main loop, ``warmup_steps`` taken before it; ``seconds`` of both."""

    steps: int
    seconds: float
    history: list[dict[str, float]]
    recoveries: int
    warmup_steps: int = 0


class TrainingDiverged(FieldflowError, RuntimeError):
    """The loss became non-finite more often than the recovery budget allows."""


@torch.no_grad()
def flow_ess(flow: Flow, point: Point, n: int, generator: torch.Generator) -> float:
    """ESS per sample, (Σw)²/(N Σw²), of n fresh proposals; weights in float64."""
    phi, log_q = flow.sample(n, generator=generator)
    log_w = -action(phi.double(), point.s, point.lam) - log_q.double()
    return ess(log_w.cpu().numpy())


def warm_up(flow: Flow, point: Point, config: TrainConfig, generator: torch.Generator) -> int:
    """Train the flow's global layers alone while its ODE layers are the identity.

    The global layers are those without ``refined`` (no ODE to integrate); the ODE layers
    must all be the identity (``is_identity()``), so that the flow of the global layers
    alone is the whole flow. Adam at the constant rate ``config.lr`` for
    ``config.warmup_steps`` steps of ``config.batch_size`` samples. Returns the steps taken:
    0 when there is nothing to warm up (no global or no ODE layer, or an ODE layer that has
    already learnt something, as after a transfer).
    """
    odes = [layer for layer in flow.layers if getattr(layer, "refined", None) is not None]
    head = [layer for layer in flow.layers if getattr(layer, "refined", None) is None]
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


def _state(flow, optimizer, generator, step, seconds, history, recoveries, fingerprint):
    """Everything a resumed run needs to continue exactly where this one stopped."""
    return {
        "model": flow.state_dict(),
        "optimizer": optimizer.state_dict(),
        "generator": generator.get_state(),
        "step": step,
        "seconds": seconds,
        "history": history,
        "recoveries": recoveries,
        "fingerprint": fingerprint,
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

    Args:
        flow: the flow, already on its device.
        point: the (L, s, λ) of the target.
        config: budget and optimiser settings.
        seed: seeds the noise of every step, so a run is reproducible.
        checkpoint: path written every ``checkpoint_every`` steps and read at start.
        fingerprint: identifies the settings; a checkpoint of other settings is ignored.
    """
    device = next(flow.parameters()).device
    generator = torch.Generator(device=device).manual_seed(seed)
    optimizer = torch.optim.Adam(flow.parameters(), lr=config.lr)
    step, elapsed, history, recoveries = 0, 0.0, [], 0
    checkpoint = Path(checkpoint) if checkpoint is not None else None
    if checkpoint is not None and checkpoint.exists():
        state = _read_checkpoint(checkpoint, fingerprint)
        if state is not None:
            flow.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            generator.set_state(state["generator"])
            step, elapsed = state["step"], state["seconds"]
            history, recoveries = state["history"], state["recoveries"]
            log.info("resumed from %s at step %d (%.1f s)", checkpoint, step, elapsed)

    warm_start = time.perf_counter()
    warmed = warm_up(flow, point, config, generator) if step == 0 else 0
    elapsed += time.perf_counter() - warm_start if warmed else 0.0
    last_good = copy.deepcopy((flow.state_dict(), optimizer.state_dict()))
    bar = tqdm(total=config.steps, initial=step, disable=not progress, desc="train", mininterval=10)
    start = time.perf_counter() - elapsed

    def out_of_budget() -> bool:
        over_steps = config.steps is not None and step >= config.steps
        over_time = config.max_seconds is not None and elapsed >= config.max_seconds
        return over_steps or over_time

    while not out_of_budget():
        phi, log_q = flow.sample(config.batch_size, generator=generator)
        loss = (log_q + action(phi, point.s, point.lam)).mean()
        if not torch.isfinite(loss):
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
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if config.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(flow.parameters(), config.grad_clip)
        optimizer.step()
        step += 1
        elapsed = time.perf_counter() - start
        bar.update(1)
        if step % config.ess_every == 0 or out_of_budget():
            error = flow.discretisation_error(64, generator)
            if not error <= config.max_discretisation_error:
                # A stiff vector field whose fixed-step integration has a fictitious log q
                # (the loss then falls below its bound -log Z): as bad as a NaN.
                recoveries += 1
                log.warning("step %d: log q off by %.3g between the integrator and a finer "
                            "one; restoring the last good state", step, error)  # fmt: skip
                if recoveries > config.max_recoveries:
                    raise TrainingDiverged(
                        f"integration error {error:.3g} of log q at step {step} after "
                        f"{recoveries - 1} recoveries; lower the lr or raise n_steps"
                    )
                flow.load_state_dict(last_good[0])
                optimizer.load_state_dict(last_good[1])
                continue
            value = flow_ess(flow, point, config.ess_samples, generator)
            history.append({"step": step, "seconds": elapsed, "loss": loss.item(), "ess": value})
            bar.set_postfix(loss=f"{loss.item():.3f}", ess=f"{value:.3f}")
            log.info("step %d  %.1f s  loss %.4f  ESS %.3f", step, elapsed, loss.item(), value)
            last_good = copy.deepcopy((flow.state_dict(), optimizer.state_dict()))
        if checkpoint is not None and step % config.checkpoint_every == 0:
            state = _state(
                flow, optimizer, generator, step, elapsed, history, recoveries, fingerprint
            )
            _write_checkpoint(checkpoint, state)
    bar.close()
    return TrainResult(step, elapsed, history, recoveries, warmed)


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
