"""fieldflow's own errors, and how a job reports them.

An expected failure (a bad config, a corrupt or missing file, a diverged training) is a
:class:`FieldflowError`: the job prints one line that names the key or file to its log
(which the profiles make Snakemake show) and exits with status 1. Anything else is a bug
and keeps its traceback.
"""

from __future__ import annotations

import logging
import sys
from types import TracebackType
from typing import TextIO

log = logging.getLogger("fieldflow")


class FieldflowError(Exception):
    """An expected failure whose message names the key or file at fault."""

    def problems(self) -> list[str]:
        """The message as one line per problem (here: one line)."""
        return [" ".join(str(self).split()) or type(self).__name__]


def report(error: FieldflowError, where: str = "", stream: TextIO | None = None) -> None:
    """Print ``error`` as ``fieldflow: [where: ]<problem>``, one line per problem."""
    prefix = f"fieldflow: {where}: " if where else "fieldflow: "
    for problem in error.problems():
        print(prefix + problem, file=stream or sys.__stderr__)


def _excepthook(
    kind: type[BaseException], error: BaseException, traceback: TracebackType | None
) -> None:
    if isinstance(error, FieldflowError):
        # To the job's log, which Snakemake prints when the job fails (show-failed-logs in
        # the profiles): printing to the terminal as well would show the line twice.
        report(error, stream=sys.stderr)
        return  # the interpreter still exits with status 1
    sys.__excepthook__(kind, error, traceback)


def install() -> None:
    """Report uncaught :class:`FieldflowError` s in one line for the rest of this process."""
    sys.excepthook = _excepthook


class ResultFileError(FieldflowError, ValueError):
    """A table written by an earlier stage that this one cannot use (an older layout…)."""
