"""The one error family: every error a user can fix or must know about derives from ``CurateError`` and carries
the exit code the CLI ends with, so the CLI catches one type and prints one line (no traceback).

Exit codes: 2 = the input or the settings are wrong (fix them and run again); 1 = the run failed on the way
(a service is down, a stage broke its contract). Anything else is a bug and keeps its traceback.
"""
from __future__ import annotations

EXIT_FAILED = 1
EXIT_USAGE = 2


class CurateError(Exception):
    """Base of curate's user-facing errors; the message names what is wrong and where (a path, a flag, a URL)."""

    exit_code: int = EXIT_USAGE


class UsageError(CurateError, ValueError):
    """Bad input or settings: a config key, a flag, an input file, a taxonomy, a model folder."""

    exit_code = EXIT_USAGE


class RunFailed(CurateError, RuntimeError):
    """The run could not finish: a service is down or refused, or a stage broke its contract."""

    exit_code = EXIT_FAILED
