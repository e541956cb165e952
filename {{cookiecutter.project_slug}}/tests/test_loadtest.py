"""`make loadtest` (locust, headless) against the service started with its own command:
every task of the load test runs, and none fails."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import API_KEY, AUTH_ENV
from .servers import service_process

LOADTEST = Path(__file__).resolve().parents[1] / "loadtest"
TASKS = {
    "/v1/models",
    "/api/v1/generate",
    "/api/v1/generate/stream",
    "/v1/chat/completions",
    "/v1/chat/completions [tools]",
{%- if cookiecutter.use_websocket %}
    "/ws/chat reply",
{%- endif %}
}


def test_every_task_of_the_load_test_runs_without_a_failure(tmp_path: Path) -> None:
    # No limits, and no access log: nobody reads the server's output while locust runs.
    quiet = {"RATE_LIMIT_RPM": "0", "RATE_LIMIT_TPM": "0", "LOG_LEVEL": "WARNING"}
    with service_process(tmp_path, **AUTH_ENV, **quiet) as (base_url, _):
        try:
            result = subprocess.run(
                [
                    Path(sys.executable).with_name("locust"),
                    *("-f", str(LOADTEST), "--headless", "--host", base_url),
                    *("--users", "4", "--spawn-rate", "4", "--run-time", "6s"),
                    *("--stop-timeout", "10", "--csv", str(tmp_path / "load"), "--only-summary"),
                ],
                env={**os.environ, "LOADTEST_API_KEY": API_KEY},
                capture_output=True,
                text=True,
                timeout=120,  # locust stops itself after --run-time and --stop-timeout
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            said = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else ""
            pytest.fail(f"locust was still running after {exc.timeout} s:\n{said[-3000:]}")
    assert result.returncode == 0, result.stderr[-3000:]
    with (tmp_path / "load_stats.csv").open(newline="") as stats:
        rows = {row["Name"]: row for row in csv.DictReader(stats) if row["Type"]}
    assert set(rows) >= TASKS, sorted(rows)
    for name in TASKS:
        assert int(rows[name]["Request Count"]) > 0, rows[name]
        assert rows[name]["Failure Count"] == "0", rows[name]
