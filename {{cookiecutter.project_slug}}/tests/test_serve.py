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
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from .conftest import API_KEY, AUTH


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def running(folder: Path, **env: str) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """`python -m {{ cookiecutter.project_slug }}` on a free port, with `env` on top of the test's."""
    port = free_port()
    env = {
        **os.environ,
        "ENVIRONMENT": "test",
        "API_KEYS": API_KEY,
        "LOG_FORMAT": "json",
        "PORT": str(port),
        **env,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "{{ cookiecutter.project_slug }}"],
        cwd=folder,  # no .env there: only the variables above apply
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
    try:
        yield base_url, process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def records_of(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    with running(tmp_path) as started:
        yield started


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
        assert http.post("/api/v1/generate", json={"prompt": "hi"}).status_code == 401
        assert http.get("/health/ready").json()["status"] == "ok"

    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=20)
    # uvicorn re-raises the signal once it has shut down gracefully.
    assert process.returncode in {0, -signal.SIGTERM}
    records = records_of(output)
    access = [r for r in records if r.get("event") == "request" and r.get("request_id") == "e2e-1"]
    assert access
    assert access[0]["status"] == 200
    assert any(r.get("event") == "draining" for r in records)
    assert any(r.get("event") == "stopped" for r in records)


def test_forwarded_headers_count_only_from_forwarded_allow_ips(tmp_path: Path) -> None:
    headers = {**AUTH, "X-Forwarded-For": "203.0.113.7"}
    with running(tmp_path, FORWARDED_ALLOW_IPS="127.0.0.1") as (base_url, process):
        for peer in ("127.0.0.1", "127.0.0.2"):  # the proxy, and a client that is not one
            transport = httpx.HTTPTransport(local_address=peer)
            with httpx.Client(transport=transport, timeout=10) as http:
                sent = {**headers, "X-Request-ID": f"from-{peer}"}
                assert http.get(f"{base_url}/v1/models", headers=sent).status_code == 200
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=20)
    believed = {
        record["request_id"]: record["client"]
        for record in records_of(output)
        if record["event"] == "request" and record["path"] == "/v1/models"
    }
    # The access log shows whom the service believed.
    assert believed == {"from-127.0.0.1": "203.0.113.7", "from-127.0.0.2": "127.0.0.2"}
