"""The service's command line as an operator runs it, for the tests of its commands."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from .conftest import AUTH_ENV


def command(
    *args: str, tmp_path: Path, stdin: str = "", **env: str
) -> subprocess.CompletedProcess[str]:
    """`python -m {{ cookiecutter.project_slug }} ARGS` (DATABASE_URL: the test run's)."""
    return subprocess.run(
        [sys.executable, "-m", "{{ cookiecutter.project_slug }}", *args],
        cwd=tmp_path,  # no .env there: only the environment applies
        env={**os.environ, "ENVIRONMENT": "test", "LOG_FORMAT": "json", **AUTH_ENV, **env},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    """The command failed with status 1 and one `error: ...` line, no traceback."""
    assert result.returncode == 1, result
    assert "Traceback" not in result.stderr, result.stderr
    (line,) = result.stderr.splitlines()
    assert line.startswith("error: "), line
    return line
