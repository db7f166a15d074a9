"""Snakemake script: the figures of the study as PNG and PDF (rule figures)."""

# ruff: noqa: F821 - `snakemake` is injected by Snakemake's script directive.

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from fieldflow import plots
from fieldflow.io import load_array, read_ensemble


def label(path: str) -> str:
    """``{sampler} {point}`` from results/<stage>/{sampler}/{point}.<ext>."""
    return f"{Path(path).parent.name} {Path(path).stem}"


def last_draws(path: str, n: int = 4) -> np.ndarray:
    """The last ``n`` configurations of chain 0, shape (n, L, L), read without loading φ."""
    dataset = read_ensemble(path)
    last = dataset.isel(chain=[0], draw=slice(-n, None))
    last.encoding.update(dataset.encoding)  # so that a corrupt chunk names its store
    return load_array(last, "phi")[0]


logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, force=True)
observables = pd.read_csv(snakemake.input.observables)
samplers = pd.read_csv(snakemake.input.samplers)
study = {name: pd.read_csv(snakemake.input[name])
         for name in ("scaling", "exponents", "crossover", "agreement", "correlators",
                      "tunnelling", "magnetization_histograms")}  # fmt: skip
histories = {label(p): pd.read_csv(p) for p in snakemake.input.histories}
# ESS against seconds of every family at the study's largest lattice.
largest = max((Path(p).stem for p in snakemake.input.histories), default=None,
              key=lambda key: int(key[1:].split("_")[0]))  # fmt: skip
figures = {
    "training": plots.training_curves(histories),
    "acceptance_ess": plots.acceptance_ess(samplers),
    "tau_int": plots.tau_int(observables),
    "observables": plots.observables_comparison(observables, plots.load_anchors()),
    "configurations": plots.configurations(
        {label(p): last_draws(p) for p in snakemake.input.ensembles}
    ),
    "families_vs_L": plots.families_vs_L(samplers),
    "scaling": plots.scaling_tau(study["scaling"], study["exponents"]),
    "cost": plots.cost_per_sample(study["scaling"], study["crossover"]),
    "agreement": plots.pulls(study["agreement"]),
    "correlators": plots.effective_masses(study["correlators"], observables),
    "tunnelling": plots.tunnelling(study["tunnelling"]),
    "magnetization_histograms": plots.magnetization_histograms(study["magnetization_histograms"]),
    "ess_vs_seconds": plots.ess_vs_seconds(
        {k: v for k, v in histories.items() if k.split()[1] == largest}, str(largest)
    ),
}
if snakemake.input.transfer:
    # Rows of transfer.csv come in the order of params.transfer_runs (rule transfer).
    table = pd.read_csv(snakemake.input.transfer[0])
    figures["transfer"] = plots.transfer_curves([
        {
            "flow": run["flow"],
            "label": run["point"]["name"] or f"L={run['point']['L']}",
            "transferred": pd.read_csv(run["transferred"]),
            "scratch": pd.read_csv(run["scratch"]),
            "source_seconds": row.source_train_seconds,
            "target_ess": row.target_ess,
        }
        for run, row in zip(snakemake.params.transfer_runs, table.itertuples(), strict=True)
    ])  # fmt: skip
out = Path(snakemake.output[0]).parent
for name, fig in figures.items():
    logging.info("wrote %s and %s", *plots.save_figure(fig, out / name))
