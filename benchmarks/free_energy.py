"""Quadrature convergence of the thermodynamic integration of log Z, and its cost.

    python benchmarks/free_energy.py --points E1 E2 --nodes 4 6 8 12

For each point and number of Gauss–Legendre nodes per leg, runs HMC at every node
(``--chains`` × ``--trajectories``, burn-in ``--burn-in``) and prints log Z with its
statistical error, the CPU seconds, and the difference to the run with the most nodes
in units of the combined error. At λ = 0 the exact value is printed too. Numbers only.
"""

from __future__ import annotations

import argparse
import math
import time

import torch

from fieldflow import free_energy as fe
from fieldflow import integration
from fieldflow.analysis import gamma_estimate
from fieldflow.lattice import Point
from fieldflow.mcmc.chain import collect
from fieldflow.samplers import mcmc_stream

POINTS = {
    "E1": Point(6, -4.0, 6.975, "E1"),
    "E2": Point(8, -4.0, 6.008, "E2"),
    "E3": Point(10, -4.0, 5.550, "E3"),
    "free": Point(8, 0.3, 0.0, "free"),
    "tiny": Point(4, -4.0, 8.0, "tiny"),
}


def node_mean(node: integration.Node, L: int, settings: dict, seed: int) -> tuple[float, float]:
    """Γ-method mean and error of Σ_x φ_x^p from one HMC run at ``node``."""
    run = collect(mcmc_stream("hmc"), Point(L, node.s, node.lam), settings, seed, progress=False)
    estimate = gamma_estimate(fe.sum_of_powers(run.phi, node.power))
    return estimate.value, estimate.error


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", nargs="+", default=["E1"], choices=list(POINTS))
    parser.add_argument("--nodes", nargs="+", type=int, default=[4, 6, 8, 12])
    parser.add_argument("--s0", type=float, default=1.0)
    parser.add_argument("--chains", type=int, default=16)
    parser.add_argument("--trajectories", type=int, default=500)
    parser.add_argument("--burn-in", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(1)
    settings = {
        "n_chains": args.chains,
        "n_trajectories": args.trajectories,
        "burn_in": args.burn_in,
    }
    print(f"# HMC {args.chains} x {args.trajectories} per node, s0 = {args.s0}")
    print("point  nodes  log_Z          error     CPU s   vs most nodes (sigma)")
    for name in args.points:
        point = POINTS[name]
        results = {}
        for n in args.nodes:
            path = integration.IntegrationPath(point.L, point.s, point.lam, args.s0, n)
            start = time.process_time()
            means = {
                node.name: node_mean(node, point.L, settings, args.seed + i)
                for i, node in enumerate(path.nodes())
            }
            results[n] = (integration.integrate(path, means), time.process_time() - start)
        best, _ = results[max(args.nodes)]
        for n, (result, seconds) in results.items():
            sigma = math.hypot(result.error, best.error)
            diff = (result.log_Z - best.log_Z) / sigma if n != max(args.nodes) else 0.0
            print(
                f"{name:<6} {n:>5}  {result.log_Z:<13.6f}  {result.error:<8.2g}  "
                f"{seconds:>6.1f}  {diff:+.2f}",
                flush=True,
            )
        if point.lam == 0:
            print(f"{name:<6} exact  {fe.gaussian_log_z(point.L, point.s):.6f}")


if __name__ == "__main__":
    main()
