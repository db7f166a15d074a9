"""A tiny study (tests/data/tiny.yaml) through profiles/slurm on a real, single-node SLURM
cluster.

The fixture starts a throwaway cluster on this machine: Debian's slurm-wlm and munge
(installed by .ci/run), configured in a temporary directory (this machine the only node,
no accounting database, so the executor plugin reads job states from `squeue`, with a
MinJobAge long enough for it). It needs root, because slurmd runs the jobs. It stops
exactly the daemons it started, by pid, whether or not the test passes.
"""

import importlib.util
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from test_workflow import OBS_COLUMNS, SAMPLER_COLUMNS

BINARIES = (
    "munged",
    "slurmctld",
    "slurmd",
    "sbatch",
    "srun",
    "squeue",
    "sinfo",
    "scontrol",
    "scancel",
)
SEARCH_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
PARTITION = "fieldflow"
# Rules that the profile sends to SLURM, with their job counts in the tiny study (one
# point, realnvp and hmc); train_scratch is rule train under another name.
SLURM_JOBS = {"train": 1, "sample_flow": 1, "mcmc": 1, "observables": 2, "free_energy": 1}
LOCAL_RULES = ("tables", "study", "transfer", "figures", "all")


def _missing_requirements() -> str | None:
    missing = [name for name in BINARIES if shutil.which(name, path=SEARCH_PATH) is None]
    if missing:
        return f"SLURM not installed ({', '.join(missing)}): apt-get install slurm-wlm munge"
    if importlib.util.find_spec("snakemake_executor_plugin_slurm") is None:
        return "snakemake-executor-plugin-slurm not installed (pip install -e '.[test]')"
    if os.geteuid() != 0:
        return "a throwaway SLURM cluster needs root (slurmd runs the jobs)"
    return None


def _require_slurm():
    reason = _missing_requirements()
    if reason is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"CI must run the SLURM test: {reason}")
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(condition, seconds, what, procs=()):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for proc in procs:
            if proc.poll() is not None:
                raise RuntimeError(f"{what}: {proc.args[0]} exited with {proc.returncode}")
        if condition():
            return
        time.sleep(0.5)
    raise TimeoutError(f"{what}: not ready after {seconds} s")


@dataclass
class Cluster:
    env: dict
    directory: Path
    partition: str

    def query(self, *command) -> str:
        run = subprocess.run(command, env=self.env, capture_output=True, text=True, timeout=30)
        return run.stdout if run.returncode == 0 else ""


SLURM_CONF = """\
ClusterName=fieldflowtest
SlurmctldHost={host}(127.0.0.1)
SlurmUser=root
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
AuthType=auth/munge
AuthInfo=socket={munge_socket}
CredType=cred/munge
StateSaveLocation={d}/state
SlurmdSpoolDir={d}/spool
SlurmctldPidFile={d}/slurmctld.pid
SlurmdPidFile={d}/slurmd.pid
SlurmctldLogFile={d}/slurmctld.log
SlurmdLogFile={d}/slurmd.log
# No cgroups, no accounting: job states come from slurmctld (squeue), which keeps
# finished jobs for MinJobAge seconds.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SwitchType=switch/none
MpiDefault=none
MinJobAge=900
ReturnToService=2
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
# The profile's memory requests are sized for a cluster; this node declares enough
# (config_overrides: slurmd trusts this line) and nothing enforces it.
SlurmdParameters=config_overrides
NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory=262144 State=UNKNOWN
PartitionName={partition} Nodes={host} Default=YES MaxTime=INFINITE State=UP
"""


def _stop(proc: subprocess.Popen):
    """SIGTERM, then SIGKILL, to exactly this process."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


@pytest.fixture
def slurm_cluster(tmp_path):
    _require_slurm()
    # A short path: munge's socket name must fit a sockaddr_un.
    d = Path(tempfile.mkdtemp(prefix="ffslurm-", dir="/tmp"))
    for sub in ("munge", "state", "spool"):
        (d / sub).mkdir()
    # munged wants its socket's directories searchable by everyone, writable by root only.
    for path in (d, d / "munge"):
        path.chmod(0o755)
    key = d / "munge" / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o600)
    munge_socket = d / "munge" / "munge.socket"
    host = socket.gethostname().split(".")[0]
    conf = d / "slurm.conf"
    conf.write_text(
        SLURM_CONF.format(
            host=host,
            d=d,
            munge_socket=munge_socket,
            ctld_port=_free_port(),
            slurmd_port=_free_port(),
            cpus=os.cpu_count() or 1,
            partition=PARTITION,
        )
    )
    # The slurm-jobstep plugin drops every SLURM_* variable, SLURM_CONF too, before the
    # srun it runs inside each job. A cluster's own config, at /etc/slurm or served
    # configless, needs no SLURM_CONF; this throwaway one does, so an srun on PATH puts
    # it back.
    (d / "bin").mkdir(mode=0o755)
    srun = d / "bin" / "srun"
    real_srun = shutil.which("srun", path=SEARCH_PATH)
    srun.write_text(f'#!/bin/sh\nSLURM_CONF={conf} exec {real_srun} "$@"\n')
    srun.chmod(0o755)
    env = {
        **os.environ,
        "SLURM_CONF": str(conf),
        "PATH": os.pathsep.join([str(d / "bin"), SEARCH_PATH]),
    }
    cluster = Cluster(env=env, directory=d, partition=PARTITION)

    started: list[subprocess.Popen] = []

    def start(name, *args):
        with open(d / f"{name}.out", "w") as out:
            proc = subprocess.Popen(
                [shutil.which(name, path=SEARCH_PATH), *args],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        started.append(proc)
        return proc

    try:
        munged = start(
            "munged",
            "--foreground",
            f"--key-file={key}",
            f"--socket={munge_socket}",
            f"--pid-file={d}/munge/munged.pid",
            f"--log-file={d}/munge/munged.log",
            f"--seed-file={d}/munge/munged.seed",
        )
        _wait_for(munge_socket.exists, 30, "munged", [munged])
        slurmctld = start("slurmctld", "-D", "-c", "-f", str(conf))
        _wait_for(lambda: cluster.query("sinfo", "-h"), 60, "slurmctld", [slurmctld])
        slurmd = start("slurmd", "-D", "-f", str(conf), "-N", host)
        _wait_for(
            lambda: "idle" in cluster.query("sinfo", "-h", "-o", "%T"),
            60,
            "slurmd",
            [slurmctld, slurmd],
        )
        yield cluster
    finally:
        try:
            if len(started) >= 2 and started[1].poll() is None:  # slurmctld is up
                subprocess.run(
                    ["scancel", "--partition", PARTITION], env=env, timeout=30, capture_output=True
                )
                _wait_for(
                    lambda: not cluster.query("squeue", "-h", "-t", "R,CG"), 60, "cancelling jobs"
                )
        except Exception as err:  # teardown goes on regardless
            print(f"cancelling the test cluster's jobs: {err}", file=sys.stderr)
        for proc in reversed(started):
            _stop(proc)
        # The daemons' logs stay with the test's files, for a failure's post-mortem.
        for log in [*d.glob("*.log"), *d.glob("*.out"), *d.glob("munge/*.log")]:
            shutil.copy(log, tmp_path / f"cluster-{log.name}")
        shutil.rmtree(d, ignore_errors=True)


def user_profile(root: Path, directory: Path, partition: str) -> Path:
    """profiles/slurm with its two site settings edited, as a user does (docs/cluster.md):
    the test cluster's partition, and no account (it has no accounting)."""
    profile = directory / "slurm-profile"
    shutil.copytree(root / "profiles" / "slurm", profile)
    text = (profile / "config.yaml").read_text()
    text, n_partition = re.subn(
        r'(?m)^(\s*slurm_partition:) "your_partition"', rf'\1 "{partition}"', text
    )
    text, n_account = re.subn(r'(?m)^\s*slurm_account: "your_account".*\n', "", text)
    assert (n_partition, n_account) == (1, 1), "profiles/slurm lost its two site settings"
    (profile / "config.yaml").write_text(text)
    return profile


@pytest.mark.slow
def test_tiny_study_through_slurm(root, tmp_path, tiny_config, slurm_cluster):
    profile = user_profile(root, tmp_path, slurm_cluster.partition)
    command = [
        sys.executable,
        "-m",
        "snakemake",
        "-s",
        str(root / "Snakefile"),
        "--directory",
        str(tmp_path),
        "--workflow-profile",
        str(profile),
        "--configfile",
        str(tiny_config),
        # No slurmdbd: job states from squeue; check soon after submitting; keep
        # the logs of successful jobs to inspect them below.
        "--slurm-status-command",
        "squeue",
        "--slurm-init-seconds-before-status-checks",
        "5",
        "--slurm-keep-successful-logs",
    ]
    start = time.monotonic()
    run = subprocess.run(
        command, env=slurm_cluster.env, capture_output=True, text=True, timeout=1800
    )
    seconds = time.monotonic() - start
    out = run.stdout + run.stderr
    (tmp_path / "snakemake.out").write_text(out)
    print(f"tiny study through SLURM: {seconds:.0f} s wall clock")
    assert run.returncode == 0, out[-6000:]

    # The contract tables.
    obs = pd.read_csv(tmp_path / "results" / "tables" / "observables.csv")
    assert list(obs.columns) == OBS_COLUMNS
    assert set(obs.sampler) == {"realnvp", "hmc"}
    assert (obs.error > 0).all() and (obs.n_samples > 0).all()
    samplers = pd.read_csv(tmp_path / "results" / "tables" / "samplers.csv")
    assert list(samplers.columns[: len(SAMPLER_COLUMNS)]) == SAMPLER_COLUMNS
    assert len(samplers) == 2 and samplers.acceptance.between(0, 1).all()
    for name in ("agreement", "scaling"):
        assert (tmp_path / "results" / "tables" / f"{name}.csv").stat().st_size > 0

    # Every heavy job went through SLURM: submitted with a job id, ran in the test
    # partition, finished COMPLETED there, and left its SLURM log.
    submitted = re.findall(
        r"Job (\d+) has been submitted with SLURM jobid (\d+) \(log: (.+?)\)\.", out
    )
    assert len(submitted) == sum(SLURM_JOBS.values()), out[-6000:]
    slurm_ids = {slurm_id for _, slurm_id, _ in submitted}
    assert len(slurm_ids) == len(submitted)
    states = {}
    for line in slurm_cluster.query("squeue", "-h", "--states=all", "-o", "%i|%T|%P").split():
        job_id, state, partition = line.split("|")
        states[job_id] = (state, partition)
    for slurm_id in slurm_ids:
        assert states.get(slurm_id) == ("COMPLETED", slurm_cluster.partition), slurm_id
    logdir = tmp_path / ".snakemake" / "slurm_logs"
    for rule, count in SLURM_JOBS.items():
        logs = list((logdir / f"rule_{rule}").rglob("*.log"))  # in a folder per wildcard value
        assert len(logs) == count, (rule, logs)
        assert all(log.stem in slurm_ids for log in logs)
    for _, slurm_id, log in submitted:
        assert Path(log).name == f"{slurm_id}.log" and Path(log).stat().st_size > 0
    # ... and only those: the cheap rules ran here.
    for rule in LOCAL_RULES:
        assert not (logdir / f"rule_{rule}").exists()
