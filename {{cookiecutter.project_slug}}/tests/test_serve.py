"""Start the service with its own command and call it over real HTTP."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from .conftest import AUTH, AUTH_ENV, parse_sse
from .servers import service_process
from .upstream import Behaviour, Upstream


def records_of(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    with service_process(tmp_path, **AUTH_ENV) as running:
        yield running


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
    records = records_of(output)
    access = [r for r in records if r.get("event") == "request" and r.get("request_id") == "e2e-1"]
    assert access
    assert access[0]["status"] == 200
    assert any(r.get("event") == "draining" for r in records)
    assert any(r.get("event") == "stopped" for r in records)
    # No library chatter at startup: Alembic, which checks an SQLite file's schema, would
    # announce each of its plugins.
    assert not [r for r in records if r.get("logger") == "alembic.runtime.plugins"]


def test_sigterm_drains_readiness_first_then_in_flight_streams_then_exits(
    tmp_path: Path, upstream: Upstream, upstream_url: str
) -> None:
    upstream.default = Behaviour(tokens=100, token_delay_s=0.02)  # a 2 s stream
    variables = {
        "LLM_PROVIDER": "openai",
        "LLM_BASE_URL": f"{upstream_url}/v1",
        "LLM_MODEL": "upstream-model",
        "DRAIN_DELAY_S": "1",
        "DRAIN_TIMEOUT_S": "10",
    }
    body = {"prompt": "long", "max_tokens": 100}
    with service_process(tmp_path, **AUTH_ENV, **variables) as (base_url, process):
        streamed: list[str] = []

        def stream() -> None:
            with httpx.stream(
                "POST", f"{base_url}/api/v1/generate/stream", json=body, headers=AUTH, timeout=20
            ) as response:
                streamed.append(response.read().decode())

        reader = threading.Thread(target=stream)
        reader.start()
        time.sleep(0.3)
        process.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        with httpx.Client(base_url=base_url, timeout=5) as http:
            # During DRAIN_DELAY_S: not ready (once the signal is handled), but still serving.
            while http.get("/health/ready").status_code != 503:
                assert time.monotonic() < signalled + 1, "still ready during the drain delay"
                time.sleep(0.02)
            assert http.post("/api/v1/generate", json={"prompt": "hi"}, headers=AUTH).is_success
            time.sleep(max(0.0, signalled + 1.3 - time.monotonic()))
            # After it, with the stream still running: new work is refused cleanly.
            refused = http.post("/api/v1/generate", json={"prompt": "hi"}, headers=AUTH)
            assert refused.status_code == 503
            assert refused.json()["error"]["code"] == "shutting_down"
            assert refused.headers["Retry-After"]
        reader.join(timeout=15)
        output, _ = process.communicate(timeout=20)
    events = parse_sse(streamed[0])
    assert [name for name, _ in events].count("delta") == 100
    assert events[-1][0] == "done"  # the stream in flight ran to its end
    assert process.returncode in {0, -signal.SIGTERM}
    records = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    names = [record.get("event") for record in records]
    assert names.index("draining") < names.index("drained") < names.index("stopped")


def test_forwarded_headers_count_only_from_forwarded_allow_ips(tmp_path: Path) -> None:
    headers = {**AUTH, "X-Forwarded-For": "203.0.113.7"}
    trusting = {**AUTH_ENV, "FORWARDED_ALLOW_IPS": "127.0.0.1"}
    with service_process(tmp_path, **trusting) as (base_url, process):
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
