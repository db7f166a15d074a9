"""Train every flow family at E1 and E4 for the same wall-clock budget and print a table.

    python benchmarks/families.py                      # 240 s per run, all families
    python benchmarks/families.py --seconds 60 --families cnf --points E1
    python benchmarks/families.py --steps 600 --families cnf --points E4 \
        --training kinetic_weight=0.1 estimator=path
    python benchmarks/families.py --steps 1500 --families cnf --flow n_features=8

Prints, per (family, point): optimiser steps, seconds per step, ESS per sample on 4096
fresh proposals, independence-Metropolis acceptance over 4096 proposals, parameters,
sampling throughput (configurations per second, batches of 1024, float32), recoveries,
refinements of the ODE, the state training returned (``TrainResult.final_state``) and
|Δ log q| against a twice-finer integration on 256 samples. The budget is --seconds of
wall-clock time, or --steps optimiser steps; --training overrides the family's training
settings, --flow its hyperparameters. Runs on a CUDA GPU when torch sees one, else on the
CPU with --threads threads. Not a test: numbers only.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import numpy as np
import torch
import yaml

from fieldflow import config
from fieldflow.analysis import ess
from fieldflow.flows import FAMILIES, build_flow
from fieldflow.lattice import Point, action
from fieldflow.mcmc import flow_proposals, independence_metropolis
from fieldflow.training import TrainConfig, config_from_dict, train

SCHEMA = Path(__file__).resolve().parents[1] / "workflow" / "schemas" / "config.schema.yaml"
POINTS = {"E1": Point(6, -4.0, 6.975, "E1"), "E4": Point(12, -4.0, 5.276, "E4")}


@torch.no_grad()
def throughput(flow, n_batches: int = 5, batch: int = 1024) -> float:
    """Configurations per second of the float32 flow in batches of ``batch``."""
    flow.sample(batch)  # warm-up
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(n_batches):
        phi, log_q = flow.sample(batch)
        action(phi, -4.0, 5.0)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return n_batches * batch / (time.perf_counter() - start)


def settings(family: str) -> tuple[dict, dict]:
    """The family's default hyperparameters and training settings, as a study gets them."""
    study = config.validate(
        {"points": [{"L": 6, "s": -4.0, "lam": 6.975}], "flows": [family]}, SCHEMA
    )
    return config.flow_settings(study, family)


def run(
    family: str,
    point: Point,
    budget: dict,
    seed: int,
    device: torch.device,
    flow_overrides: dict | None = None,
) -> dict:
    """Train one flow for ``budget`` (training settings over the family's) and measure it;
    ``flow_overrides`` replace the family's hyperparameters of the same name."""
    torch.manual_seed(seed)
    hyperparameters, training = settings(family)
    hyperparameters = {**hyperparameters, **(flow_overrides or {})}
    flow = build_flow(family, point.L, hyperparameters).to(device)
    # The family's ess_every, as in a study: the guard measures (and may keep) those states.
    budget = {**training, **budget}
    result = train(flow, point, config_from_dict(budget), seed, progress=False)
    rate = throughput(flow.eval())
    flow64 = flow.double()
    generator = torch.Generator(device=device).manual_seed(seed + 1)
    proposals = flow_proposals(flow64, point, 4096, 1024, generator)
    chain = independence_metropolis(proposals.log_weight[None], np.random.default_rng(seed))
    return {
        "family": family,
        "point": point.name,
        "L": point.L,
        "steps": result.steps,
        "s_per_step": result.seconds / max(result.steps, 1),
        "ess": ess(proposals.log_weight),
        "acceptance": chain.acceptance,
        "parameters": flow.n_parameters(),
        "configs_per_s": rate,
        "recoveries": result.recoveries,
        "refinements": result.refinements,
        "final_state": result.final_state,
        "error": flow64.discretisation_error(256, generator),
    }


#: What ``--training`` may set: the fields of :class:`~fieldflow.training.TrainConfig`.
KNOWN_TRAINING_KEYS = frozenset(field.name for field in dataclasses.fields(TrainConfig))


def overrides(pairs: list[str], known: frozenset[str] | None = KNOWN_TRAINING_KEYS) -> dict:
    """Settings from KEY=VALUE pairs, each value read as YAML (0.1, null, path, [8, 8]);
    ``known`` the keys allowed (None: any, checked by the flow's builder)."""
    parsed = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"settings take KEY=VALUE pairs, got {pair!r}")
        if known is not None and key not in known:
            raise SystemExit(f"--training: unknown key {key!r}; known: {', '.join(sorted(known))}")
        parsed[key] = yaml.safe_load(value)
    return parsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=240.0)
    parser.add_argument("--steps", type=int, default=None, help="a step budget instead")
    parser.add_argument("--training", nargs="*", default=[], metavar="KEY=VALUE")
    parser.add_argument(
        "--flow", nargs="*", default=[], metavar="KEY=VALUE", help="hyperparameter overrides"
    )
    parser.add_argument("--families", nargs="+", default=sorted(FAMILIES))
    parser.add_argument("--points", nargs="+", default=list(POINTS), choices=list(POINTS))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    name = torch.cuda.get_device_name() if device.type == "cuda" else f"CPU, {args.threads} thr"
    if args.steps is None:
        budget = {"steps": None, "max_seconds": args.seconds}
    else:
        budget = {"steps": args.steps, "max_seconds": None}
    budget.update(overrides(args.training))
    per_run = f"{args.seconds:g} s" if args.steps is None else f"{args.steps} steps"
    print(
        f"# device: {name}; budget {per_run} per run; torch {torch.__version__}; "
        f"training {overrides(args.training) or 'as configured'}"
        + (f"; flow {overrides(args.flow, known=None)}" if args.flow else "")
    )
    header = (
        "family   point  L   steps  s/step   ESS     accept  params  configs/s  recov "
        "refine final    dlogq"
    )
    print(header)
    hyper = overrides(args.flow, known=None)
    for point in args.points:
        for family in args.families:
            r = run(family, POINTS[point], budget, args.seed, device, hyper)
            print(
                f"{r['family']:<8} {r['point']:<6} {r['L']:<3} {r['steps']:>6} "
                f"{r['s_per_step']:>7.4f} {r['ess']:>7.3f} {r['acceptance']:>7.3f} "
                f"{r['parameters']:>7} {r['configs_per_s']:>10.0f} {r['recoveries']:>5} "
                f"{r['refinements']:>6} {r['final_state']:<8} {r['error']:>6.3f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
