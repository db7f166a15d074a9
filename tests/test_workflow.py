"""Snakemake end to end: dry run of the default study, bad configs, the smoke study."""

import shutil
import subprocess
import sys

import pandas as pd
import pytest
import xarray as xr

from fieldflow.analysis import OBSERVABLES

OBS_COLUMNS = "L,s,lam,sampler,observable,value,error,tau_int,tau_int_error,n_samples".split(",")
SAMPLER_COLUMNS = "L,s,lam,sampler,acceptance,ess,train_seconds,sample_seconds,n_samples".split(",")


def snakemake(root, workdir, *args, timeout=600):
    command = [sys.executable, "-m", "snakemake", "-s", str(root / "Snakefile"),
               "--directory", str(workdir), *args]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout)


def test_dry_run_of_default_study(root, tmp_path):
    run = snakemake(root, tmp_path, "-n", "--configfile", str(root / "config" / "config.yaml"))
    assert run.returncode == 0, run.stdout + run.stderr
    out = run.stdout + run.stderr
    for rule in ("train", "sample_flow", "hmc", "observables", "tables", "figures"):
        assert rule in out
    assert "L8_s-4_lam8" in out and "L10_s-4_lam5.55" in out


def test_bad_config_stops_before_any_job(root, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("points:\n  - {L: 7, s: -4.0, lam: 1.0}\n  - {L: 8, s: -4.0, lam: -2}\n")
    run = snakemake(root, tmp_path, "--cores", "1", "--configfile", str(bad))
    assert run.returncode != 0
    out = run.stdout + run.stderr
    assert "points[0].L" in out and "odd" in out
    assert "points[1].lam" in out
    assert not (tmp_path / "results").exists()


@pytest.mark.slow
def test_smoke_study_end_to_end(root, tmp_path):
    config = tmp_path / "smoke.yaml"
    shutil.copy(root / "config" / "smoke.yaml", config)
    run = snakemake(root, tmp_path, "--cores", "2", "--configfile", str(config))
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]

    obs = pd.read_csv(tmp_path / "results" / "tables" / "observables.csv")
    assert list(obs.columns) == OBS_COLUMNS
    assert set(obs.sampler) == {"realnvp", "nsf", "cnf", "hmc"}
    assert len(obs) == 3 * 4 * (len(OBSERVABLES) + 1)
    assert set(obs.observable) == {*OBSERVABLES, "pole_mass"}
    # The pole mass is NaN where no effective mass is defined on the plateau; not here.
    assert (obs.error > 0).all() and (obs.tau_int >= 0.4).all() and (obs.n_samples > 0).all()

    samplers = pd.read_csv(tmp_path / "results" / "tables" / "samplers.csv")
    assert list(samplers.columns[: len(SAMPLER_COLUMNS)]) == SAMPLER_COLUMNS
    assert len(samplers) == 12
    flows, hmc = samplers[samplers.sampler != "hmc"], samplers[samplers.sampler == "hmc"]
    assert flows.ess.between(0, 1).all() and (flows.train_seconds > 0).all()
    assert hmc.ess.isna().all() and hmc.train_seconds.isna().all()
    assert samplers.acceptance.between(0, 1).all()

    ds = xr.open_zarr(tmp_path / "results" / "ensembles" / "realnvp" / "L4_s-4_lam8.zarr")
    assert ds["phi"].dims == ("chain", "draw", "x", "y") and ds["phi"].dtype == "float32"
    for name in ("action", "log_q", "log_weight", "accepted"):
        assert name in ds
    for key in ("L", "s", "lam", "sampler", "seed", "versions"):
        assert key in ds.attrs

    parameters = pd.read_csv(tmp_path / "results" / "tables" / "parameters.csv")
    assert set(parameters.sampler) == {"realnvp", "nsf", "cnf"}
    assert (parameters.parameters > 0).all()
    figures = ("training", "acceptance_ess", "tau_int", "observables", "configurations",
               "families_vs_L", "ess_vs_seconds", "transfer", "scaling", "cost", "agreement",
               "correlators")  # fmt: skip
    for name in figures:
        for ext in ("png", "pdf"):
            assert (tmp_path / "results" / "figures" / f"{name}.{ext}").stat().st_size > 1000

    # The L = 6 flows started from the L = 4 ones (config init_from).
    assert "initialised from" in (tmp_path / "logs/train/cnf/L6_s-4_lam6.975.log").read_text()
    # ... and were also trained from scratch (transfer_baseline) to time the saving.
    transfer = pd.read_csv(tmp_path / "results" / "tables" / "transfer.csv")
    assert set(transfer.flow) == {"realnvp", "nsf", "cnf"}
    assert (transfer.L == 6).all() and (transfer.source_L == 4).all()
    assert (transfer.source_train_seconds > 0).all() and transfer.target_ess.between(0, 1).all()
    assert not list((tmp_path / "results" / "models").glob("*/*.scratch.pt"))  # temp()

    # The study tables: every flow estimate (both estimators) has a pull; at lam = 0 the
    # reference is the exact Gaussian result, elsewhere HMC.
    tables = tmp_path / "results" / "tables"
    agreement = pd.read_csv(tables / "agreement.csv")
    assert set(agreement.estimator) == {"mh", "reweighting"}
    assert set(agreement[agreement.lam == 0].reference) == {"exact"}
    assert set(agreement[agreement.lam != 0].reference) == {"hmc"}
    assert len(agreement[agreement.sampler != "hmc"]) == 3 * 3 * 2 * (len(OBSERVABLES) + 1)
    scaling = pd.read_csv(tables / "scaling.csv")
    assert len(scaling) == 12 and (scaling.seconds_per_independent > 0).all()
    assert set(pd.read_csv(tables / "exponents.csv").sampler) == {"hmc", "realnvp", "nsf", "cnf"}
    correlators = pd.read_csv(tables / "correlators.csv")
    assert set(correlators.t) == {0, 1, 2, 3}  # t = 0 ... L/2 for L = 4 and 6
    reweighting = pd.read_csv(tables / "reweighting.csv")
    assert set(reweighting.sampler) == {"realnvp", "nsf", "cnf"}

    # A self-contained report with every figure.
    report = tmp_path / "report.html"
    made = snakemake(root, tmp_path, "--configfile", str(config), "--report", str(report))
    assert made.returncode == 0 and "ERROR" not in made.stderr, made.stderr[-3000:]
    assert report.stat().st_size > 100_000

    # Nothing left to do, and a rerun is reproducible: same config, same ensembles.
    again = snakemake(root, tmp_path, "-n", "--configfile", str(config))
    assert "Nothing to be done" in again.stdout + again.stderr
