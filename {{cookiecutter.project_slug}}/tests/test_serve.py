"""Start the service with its own command and call it over real HTTP."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from .conftest import AUTH, AUTH_ENV


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    port = free_port()
    env = {
        **os.environ,
        "ENVIRONMENT": "test",
        **AUTH_ENV,
        "LOG_FORMAT": "json",
        "PORT": str(port),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "{{ cookiecutter.project_slug }}"],
        cwd=tmp_path,  # no .env there: only the variables above apply
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            httpx.get(f"{base_url}/health/live", timeout=1).raise_for_status()
            break
        except httpx.HTTPError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"server did not start:\n{process.communicate()[0]}")
            time.sleep(0.1)
    yield base_url, process
    if process.poll() is None:
        process.kill()
        process.wait()


def test_served_app_generates_over_http(server: tuple[str, subprocess.Popen[str]]) -> None:
    base_url, process = server
    with httpx.Client(base_url=base_url, timeout=10) as http:
        response = http.post(
            "/api/v1/generate", json={"prompt": "hi"}, headers={**AUTH, "X-Request-ID": "e2e-1"}
        )
        assert response.status_code == 200
        assert response.json()["text"]
        assert response.headers["X-Request-ID"] == "e2e-1"
        assert "server" not in response.headers
{%- if cookiecutter.auth != "none" %}
        assert http.post("/api/v1/generate", json={"prompt": "hi"}).status_code == 401
{%- endif %}
        assert http.get("/health/ready").json()["status"] == "ok"

    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=20)
    # uvicorn re-raises the signal once it has shut down gracefully.
    assert process.returncode in {0, -signal.SIGTERM}
    records = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    access = [r for r in records if r.get("event") == "request" and r.get("request_id") == "e2e-1"]
    assert access
    assert access[0]["status"] == 200
    assert any(r.get("event") == "draining" for r in records)
    assert any(r.get("event") == "stopped" for r in records)
