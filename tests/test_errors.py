"""fieldflow's own errors print one line per problem; anything else keeps its traceback."""

import io
import subprocess
import sys

import pytest

from fieldflow import errors
from fieldflow.config import ConfigError
from fieldflow.flows import ModelFileError
from fieldflow.io import EnsembleError
from fieldflow.training import TrainingDiverged


@pytest.mark.parametrize(
    "kind", [ConfigError, ModelFileError, EnsembleError, TrainingDiverged, errors.ResultFileError]
)
def test_expected_failures_are_fieldflow_errors(kind):
    assert issubclass(kind, errors.FieldflowError)


def test_report_prints_one_line_per_problem():
    out = io.StringIO()
    errors.report(ModelFileError("model file m.pt is corrupt:\n  bad zip"), stream=out)
    assert out.getvalue() == "fieldflow: model file m.pt is corrupt: bad zip\n"
    out = io.StringIO()
    problems = "invalid config:\n  config key 'a': bad\n  config key 'b': worse"
    errors.report(ConfigError(problems), where="c.yaml", stream=out)
    assert out.getvalue().splitlines() == [
        "fieldflow: c.yaml: config key 'a': bad",
        "fieldflow: c.yaml: config key 'b': worse",
    ]


def run_job(tmp_path, raised: str) -> subprocess.CompletedProcess:
    """A job script as Snakemake runs one: log_to, then an uncaught exception."""
    script = (
        "from fieldflow.stages import log_to\n"
        "from fieldflow.flows import ModelFileError\n"
        f"log_to({str(tmp_path / 'job.log')!r})\n"
        f"raise {raised}\n"
    )
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)


def test_a_job_reports_its_own_error_in_one_line(tmp_path):
    run = run_job(tmp_path, "ModelFileError('model file results/m.pt does not exist')")
    assert run.returncode == 1 and run.stderr == ""
    log = (tmp_path / "job.log").read_text()
    assert log == "fieldflow: model file results/m.pt does not exist\n"


def test_an_unexpected_error_keeps_its_traceback(tmp_path):
    run = run_job(tmp_path, "KeyError('bug')")
    assert run.returncode == 1
    assert "Traceback" in (tmp_path / "job.log").read_text()
