"""Snakemake script: every figure of fieldflow.plots.FIGURES as PNG and PDF (rule figures)."""

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from fieldflow import plots, study
from fieldflow.io import load_array, read_ensemble
from fieldflow.reader import theory_of


def label(path: str) -> str:
    """``{sampler} {point}`` from results/<stage>/{sampler}/{point}.<ext>."""
    return f"{Path(path).parent.name} {Path(path).stem}"


def last_draws(path: str, n: int = 4) -> np.ndarray:
    """The last ``n`` configurations of chain 0, shape (n, *field_shape), read without
    loading the whole field (the theory's: φ, or U(1)'s links)."""
    dataset = read_ensemble(path)
    last = dataset.isel(chain=[0], draw=slice(-n, None))
    last.encoding.update(dataset.encoding)  # so that a corrupt chunk names its store
    return load_array(last, theory_of(dataset).field)[0]


def transfer_runs() -> list[dict]:
    """The runs of the transfer figure; rows of transfer.csv come in the order of
    params.transfer_runs (rule transfer)."""
    table = pd.read_csv(snakemake.input.transfer[0])
    return [
        {
            "flow": run["flow"],
            "label": run["point"]["name"] or f"L={run['point']['L']}",
            "transferred": pd.read_csv(run["transferred"]),
            "scratch": pd.read_csv(run["scratch"]),
            "source_seconds": row.source_train_seconds,
            "target_ess": row.target_ess,
        }
        for run, row in zip(snakemake.params.transfer_runs, table.itertuples(), strict=True)
    ]


# The inputs that are not one table each; any other input name is a CSV table.
LOADERS = {
    "histories": lambda: {label(p): pd.read_csv(p) for p in snakemake.input.histories},
    "ensembles": lambda: {label(p): last_draws(p) for p in snakemake.input.ensembles},
    "transfer": transfer_runs,
    "anchors": plots.load_anchors,
}

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, force=True)
names = plots.figure_names([key for key in snakemake.input.keys() if snakemake.input[key]])
needed = dict.fromkeys(key for name in names for key in plots.FIGURES[name].inputs)
inputs = {
    key: LOADERS[key]() if key in LOADERS else pd.read_csv(snakemake.input[key]) for key in needed
}
theory = study.theory_of(pd.read_csv(snakemake.input.observables)).name
out = Path(snakemake.output[0]).parent
for name in names:
    fig = plots.draw(name, inputs, theory)
    logging.info("wrote %s and %s", *plots.save_figure(fig, out / name))
