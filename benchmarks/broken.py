"""The cnf in the broken phase: training recipes against each other at a fixed step budget.

    python benchmarks/broken.py                                  # λ = 3.0, L = 8, 12, 16
    python benchmarks/broken.py --lam 3.5 --L 8 12 16 24 --recipes recipe zero_mode

At s = −4 and λ below the critical coupling (≈ 4.2–4.4) the field sits near one of two
vacua ±v. Each recipe is a set of config keys (the ``cnf`` section and its ``training``)
applied on top of the schema's defaults, trained by reverse KL for the same number of
steps per L (``--steps``, one per L). Recipes with ``transfer`` start each L > L_0 from the
flow trained at the previous L (``fieldflow.flows.transfer``, as ``init_from`` does);
the others start from the identity. Prints, per recipe and L: steps (and warm-up steps),
training seconds, ESS per sample over ``--samples`` fresh float32 proposals (log w in
float64) and its lowest and highest value over four equal blocks of them (one rare large
weight moves it a lot), independence-Metropolis acceptance, ⟨M⟩/V, the fraction of
proposals with M > 0 (exactly ½ in expectation for a Z2-equivariant flow; its binomial
error is printed), the reweighted ⟨|M|⟩/V, the rollbacks of training and the flow's
discretisation error. One torch thread; the seconds depend on the machine and its load.
Numbers only, not a test.
"""

from __future__ import annotations

import argparse
import copy
import math
import os
import platform
from pathlib import Path

import numpy as np
import torch

from fieldflow import config
from fieldflow.analysis import ess
from fieldflow.flows import build_flow, transfer
from fieldflow.lattice import Point
from fieldflow.mcmc import flow_proposals, independence_metropolis
from fieldflow.training import config_from_dict, train

SCHEMA = Path(__file__).resolve().parents[1] / "workflow" / "schemas" / "config.schema.yaml"

#: Zero-mode spline first, warmed up alone, a nearest-neighbour kernel with 3 time modes
#: (its RK4 error is ~100x smaller than with 6), lr 0.01.
ZERO_MODE = {
    "n_features": 6,
    "n_time_basis": 3,
    "n_steps": 20,
    "kernel_radius": 1,
    "zero_mode": True,
}
ZERO_MODE_TRAINING = {"lr": 0.01, "warmup_steps": 300}
#: The broken-phase recipe: the same, and an odd spline of every site after the ODE.
RECIPE = {**ZERO_MODE, "site_spline": True}

#: The cnf defaults these recipes were measured with (session 5), under every recipe's own
#: keys: the schema's later defaults (site spline, spectral scale, kinetic penalty, path
#: gradient) would otherwise change what each recipe name means.
MEASURED_FLOW = {"site_spline": False, "spectral_scale": False}
MEASURED_TRAINING = {"kinetic_weight": 0, "estimator": "plain"}

#: Config keys of each recipe: (cnf hyperparameters, cnf training, transfer between L).
RECIPES: dict[str, tuple[dict, dict, bool]] = {
    # config/config.yaml's cnf: the whole-lattice kernel, 6 time modes, from the identity.
    "baseline": ({"n_features": 6, "n_time_basis": 6, "n_steps": 20}, {"lr": 0.01}, False),
    # Each L > L_0 started from the flow of the previous L (as init_from does).
    "zero_mode": (ZERO_MODE, ZERO_MODE_TRAINING, True),
    "recipe": (RECIPE, ZERO_MODE_TRAINING, True),
    # Every L from the identity.
    "recipe_scratch": (RECIPE, ZERO_MODE_TRAINING, False),
    # Near the critical coupling: the whole-lattice kernel, with and without the zero mode.
    "recipe_wide": ({**RECIPE, "kernel_radius": None}, ZERO_MODE_TRAINING, True),
    "site_wide": ({**RECIPE, "kernel_radius": None, "zero_mode": False}, ZERO_MODE_TRAINING, True),
}


def settings(hyper: dict, training: dict, steps: int) -> tuple[dict, dict]:
    """Schema-validated hyperparameters and training settings, as a study gets them."""
    study = config.validate(
        {
            "points": [{"L": 8, "s": -4.0, "lam": 3.0}],
            "flows": ["cnf"],
            "cnf": {
                **MEASURED_FLOW,
                **hyper,
                "training": {**MEASURED_TRAINING, **training, "steps": steps},
            },
        },
        SCHEMA,
    )
    return config.flow_settings(study, "cnf")


@torch.no_grad()
def measure(flow, point: Point, n: int, seed: int) -> dict:
    """ESS, acceptance and magnetisation of n fresh float32 proposals."""
    generator = torch.Generator().manual_seed(seed)
    proposals = flow_proposals(flow.float().eval(), point, n, 1024, generator)
    chain = independence_metropolis(proposals.log_weight[None], np.random.default_rng(seed))
    m = proposals.phi.reshape(n, -1).mean(axis=1, dtype=np.float64)
    w = np.exp(proposals.log_weight - proposals.log_weight.max())
    blocks = [ess(block) for block in np.array_split(proposals.log_weight, 4)]
    return {
        "ess": ess(proposals.log_weight),
        "ess_blocks": (min(blocks), max(blocks)),
        "acceptance": chain.acceptance,
        "m": float(m.mean()),
        "positive": float((m > 0).mean()),
        "abs_m_reweighted": float((w * np.abs(m)).sum() / w.sum()),
        "discretisation": flow.discretisation_error(256, generator),
    }


def run_recipe(name: str, lam: float, sizes: list[int], steps: list[int], args) -> None:
    hyper_keys, training_keys, chained = RECIPES[name]
    previous = None
    for L, n_steps in zip(sizes, steps, strict=True):
        point = Point(L, -4.0, lam)
        hyper, training = settings(hyper_keys, training_keys, n_steps)
        torch.manual_seed(args.seed)
        if chained and previous is not None:
            flow = transfer(previous, "cnf", L, hyper)
        else:
            flow = build_flow("cnf", L, hyper)
        result = train(flow, point, config_from_dict(training), args.seed, progress=False)
        previous = copy.deepcopy(flow)
        r = measure(flow, point, args.samples, args.seed + 1)
        error = math.sqrt(0.25 / args.samples)
        print(
            f"{name:<18} {L:>3} {lam:>4g} {result.steps:>5} {result.warmup_steps:>4} "
            f"{result.seconds:>7.1f} {r['ess']:>6.3f} {r['ess_blocks'][0]:>5.2f}-"
            f"{r['ess_blocks'][1]:<4.2f} {r['acceptance']:>6.3f} "
            f"{r['m']:>+7.3f} {r['positive']:>6.3f}±{error:.3f} {r['abs_m_reweighted']:>6.3f} "
            f"{result.recoveries:>5} {r['discretisation']:>7.3f}",
            flush=True,
        )


def machine() -> str:
    """The CPU's model name and core count, for the table's header."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        name = next(line.split(":", 1)[1].strip() for line in lines if "model name" in line)
    except (OSError, StopIteration):
        name = platform.processor() or platform.machine()
    return f"{name}, {os.cpu_count()} cores"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lam", type=float, default=3.0)
    parser.add_argument("--L", type=int, nargs="+", default=[8, 12, 16])
    parser.add_argument(
        "--steps",
        type=int,
        nargs="+",
        default=None,
        help="steps per L (default: 500 at the first L, 300 after)",
    )
    parser.add_argument(
        "--recipes", nargs="+", default=["baseline", "recipe"], choices=list(RECIPES)
    )
    parser.add_argument("--samples", type=int, default=16384)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    steps = args.steps or [500] + [300] * (len(args.L) - 1)
    if len(steps) != len(args.L):
        parser.error("give one --steps per --L")
    torch.set_num_threads(1)
    print(
        f"# s = -4, lam = {args.lam:g}; {machine()}, 1 torch thread; torch "
        f"{torch.__version__}; {args.samples} proposals per row"
    )
    print(
        "recipe               L  lam steps warm seconds    ESS  blocks   accept  <M>/V  "
        "f(M>0)±err <|M|>/V recov  d logq"
    )
    for name in args.recipes:
        run_recipe(name, args.lam, args.L, steps, args)


if __name__ == "__main__":
    main()
