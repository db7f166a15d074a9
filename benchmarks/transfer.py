"""Training time saved by starting a flow at a larger lattice from one trained at a smaller.

    python benchmarks/transfer.py --family cnf --source-seconds 60 --seconds 120

Trains the family at E1 (L = 6), then at E4 (L = 12) twice for the same wall-clock budget:
from the identity and from the E1 flow (fieldflow.flows.transfer). Prints the ESS history of
both and the seconds each needs to first reach a few ESS thresholds. Numbers only.
"""

from __future__ import annotations

import argparse

import torch
from families import POINTS, settings

from fieldflow.flows import build_flow, transfer
from fieldflow.training import config_from_dict, train

THRESHOLDS = (0.1, 0.3, 0.5, 0.7)


def budget(training: dict, seconds: float) -> dict:
    return {**training, "steps": None, "max_seconds": seconds, "ess_every": 25, "ess_samples": 1024}


def first_time(history: list[dict], threshold: float) -> float | None:
    return next((row["seconds"] for row in history if row["ess"] >= threshold), None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", default="cnf")
    parser.add_argument("--source-seconds", type=float, default=60.0)
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(1)
    hyper, training = settings(args.family)
    small, large = POINTS["E1"], POINTS["E4"]
    torch.manual_seed(args.seed)
    source = build_flow(args.family, small.L, hyper)
    train(
        source,
        small,
        config_from_dict(budget(training, args.source_seconds)),
        args.seed,
        progress=False,
    )
    runs = {
        "scratch": build_flow(args.family, large.L, hyper),
        "transfer": transfer(source, args.family, large.L, hyper),
    }
    print(f"# {args.family}: E1 trained {args.source_seconds:g} s; E4 budget {args.seconds:g} s")
    print("start     " + "  ".join(f"t(ESS>={t:.1f})" for t in THRESHOLDS) + "  final ESS")
    for name, flow in runs.items():
        result = train(
            flow, large, config_from_dict(budget(training, args.seconds)), args.seed, progress=False
        )
        times = [first_time(result.history, t) for t in THRESHOLDS]
        cells = "  ".join(f"{'-' if x is None else f'{x:.0f} s':>11}" for x in times)
        print(f"{name:<9} {cells}  {result.history[-1]['ess']:.3f}", flush=True)


if __name__ == "__main__":
    main()
