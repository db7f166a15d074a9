"""Snakemake end to end: dry run of the default study, bad configs, the smoke study."""

import re
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import xarray as xr
import yaml

from fieldflow import plots
from fieldflow.analysis import OBSERVABLES
from fieldflow.study import TUNNELLING_COLUMNS

OBS_COLUMNS = (
    "L,s,lam,sampler,observable,value,error,tau_int,tau_int_error,n_samples,reliable,reason"
).split(",")  # the contract's ten, then the quality gate's verdict
SAMPLER_COLUMNS = "L,s,lam,sampler,acceptance,ess,train_seconds,sample_seconds,n_samples".split(",")


def snakemake(root, workdir, *args, timeout=600):
    command = [
        sys.executable,
        "-m",
        "snakemake",
        "-s",
        str(root / "Snakefile"),
        "--directory",
        str(workdir),
        *args,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout)


def test_dry_run_of_default_study(root, tmp_path):
    run = snakemake(root, tmp_path, "-n", "--configfile", str(root / "config" / "config.yaml"))
    assert run.returncode == 0, run.stdout + run.stderr
    out = run.stdout + run.stderr
    for rule in ("train", "sample_flow", "mcmc", "observables", "tables", "figures"):
        assert rule in out
    assert "L8_s-4_lam8" in out and "L10_s-4_lam5.55" in out


def test_bad_config_stops_before_any_job(root, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("points:\n  - {L: 7, s: -4.0, lam: 1.0}\n  - {L: 8, s: -4.0, lam: -2}\n")
    run = snakemake(root, tmp_path, "--cores", "1", "--configfile", str(bad))
    assert run.returncode == 1
    out = run.stdout + run.stderr
    # One line per problem, naming the file and the key, and no traceback.
    problems = [line for line in out.splitlines() if line.startswith("fieldflow:")]
    assert len(problems) == 2, out
    assert all(line.startswith(f"fieldflow: {bad}: config key 'points[") for line in problems)
    assert any("'points[0].L'" in line and "odd" in line for line in problems)
    assert any("'points[1].lam'" in line for line in problems)
    assert "Traceback" not in out and 'File "' not in out
    assert not (tmp_path / "results").exists()


def test_removed_key_names_its_replacement(root, tmp_path):
    old = tmp_path / "old.yaml"
    old.write_text("points:\n  - {L: 4, s: -4.0, lam: 8.0}\nhmc:\n  enabled: false\n")
    run = snakemake(root, tmp_path, "--cores", "1", "--configfile", str(old))
    assert run.returncode != 0 and "'hmc.enabled' was removed" in run.stdout + run.stderr
    assert "'mcmc'" in run.stdout + run.stderr and not (tmp_path / "results").exists()


def reversed_keys(value):
    """The same config with every mapping's keys in reverse order."""
    if isinstance(value, dict):
        return {key: reversed_keys(value[key]) for key in reversed(list(value))}
    if isinstance(value, list):
        return [reversed_keys(item) for item in value]
    return value


@pytest.mark.slow
def test_smoke_study_end_to_end(root, tmp_path):
    config = tmp_path / "smoke.yaml"
    shutil.copy(root / "config" / "smoke.yaml", config)
    # Minutes on 2 idle cores; more than ten when other jobs share them.
    run = snakemake(root, tmp_path, "--cores", "2", "--configfile", str(config), timeout=1800)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]

    obs = pd.read_csv(tmp_path / "results" / "tables" / "observables.csv")
    assert list(obs.columns) == OBS_COLUMNS
    assert set(obs.sampler) == {"realnvp", "nsf", "cnf", "hmc", "cluster"}
    assert len(obs) == 3 * 5 * (len(OBSERVABLES) + 1)
    assert set(obs.observable) == {*OBSERVABLES, "pole_mass"}
    # The pole mass is NaN where no effective mass is defined on the plateau; not here.
    assert (obs.error > 0).all() and (obs.tau_int >= 0.4).all() and (obs.n_samples > 0).all()

    samplers = pd.read_csv(tmp_path / "results" / "tables" / "samplers.csv")
    assert list(samplers.columns[: len(SAMPLER_COLUMNS)]) == SAMPLER_COLUMNS
    assert len(samplers) == 15
    kinds = dict(zip(samplers.sampler, samplers.kind, strict=True))
    assert kinds == {
        "realnvp": "flow",
        "nsf": "flow",
        "cnf": "flow",
        "hmc": "mcmc",
        "cluster": "mcmc",
    }
    flows, mcmc = samplers[samplers.kind == "flow"], samplers[samplers.kind == "mcmc"]
    assert flows.ess.between(0, 1).all() and (flows.train_seconds > 0).all()
    assert mcmc.ess.isna().all() and mcmc.train_seconds.isna().all()
    assert (mcmc.step_size > 0).all() and (mcmc.sample_seconds > 0).all()
    # Every sampler's seconds per update, timed batch by batch inside its job.
    assert (samplers.seconds_per_update > 0).all()
    assert samplers.seconds_per_update_error.notna().all()
    assert samplers.acceptance.between(0, 1).all()

    ds = xr.open_zarr(tmp_path / "results" / "ensembles" / "realnvp" / "L4_s-4_lam8.zarr")
    assert ds["phi"].dims == ("chain", "draw", "x", "y") and ds["phi"].dtype == "float32"
    for name in ("action", "log_q", "log_weight", "accepted"):
        assert name in ds
    for key in ("L", "s", "lam", "sampler", "seed", "versions"):
        assert key in ds.attrs
    assert ds.attrs["kind"] == "flow"
    cluster = xr.open_zarr(tmp_path / "results" / "ensembles" / "cluster" / "L4_s-4_lam8.zarr")
    assert cluster.attrs["kind"] == "mcmc" and cluster["action"].dtype == "float64"

    parameters = pd.read_csv(tmp_path / "results" / "tables" / "parameters.csv")
    assert set(parameters.sampler) == {"realnvp", "nsf", "cnf"}
    assert (parameters.parameters > 0).all()
    for name in plots.FIGURES:  # every figure of the registry, transfer included
        for ext in ("png", "pdf"):
            assert (tmp_path / "results" / "figures" / f"{name}.{ext}").stat().st_size > 1000

    # log Z of every flow ensemble, and by integration at "tiny" (config free_energy).
    free = pd.read_csv(tmp_path / "results" / "tables" / "free_energy.csv")
    assert list(free.columns[:9]) == "L,s,lam,sampler,method,log_Z,error,f,f_error".split(",")
    assert sorted(free[free.method == "flow"].sampler) == sorted(["realnvp", "nsf", "cnf"] * 3)
    integrated = free[free.method == "integration"]
    assert list(integrated[["L", "s", "lam", "sampler"]].itertuples(index=False, name=None)) == [
        (4, -4.0, 8.0, "hmc")
    ]
    assert np.isfinite(integrated[["log_Z", "error"]].to_numpy()).all()
    assert free[(free.method == "flow") & (free.L == 4) & (free.s == -4.0)].pull.notna().all()
    assert len(list((tmp_path / "results" / "integration").glob("*/*.zarr"))) == 4
    assert "2 nodes a leg < 4" in integrated.reason.iloc[0]  # smoke's 2 nodes: flagged

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
    assert set(agreement[agreement.lam != 0].reference) == {"hmc", "cluster"}
    # Each flow estimator against both baselines at 2 points, and the exact value at λ = 0.
    flows = agreement[agreement.sampler.map(kinds) == "flow"]
    assert len(flows) == 3 * 2 * (2 * 2 + 1) * (len(OBSERVABLES) + 1)
    # The baselines against each other, and against the exact value at λ = 0.
    assert set(agreement[agreement.sampler == "hmc"].reference) == {"exact", "cluster"}
    # The baselines' chains are long against their τ_int and visit both signs of M.
    assert obs[obs.sampler.map(kinds) == "mcmc"].reliable.all()
    assert agreement.reliable.dtype == bool
    scaling = pd.read_csv(tables / "scaling.csv")
    assert len(scaling) == 15 and (scaling.seconds_per_independent > 0).all()
    assert set(pd.read_csv(tables / "exponents.csv").sampler) == set(kinds)
    crossover = pd.read_csv(tables / "crossover.csv")
    assert set(crossover.baseline) == {"hmc", "cluster"} and set(crossover.sampler) == set(
        flows.sampler
    )
    assert set(crossover.verdict) <= {"crossover", "none", "undecided"}
    assert crossover[crossover.verdict != "crossover"].first_L.isna().all()
    correlators = pd.read_csv(tables / "correlators.csv")
    assert set(correlators.t) == {0, 1, 2, 3}  # t = 0 ... L/2 for L = 4 and 6
    reweighting = pd.read_csv(tables / "reweighting.csv")
    assert set(reweighting.sampler) == {"realnvp", "nsf", "cnf"}
    # Tunnelling: per ensemble, then one row per point and sampler; at these small points
    # every sampler changes vacuum, so none is a bound, and one is cheapest per point.
    assert (tmp_path / "results/observables/hmc/L4_s-4_lam8.tunnelling.csv").is_file()
    tunnel = pd.read_csv(tables / "tunnelling.csv")
    assert list(tunnel.columns) == TUNNELLING_COLUMNS and len(tunnel) == 15
    assert (tunnel.crossings > 0).all() and tunnel.bound.isna().all(), tunnel  # "" read as NaN
    assert (tunnel.tau_m > 0).all() and (tunnel.per_second > 0).all()
    assert tunnel.groupby(["L", "s", "lam"]).cheapest.sum().eq(1).all()
    magnetization = obs[obs.observable == "magnetization"]
    assert len(magnetization) == 15 and (magnetization.error > 0).all()
    histograms = pd.read_csv(tables / "magnetization_histograms.csv")
    assert len(histograms) == 15 * 60
    assert histograms.groupby(["L", "s", "lam", "sampler"]).density.sum().gt(0).all()

    # A self-contained report with every figure.
    report = tmp_path / "report.html"
    made = snakemake(root, tmp_path, "--configfile", str(config), "--report", str(report))
    assert made.returncode == 0 and "ERROR" not in made.stderr, made.stderr[-3000:]
    assert report.stat().st_size > 100_000

    # Nothing left to do, and a rerun is reproducible: same config, same ensembles.
    again = snakemake(root, tmp_path, "-n", "--configfile", str(config))
    assert "Nothing to be done" in again.stdout + again.stderr

    # The same settings with every key in another order change no job's params.
    reordered = tmp_path / "reordered.yaml"
    reordered.write_text(
        yaml.safe_dump(reversed_keys(yaml.safe_load(config.read_text())), sort_keys=False)
    )
    assert reordered.read_text() != config.read_text()
    again = snakemake(root, tmp_path, "-n", "--configfile", str(reordered))
    assert "Nothing to be done" in again.stdout + again.stderr, again.stdout[-3000:]
    # ... while a changed value reruns exactly the jobs that use it.
    changed = yaml.safe_load(config.read_text())
    changed["cluster"]["local_sweeps"] = 2
    reordered.write_text(yaml.safe_dump(changed))
    again = snakemake(root, tmp_path, "-n", "--configfile", str(reordered))
    out = again.stdout + again.stderr
    jobs = re.findall(r"^(?:local)?rule (\w+):\n(?:    .*\n)*?    output: (\S+)", out, re.M)
    assert again.returncode == 0 and jobs, out[-3000:]
    reran = {(rule, path.split("/")[2]) for rule, path in jobs if path.startswith("results/en")}
    assert reran == {("mcmc", "cluster")}, out[-3000:]  # cluster's ensembles, nothing else's
    assert sum(rule == "mcmc" for rule, _ in jobs) == 3, out[-3000:]  # one per point
    assert not {"train", "sample_flow"} & {rule for rule, _ in jobs}, out[-3000:]

    # A deleted data product is rebuilt by a plain run, though the tables are up to date
    # (the dry run shows it); its jobs then run, without the tables and figures after them.
    ensemble = "results/ensembles/cluster/L4_s1_lam0.zarr"
    model = "results/models/realnvp/L4_s1_lam0.pt"
    shutil.rmtree(tmp_path / ensemble)
    (tmp_path / model).unlink()
    again = snakemake(root, tmp_path, "-n", "--configfile", str(config))
    out = again.stdout + again.stderr
    assert ensemble in out and model in out, out[-3000:]
    # The targets before --configfile, which would take them for more config files.
    rebuilt = snakemake(
        root, tmp_path, ensemble, model, "--cores", "2", "--configfile", str(config)
    )
    assert rebuilt.returncode == 0, rebuilt.stdout[-3000:] + rebuilt.stderr[-3000:]
    assert (tmp_path / ensemble).is_dir() and (tmp_path / model).is_file()


def test_u1_study_end_to_end(root, tmp_path):
    """A U(1) study through every rule: the tables in the theory's columns, every figure
    that applies to it, and estimates that agree with the exact solution."""
    config = tmp_path / "u1.yaml"
    shutil.copy(root / "tests" / "data" / "u1-tiny.yaml", config)
    run = snakemake(root, tmp_path, "--cores", "2", "--configfile", str(config), timeout=1200)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    tables = tmp_path / "results" / "tables"
    agreement = pd.read_csv(tables / "agreement.csv")
    assert set(agreement.sampler) == {"gauge", "hmc"} and set(agreement.beta) == {1.0, 3.0}
    assert set(agreement.reference) == {"exact"}
    assert set(agreement.observable) == {
        "plaquette",
        "topological_susceptibility",
        "topological_charge",
    }
    assert (agreement.pull.abs() < 5).all(), agreement.to_string()
    crossover = pd.read_csv(tables / "crossover.csv")
    assert list(crossover.columns[:3]) == ["beta", "sampler", "baseline"]  # a verdict per β
    assert set(crossover.verdict) <= {"crossover", "none", "undecided"}
    # One verdict per β and cost (which way it goes depends on the machine's timings).
    assert sorted(crossover.groupby("beta").size().to_dict().items()) == [(1.0, 3), (3.0, 3)]
    assert (crossover[crossover.verdict == "crossover"].first_L == 4).all()
    scaling = pd.read_csv(tables / "scaling.csv")
    assert {"tau_q", "tau_chi_t", "bound"} <= set(scaling.columns) and "xi2" not in scaling
    for name in plots.figure_names(theory="u1"):
        assert (tmp_path / "results" / "figures" / f"{name}.png").stat().st_size > 1000
