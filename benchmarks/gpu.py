"""The cnf and HMC on one GPU at Gerdes et al.'s L = 32 and 64 points, in one command.

    python benchmarks/gpu.py                       # on a GPU: 8 trainings of 30 s, < 8 min
    python benchmarks/gpu.py --seconds 20 --L 32   # shorter
    python benchmarks/gpu.py --tiny --device cpu   # CPU smoke: L = 4, 6, 1 s, n_steps 8

The points (s = −4, λ) and the cnf's hyperparameters and training settings are those of
config/paper.yaml (its ``cnf`` section over its ``training`` section). Every flow row
trains a fresh cnf with ``fieldflow.training.train`` for ``--seconds`` of wall-clock time
(cosine learning rate over that budget, no ESS checks on the way) after one untimed
warm-up step, then draws ``--samples`` proposals with ``fieldflow.mcmc.flow_proposals``
(float32 flow, log w in float64) and runs one independence-Metropolis chain over them.
Rows differ by one option each, measured rather than assumed:

- ``base``: the paper's batch size, eager vector field, float32 matmul precision "highest";
- ``batch64``: 64 samples per step;
- ``compile``: ``torch.compile`` of the vector field (``EquivariantVectorField.evaluate``,
  all 4 RK4 stages of every step); compile time goes to the ``warm_s`` column, and a
  failure is printed as the row's status;
- ``tf32``: ``torch.set_float32_matmul_precision("high")`` (TF32 matmuls on a GPU).

Columns: steps of training and seconds per step (median wall-clock time between
consecutive optimiser steps, which leaves out train()'s checks of the ESS and of the
integration before the first and after the last step), ESS per sample of the proposals,
acceptance of the chain, configurations per second of sampling (1 / the library's median
seconds per proposal: wall clock on a GPU, CPU time on a CPU, as samplers.csv records),
peak GPU memory of training and of sampling (``torch.cuda.max_memory_allocated``, reset
before each phase; ``-`` on a CPU).

HMC rows, per L: ``fieldflow.mcmc.hmc`` at the paper's 32 chains (step size tuned in the
burn-in), on ``--device`` if it takes a ``device`` argument, else on the CPU in float64
(then said in the row). Without one, ``leapfrog`` rows also time whole HMC trajectories
(momenta, the library's ``leapfrog``, ``force`` and ``action``, accept/reject) on
``--device`` with hmc()'s tuned step size, from its last configurations, for
``--hmc-chains`` chains. traj/s counts chain-trajectories per second.

Numbers only, not a test; tests/test_gpu_benchmark.py runs ``--tiny`` on the CPU.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import math
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.optim.optimizer import register_optimizer_step_post_hook

from fieldflow import config
from fieldflow.analysis import ess
from fieldflow.flows import build_flow
from fieldflow.lattice import Point, action, force
from fieldflow.mcmc import HMCResult, flow_proposals, hmc, independence_metropolis, leapfrog
from fieldflow.training import config_from_dict, train

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"

#: Defaults of a full run (one GPU, under 8 minutes) and of ``--tiny`` (a CPU smoke run).
#: None: the config's value (``n_steps`` of the cnf, ``ess_samples`` of its training).
FULL = {
    "L": [32, 64],
    "seconds": 30.0,
    "samples": 16384,
    "hmc_chains": [32, 1024, 8192],
    "hmc_trajectories": 100,
    "hmc_burn_in": 100,
    "compile_backend": "inductor",
    "n_steps": None,
    "ess_samples": None,
}
TINY = {
    "L": [4, 6],
    "seconds": 1.0,
    "samples": 512,
    "hmc_chains": [4, 16],
    "hmc_trajectories": 10,
    "hmc_burn_in": 20,
    "compile_backend": "aot_eager",
    "n_steps": 8,
    "ess_samples": 128,
}


@dataclass(frozen=True)
class Option:
    """One training configuration: batch size, compiled vector field, matmul precision."""

    name: str
    batch_size: int
    compiled: bool = False
    precision: str = "highest"


def options(batch_size: int) -> dict[str, Option]:
    """The options of the flow table, each one change from ``base``."""
    return {
        "base": Option("base", batch_size),
        "batch64": Option("batch64", 64),
        "compile": Option("compile", batch_size, compiled=True),
        "tf32": Option("tf32", batch_size, precision="high"),
    }


@dataclass(frozen=True)
class FlowRow:
    """One row of the flow table; NaN where not measured (a failed option, a CPU)."""

    steps: int = 0
    s_per_step: float = math.nan
    ess: float = math.nan
    acceptance: float = math.nan
    configs_per_s: float = math.nan
    train_mib: float = math.nan
    sample_mib: float = math.nan
    warm_s: float = math.nan
    status: str = "ok"


@dataclass(frozen=True)
class HMCRow:
    """One row of the HMC table; ``traj_per_s`` counts chain-trajectories per second."""

    sampler: str
    where: str
    chains: int
    step_size: float
    n_leapfrog: float
    acceptance: float
    traj_per_s: float
    mib: float
    note: str = ""


def machine() -> str:
    """CPU model, core count and OS of this machine, for the header."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        cpu = next(line.split(":", 1)[1].strip() for line in lines if "model name" in line)
    except (OSError, StopIteration):
        cpu = platform.processor() or platform.machine()
    system = f"{platform.platform()}, python {platform.python_version()}"
    return f"{cpu}, {os.cpu_count()} cores, {system}"


def device_name(device: torch.device) -> str:
    if device.type != "cuda":
        return f"CPU, torch threads: {torch.get_num_threads()}"
    props = torch.cuda.get_device_properties(device)
    memory = props.total_memory / 2**30
    return f"{props.name} ({device}, {memory:.1f} GiB, CUDA {torch.version.cuda})"


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)


def peak_mib(device: torch.device) -> float:
    """Peak memory allocated by tensors since :func:`reset_peak`, MiB (NaN on a CPU)."""
    if device.type != "cuda":
        return math.nan
    torch.cuda.synchronize(device)
    return torch.cuda.max_memory_allocated(device) / 2**20


def paper_points(study: dict, sizes: list[int]) -> list[Point]:
    """The study's s = −4 point at each L; an L it lacks takes the nearest L's coupling
    (name marked with ``*``), so that tiny smoke runs have a point."""
    known = [p for p in config.points(study) if p.s == -4.0]
    chosen = []
    for L in sizes:
        nearest = min(known, key=lambda p: abs(p.L - L))
        name = nearest.name if nearest.L == L else f"{nearest.name}*"
        chosen.append(Point(L, nearest.s, nearest.lam, name))
    return chosen


class StepClock:
    """Wall-clock times of every optimiser step while active (a global post-step hook).

    train() waits for the device at every step (its finiteness check of the loss), so in
    the steady state the time between consecutive steps is the cost of one step; their
    median leaves out train()'s ESS and integration checks.
    """

    def __enter__(self) -> StepClock:
        self.times: list[float] = []
        record = lambda *_: self.times.append(time.perf_counter())  # noqa: E731
        self.handle = register_optimizer_step_post_hook(record)
        return self

    def __exit__(self, *exc) -> None:
        self.handle.remove()

    def seconds_per_step(self) -> float:
        """Median seconds between consecutive steps; NaN with fewer than two steps."""
        gaps = np.diff(self.times)
        return float(np.median(gaps)) if gaps.size else math.nan


def status(result) -> str:
    """``ok``, and what train() reports beyond its plain outcome."""
    notes = []
    if result.steps < 2:
        notes.append("budget spent before 2 steps (train()'s first ESS check counts)")
    if getattr(result, "final_state", "last") != "last":
        notes.append(f"{result.final_state} state of step {result.final_step}")
    if getattr(result, "refinements", 0):
        notes.append(f"{result.refinements} refinements")
    if result.recoveries:
        notes.append(f"{result.recoveries} recoveries")
    return ", ".join(["ok", *notes])


def compile_vector_field(flow: torch.nn.Module, backend: str) -> None:
    """Replace every ODE layer's ``field.evaluate`` (v and div v) by its torch.compile."""
    for layer in flow.layers:
        field = getattr(layer, "field", None)
        if field is not None:
            field.evaluate = torch.compile(field.evaluate, backend=backend)


def warm_up(flow, point: Point, batch: int, sample_batch: int, device: torch.device) -> float:
    """One untimed training step's forward and backward (no update) and two sampling batch
    shapes: cuFFT plans, and for a compiled field its graphs; returns the seconds."""
    generator = torch.Generator(device=device).manual_seed(12345)
    start = time.perf_counter()
    phi, log_q = flow.sample(batch, generator=generator)
    (log_q + action(phi, point.s, point.lam)).mean().backward()
    flow.zero_grad(set_to_none=True)
    with torch.no_grad():
        for n in (64, sample_batch):  # the discretisation check, the proposals
            flow.sample(n, generator=generator)
    synchronize(device)
    return time.perf_counter() - start


def flow_row(
    point: Point,
    option: Option,
    hyper: dict,
    training: dict,
    sample_batch: int,
    args: argparse.Namespace,
    device: torch.device,
) -> FlowRow:
    """Train a fresh cnf with ``option`` for ``args.seconds``, then sample and chain."""
    if option.compiled:
        torch._dynamo.reset()  # a fresh cache: no recompile limit left over from earlier rows
    torch.manual_seed(args.seed)
    torch.set_float32_matmul_precision(option.precision)
    flow = build_flow("cnf", point.L, hyper).to(device)
    budget = {
        **training,
        "steps": None,
        "max_seconds": args.seconds,
        "ess_every": 10**9,
        "batch_size": option.batch_size,
    }
    if args.ess_samples is not None:
        budget["ess_samples"] = args.ess_samples
    try:
        if option.compiled:
            compile_vector_field(flow, args.compile_backend)
        warm = warm_up(flow, point, option.batch_size, sample_batch, device)
        reset_peak(device)
        with StepClock() as clock:
            result = train(flow, point, config_from_dict(budget), args.seed, progress=False)
        train_mib = peak_mib(device)
        reset_peak(device)
        generator = torch.Generator(device=device).manual_seed(args.seed + 1)
        proposals = flow_proposals(flow.eval(), point, args.samples, sample_batch, generator)
        sample_mib = peak_mib(device)
    except Exception as err:  # a failing option (compile, memory) is a result, not a crash
        message = " ".join(str(err).split())[:100]
        return FlowRow(warm_s=math.nan, status=f"FAILED {type(err).__name__}: {message}")
    finally:
        torch.set_float32_matmul_precision("highest")
        del flow
        if device.type == "cuda":
            torch.cuda.empty_cache()
    chain = independence_metropolis(proposals.log_weight[None], np.random.default_rng(args.seed))
    return FlowRow(
        steps=result.steps,
        s_per_step=clock.seconds_per_step(),
        ess=ess(proposals.log_weight),
        acceptance=chain.acceptance,
        configs_per_s=1.0 / proposals.timing.seconds,
        train_mib=train_mib,
        sample_mib=sample_mib,
        warm_s=warm,
        status=status(result),
    )


def hmc_takes_device() -> bool:
    """Whether fieldflow.mcmc.hmc's ``hmc`` (or ``hmc_stream``, to which it passes its
    keywords) has a ``device`` argument."""
    module = importlib.import_module("fieldflow.mcmc.hmc")  # the package's ``hmc`` is the function
    functions = [getattr(module, name, None) for name in ("hmc", "hmc_stream")]
    return any("device" in inspect.signature(f).parameters for f in functions if f is not None)


@torch.no_grad()
def device_trajectories(
    start: torch.Tensor, point: Point, eps: float, n_steps: int, n_trajectories: int, seed: int
) -> tuple[float, float]:
    """Chain-trajectories per second and acceptance of HMC on ``start``'s device.

    Each trajectory is hmc()'s: Gaussian momenta, the library's ``leapfrog`` with
    ``force``, ``action`` before and after, accept with min(1, e^{−ΔH}); float64. Two
    untimed trajectories first.
    """
    device = start.device
    generator = torch.Generator(device=device).manual_seed(seed)
    phi, s_old = start, action(start, point.s, point.lam)
    accepted = torch.zeros((), dtype=torch.int64, device=device)

    def f(x: torch.Tensor) -> torch.Tensor:
        return force(x, point.s, point.lam)

    warm = 2
    for t in range(warm + n_trajectories):
        if t == warm:
            synchronize(device)
            began = time.perf_counter()
            accepted.zero_()
        pi = torch.randn(phi.shape, generator=generator, dtype=phi.dtype, device=device)
        h_old = 0.5 * (pi * pi).sum(dim=(-2, -1)) + s_old
        phi_new, pi_new = leapfrog(phi, pi, f, eps, n_steps)
        s_new = action(phi_new, point.s, point.lam)
        h_new = 0.5 * (pi_new * pi_new).sum(dim=(-2, -1)) + s_new
        log_u = torch.log(
            torch.rand(phi.shape[0], generator=generator, dtype=phi.dtype, device=device)
        )
        accept = (log_u < h_old - h_new) & torch.isfinite(h_new)
        phi = torch.where(accept[:, None, None], phi_new, phi)
        s_old = torch.where(accept, s_new, s_old)
        accepted += accept.sum()
    synchronize(device)
    seconds = time.perf_counter() - began
    total = start.shape[0] * n_trajectories
    return total / seconds, accepted.item() / total


#: hmc() keeps every configuration on the host: at most this many bytes of them per row.
HMC_STORAGE = 2**31


def library_hmc(
    point: Point, chains: int, args: argparse.Namespace, device: torch.device | None
) -> tuple[HMCRow, HMCResult]:
    """fieldflow.mcmc.hmc at ``chains`` chains on ``device`` (None: hmc()'s own, the CPU)."""
    n = max(10, min(args.hmc_trajectories, HMC_STORAGE // (chains * point.volume * 4)))
    extra = {} if device is None else {"device": str(device)}
    if device is not None:
        reset_peak(device)
    result = hmc(point, chains, n, args.hmc_burn_in, args.seed, progress=False, **extra)
    if device is None:
        where, mib, note = "cpu", math.nan, "hmc() has no device argument: CPU, float64, CPU time"
    else:
        where, mib, note = device.type, peak_mib(device), f"{n} trajectories kept"
    row = HMCRow(
        "hmc()",
        where,
        chains,
        result.step_size,
        result.mean_steps,
        result.acceptance,
        1.0 / result.timing.seconds,
        mib,
        note,
    )
    return row, result


def hmc_rows(
    point: Point, hmc_settings: dict, args: argparse.Namespace, device: torch.device
) -> list[HMCRow]:
    """HMC rows of one point: hmc() on the device at each of ``args.hmc_chains`` if it
    takes a device; else hmc() on the CPU at the paper's chain count, then whole
    trajectories on the device at each of ``args.hmc_chains``, from its last states."""
    if hmc_takes_device():
        return [library_hmc(point, n, args, device)[0] for n in args.hmc_chains]
    row, result = library_hmc(point, hmc_settings["n_chains"], args, None)
    rows = [row]
    last = torch.from_numpy(result.phi[:, -1]).to(torch.float64)
    eps, n_steps = result.step_size, result.n_steps
    for n in args.hmc_chains:
        start = last[torch.arange(n) % last.shape[0]].to(device)
        reset_peak(device)
        rate, acceptance = device_trajectories(
            start, point, eps, n_steps, args.hmc_trajectories, args.seed
        )
        note = "library leapfrog/force/action, wall clock"
        rows.append(
            HMCRow(
                "leapfrog", device.type, n, eps, n_steps, acceptance, rate, peak_mib(device), note
            )
        )
    return rows


def number(value: float, width: int, digits: int) -> str:
    """``value`` right-aligned in ``width`` with ``digits`` decimals, or ``-`` where it was
    not measured (NaN)."""
    if value is None or not math.isfinite(value):
        return format("-", f">{width}")
    return format(value, f">{width}.{digits}f")


FLOW_HEADER = (
    "flow   L point     lam option  batch compile   matmul   steps   s/step     ESS "
    " accept  configs/s  trainMiB sampleMiB  warm_s status"
)
HMC_HEADER = (
    "hmc    L point     lam sampler  where  chains     eps  n_lf  accept     traj/s       MiB note"
)


def print_flow(point: Point, option: Option, backend: str, r: FlowRow) -> None:
    print(
        f"flow {point.L:>3} {point.name:<5} {point.lam:>7.4g} {option.name:<7} "
        f"{option.batch_size:>5} {backend if option.compiled else 'off':<9} "
        f"{option.precision:<7} {r.steps:>6} {number(r.s_per_step, 8, 4)} "
        f"{number(r.ess, 7, 4)} {number(r.acceptance, 7, 4)} "
        f"{number(r.configs_per_s, 10, 1)} {number(r.train_mib, 9, 0)} "
        f"{number(r.sample_mib, 9, 0)} {number(r.warm_s, 7, 2)} {r.status}",
        flush=True,
    )


def print_hmc(point: Point, r: HMCRow) -> None:
    print(
        f"hmc  {point.L:>3} {point.name:<5} {point.lam:>7.4g} {r.sampler:<8} {r.where:<5} "
        f"{r.chains:>7} {r.step_size:>7.4f} {r.n_leapfrog:>5.1f} {r.acceptance:>7.4f} "
        f"{r.traj_per_s:>10.1f} {number(r.mib, 9, 0)} {r.note}",
        flush=True,
    )


#: The cnf hyperparameters the header shows.
SHOWN = (
    "n_features",
    "n_time_basis",
    "n_steps",
    "kernel_radius",
    "solver",
    "zero_mode",
    "spectral_scale",
    "site_spline",
)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_device = "cuda" if torch.cuda.is_available() else "cpu"
    parser.add_argument("--device", default=default_device, help=f"default {default_device}")
    parser.add_argument("--L", type=int, nargs="+", help="lattice sizes (default 32 64)")
    parser.add_argument("--seconds", type=float, help="training budget per row (default 30)")
    parser.add_argument("--samples", type=int, help="proposals per row (default 16384)")
    parser.add_argument("--tiny", action="store_true", help="CPU smoke: L 4 6, 1 s, 512, n_steps 8")
    parser.add_argument("--options", nargs="+", default=list(options(1)), choices=list(options(1)))
    parser.add_argument("--compile-backend", help="inductor (default; --tiny: aot_eager)")
    parser.add_argument(
        "--hmc-chains", type=int, nargs="+", help="chains on the device (default 32 1024 8192)"
    )
    parser.add_argument("--hmc-trajectories", type=int, help="timed trajectories (100)")
    parser.add_argument("--hmc-burn-in", type=int, help="hmc() burn-in trajectories (100)")
    parser.add_argument("--n-steps", type=int, help="RK4 steps of the cnf (config's; --tiny 8)")
    parser.add_argument("--ess-samples", type=int, help="train()'s ESS checks (config's; 128)")
    parser.add_argument("--config", type=Path, default=ROOT / "config" / "paper.yaml")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default torch's)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    for key, value in (TINY if args.tiny else FULL).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.tiny and args.threads is None:
        args.threads = 1
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    began = time.perf_counter()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    study = config.load(args.config, SCHEMA)
    hyper, training = config.flow_settings(study, "cnf")
    if args.n_steps is not None:
        hyper = {**hyper, "n_steps": args.n_steps}
    sample_batch = max(1, min(study["sampling"]["batch_size"], math.ceil(args.samples / 8)))
    choices = options(training["batch_size"])
    print(f"# device: {device_name(device)}; torch {torch.__version__}; machine: {machine()}")
    shown = ", ".join(f"{key} {hyper[key]}" for key in SHOWN)
    print(
        f"# cnf from {args.config.name}: {shown}; lr {training['lr']}, "
        f"{training['lr_schedule']} over {args.seconds:g} s per row, estimator "
        f"{training['estimator']}, kinetic_weight {training['kinetic_weight']}; {args.samples} "
        f"proposals per row in batches of {sample_batch}; float32, log w float64"
    )
    points = paper_points(study, args.L)
    print(FLOW_HEADER, flush=True)
    for point in points:
        for name in args.options:
            option = choices[name]
            row = flow_row(point, option, hyper, training, sample_batch, args, device)
            print_flow(point, option, args.compile_backend, row)
    print(HMC_HEADER, flush=True)
    for point in points:
        for row in hmc_rows(point, study["hmc"], args, device):
            print_hmc(point, row)
    total = time.perf_counter() - began
    print(
        f"# total {total:.0f} s after imports"
        + (
            ""
            if args.tiny or total < 480
            else "; over the 8 minutes a full run should take: lower --seconds"
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
