"""An interrupted study resumes: killing the controlling snakemake mid-run (SIGTERM, then
SIGKILL, to its whole process group) and starting it again finishes the study without
redoing the jobs that had finished and without a corrupt output. The study is
tests/data/tiny.yaml: nine jobs, enough to cut twice and still have work left."""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from test_workflow import OBS_COLUMNS, SAMPLER_COLUMNS

from fieldflow.io import read_ensemble

JOB = re.compile(r"^(?:local)?rule (\w+):\n((?:    .*\n)+)", re.MULTILINE)
FINISHED = re.compile(r"Finished jobid: (\d+) \(Rule: (\w+)\)")


def jobs(log: str) -> tuple[dict[str, list[str]], set[str]]:
    """The jobs a snakemake log shows started (jobid -> outputs) and finished (jobids)."""
    started = {}
    for match in JOB.finditer(log):
        fields = dict(re.findall(r"^    (\w+): (.*)$", match.group(2), re.MULTILINE))
        if "jobid" in fields:
            started[fields["jobid"]] = fields.get("output", "").split(", ")
    return started, {jobid for jobid, _ in FINISHED.findall(log)}


class Run:
    """snakemake --cores 2 on a study, in a process group of its own."""

    def __init__(self, root: Path, config: Path, name: str, *args: str):
        workdir = config.parent
        self.log = workdir / f"{name}.out"
        command = [
            sys.executable,
            "-m",
            "snakemake",
            "-s",
            str(root / "Snakefile"),
            "--directory",
            str(workdir),
            "--cores",
            "2",
            "--configfile",
            str(config),
            *args,
        ]
        with open(self.log, "w") as out:
            self.proc = subprocess.Popen(
                command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )

    def text(self) -> str:
        return self.log.read_text()

    def kill_when(self, n_finished: int, sig: signal.Signals, timeout=900) -> bool:
        """Signal the process group once n_finished jobs are done, another is running and
        the log has been quiet for a moment; True if snakemake exited within a minute."""
        deadline = time.monotonic() + timeout
        last, quiet_since = "", time.monotonic()
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, "snakemake ended before the kill:\n" + self.text()
            text = self.text()
            if text != last:
                last, quiet_since = text, time.monotonic()
            started, finished = jobs(text)
            # Snakemake 9's SIGTERM handler takes the scheduler's lock, which is held
            # while a finished job is booked: a signal right then deadlocks it. Wait
            # for a quiet log, i.e. an idle scheduler, then signal.
            quiet = time.monotonic() - quiet_since > 2
            if len(finished) >= n_finished and set(started) - finished and quiet:
                os.killpg(self.proc.pid, sig)
                try:
                    self.proc.wait(timeout=60)
                    exited = True
                except subprocess.TimeoutExpired:  # what a batch system does next
                    os.killpg(self.proc.pid, signal.SIGKILL)
                    self.proc.wait(timeout=60)
                    exited = False
                # Nothing of the group survives: no job keeps writing behind our back.
                _wait_group_gone(self.proc.pid)
                return exited
            time.sleep(0.2)
        raise TimeoutError(self.text()[-3000:])

    def wait(self, timeout=1200) -> int:
        return self.proc.wait(timeout=timeout)


def _wait_group_gone(pgid: int, seconds: float = 60):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    os.killpg(pgid, signal.SIGKILL)
    pytest.fail(f"processes of group {pgid} outlived snakemake by {seconds} s")


def finished_outputs(run: Run, workdir: Path) -> dict[str, int]:
    """mtime (ns) of every output of a job the run finished.

    The from-scratch models of rule train_scratch are temp(): Snakemake deletes them as
    soon as their job is done, so whether one is still there depends on timing.
    """
    started, finished = jobs(run.text())
    outputs = [
        path
        for jobid in finished
        for path in started[jobid]
        if path and not path.endswith(".scratch.pt")
    ]
    return {path: (workdir / path).stat().st_mtime_ns for path in outputs}


def interrupted_outputs(run: Run) -> set[str]:
    """The first output of every job that was running when the run was killed."""
    started, finished = jobs(run.text())
    return {started[jobid][0] for jobid in set(started) - finished}


@pytest.fixture
def runs():
    """Every snakemake the test starts; any still running at the end is killed."""
    started: list[Run] = []
    yield started
    for run in started:
        if run.proc.poll() is None:
            os.killpg(run.proc.pid, signal.SIGKILL)
            run.proc.wait(timeout=60)


@pytest.mark.slow
def test_killed_study_resumes_without_redoing_finished_jobs(root, tmp_path, tiny_config, runs):
    def run(name, *args):
        runs.append(Run(root, tiny_config, name, *args))
        return runs[-1]

    start = time.monotonic()
    # 1. SIGTERM to the process group, as a terminal's Ctrl-C or a batch system would;
    # Snakemake and the running jobs stop.
    first = run("first")
    graceful = first.kill_when(3, signal.SIGTERM)
    done = finished_outputs(first, tmp_path)
    cut = interrupted_outputs(first)
    assert done and cut
    if graceful:
        assert "Will exit after finishing currently running jobs" in first.text()
    else:  # it hung and got a SIGKILL after a minute, leaving its lock behind
        print("snakemake did not exit on SIGTERM within 60 s; killed")
        assert run("unlock-first", "--unlock").wait(timeout=300) == 0

    # 2. Again, then SIGKILL: no cleanup at all; the lock and incomplete markers stay.
    second = run("second")
    second.kill_when(3, signal.SIGKILL)
    started_second = {outputs[0] for outputs in jobs(second.text())[0].values()}
    assert not started_second & set(done), "finished jobs were redone"
    done_second = finished_outputs(second, tmp_path)
    cut_second = interrupted_outputs(second)
    assert done_second and cut_second

    # 3. The SIGKILL left snakemake's lock behind: --unlock, then the same command again.
    locked = run("locked")
    assert locked.wait(timeout=300) != 0 and "cannot be locked" in locked.text()
    assert run("unlock", "--unlock").wait(timeout=300) == 0
    last = run("last")
    assert last.wait() == 0, last.text()[-6000:]
    seconds = time.monotonic() - start
    print(f"interruption test: {seconds:.0f} s wall clock, two kills and three runs")

    # Jobs finished before a kill were not redone (their outputs are untouched); the
    # jobs cut off were (--rerun-incomplete, from profiles/default).
    started_last = {outputs[0] for outputs in jobs(last.text())[0].values()}
    assert not started_last & (set(done) | set(done_second)), "finished jobs were redone"
    assert cut <= started_second | started_last, "jobs cut off by SIGTERM were not redone"
    assert cut_second <= started_last, "jobs cut off by SIGKILL were not redone"
    for path, mtime in {**done, **done_second}.items():
        assert (tmp_path / path).stat().st_mtime_ns == mtime, f"{path} was rewritten"

    # No corrupt output: every ensemble is complete, the tables are whole, and
    # Snakemake sees nothing left to do.
    ensembles = sorted((tmp_path / "results" / "ensembles").glob("*/*.zarr"))
    assert len(ensembles) == 2  # realnvp and hmc
    # Killed writers' leftovers went when their output was written again.
    assert not list((tmp_path / "results").rglob("*.partial")), "stale .partial files"
    for path in ensembles:
        assert read_ensemble(path).sizes["draw"] > 0
    obs = pd.read_csv(tmp_path / "results" / "tables" / "observables.csv")
    assert list(obs.columns) == OBS_COLUMNS and obs.value.notna().all()
    assert len(obs) == len(obs.drop_duplicates(["L", "s", "lam", "sampler", "observable"]))
    samplers = pd.read_csv(tmp_path / "results" / "tables" / "samplers.csv")
    assert list(samplers.columns[: len(SAMPLER_COLUMNS)]) == SAMPLER_COLUMNS
    assert len(samplers) == 2
    check = run("check", "-n")
    assert check.wait(timeout=300) == 0 and "Nothing to be done" in check.text()
