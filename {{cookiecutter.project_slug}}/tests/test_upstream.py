"""The OpenAI-compatible provider against a real upstream on loopback: retries,
Retry-After, timeouts, the circuit breaker, streams cut mid-way, and cancellation."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from {{ cookiecutter.project_slug }}.main import create_app

from .conftest import AUTH, parse_sse, upstream_settings
from .servers import serve
from .upstream import Behaviour, Upstream

PROMPT = {"prompt": "hello upstream", "max_tokens": 5}


def failures_logged(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    """The "model call failed" log lines so far: where the upstream's own words go."""
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line]
    return [line for line in lines if line.get("event") == "model call failed"]


def test_proxies_a_completion(upstream: Upstream, upstream_url: str) -> None:
    with TestClient(create_app(upstream_settings(upstream_url))) as client:
        response = client.post(
            "/api/v1/generate", json=PROMPT, headers={**AUTH, "X-Request-ID": "trace-1"}
        )
    assert response.status_code == 200
    body = response.json()
    assert body["text"] == "w0 w1 w2 w3 w4"
    usage = body["usage"]
    assert (usage["prompt_tokens"], usage["completion_tokens"], usage["total_tokens"]) == (3, 5, 8)
    assert len(upstream.requests) == 1
    assert upstream.requests[0]["messages"] == [{"role": "user", "content": "hello upstream"}]
    assert upstream.headers[0]["authorization"] == "Bearer sk-upstream"
    assert upstream.headers[0]["x-request-id"] == "trace-1"


def test_retries_server_errors_then_succeeds(upstream: Upstream, upstream_url: str) -> None:
    upstream.then(Behaviour(status=500), Behaviour(status=503))
    with TestClient(create_app(upstream_settings(upstream_url))) as client:
        response = client.post("/api/v1/generate", json=PROMPT, headers=AUTH)
    assert response.status_code == 200
    assert len(upstream.requests) == 3


def test_gives_up_after_max_retries_with_502(
    upstream: Upstream, upstream_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    upstream.then(*[Behaviour(status=500)] * 3)
    with TestClient(create_app(upstream_settings(upstream_url, llm_max_retries=2))) as client:
        response = client.post("/api/v1/generate", json=PROMPT, headers=AUTH)
    assert response.status_code == 502
    error = response.json()["error"]
    assert error["code"] == "upstream_unavailable"
    assert error["message"] == "The model server is unavailable."  # fixed, not the upstream's
    assert len(upstream.requests) == 3
    (logged,) = failures_logged(capsys)
    assert "scripted 500" in logged["detail"]
    assert logged["request_id"] == response.headers["X-Request-ID"]


def test_retry_waits_as_long_as_retry_after_says(upstream: Upstream, upstream_url: str) -> None:
    upstream.then(Behaviour(status=429, retry_after="1"))
    with TestClient(create_app(upstream_settings(upstream_url))) as client:
        response = client.post("/api/v1/generate", json=PROMPT, headers=AUTH)
    assert response.status_code == 200
    first, second = upstream.request_times
    assert second - first >= 1.0


def test_long_retry_after_is_passed_to_the_caller(upstream: Upstream, upstream_url: str) -> None:
    upstream.then(Behaviour(status=429, retry_after="120"))
    with TestClient(create_app(upstream_settings(upstream_url))) as client:
        response = client.post("/api/v1/generate", json=PROMPT, headers=AUTH)
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "120"
    assert response.json()["error"]["type"] == "rate_limit_error"
    assert len(upstream.requests) == 1


def test_upstream_rejection_is_the_callers_400(
    upstream: Upstream, upstream_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    upstream.then(Behaviour(status=400))
    with TestClient(create_app(upstream_settings(upstream_url))) as client:
        response = client.post("/api/v1/generate", json=PROMPT, headers=AUTH)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["message"] == "The model server rejected the request."
    assert "scripted" not in response.text  # the upstream's error body stays in the log
    assert len(upstream.requests) == 1  # never retried
    assert "scripted 400" in failures_logged(capsys)[0]["detail"]


def test_hung_upstream_is_504(upstream: Upstream, upstream_url: str) -> None:
    upstream.then(Behaviour(delay_s=3))
    settings = upstream_settings(upstream_url, llm_timeout_s=0.5, llm_max_retries=0)
    with TestClient(create_app(settings)) as client:
        start = time.monotonic()
        response = client.post("/api/v1/generate", json=PROMPT, headers=AUTH)
    assert response.status_code == 504
    assert response.json()["error"]["code"] == "upstream_timeout"
    assert time.monotonic() - start < 2.5


def test_unreachable_upstream_is_502_without_naming_the_host(
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = upstream_settings("http://127.0.0.1:9", llm_max_retries=1)
    with TestClient(create_app(settings)) as client:
        response = client.post("/api/v1/generate", json=PROMPT, headers=AUTH)
    assert response.status_code == 502
    assert response.json()["error"]["message"] == "The model server is unavailable."
    assert "127.0.0.1" not in response.text
    assert "127.0.0.1:9" in failures_logged(capsys)[0]["detail"]


def test_circuit_breaker_opens_reports_and_recovers(upstream: Upstream, upstream_url: str) -> None:
    # Long enough that the checks made while it is open finish inside it on a busy machine
    # (a readiness call has been seen to take 0.66 s beside other test suites).
    reset_s = 3.0
    settings = upstream_settings(
        upstream_url,
        llm_max_retries=0,
        llm_breaker_min_calls=2,
        llm_breaker_failure_rate=0.5,
        llm_breaker_reset_s=reset_s,
        readiness_cache_s=0,
    )
    upstream.then(Behaviour(status=500), Behaviour(status=500))
    with TestClient(create_app(settings)) as client:
        assert client.post("/api/v1/generate", json=PROMPT, headers=AUTH).status_code == 502
        assert client.post("/api/v1/generate", json=PROMPT, headers=AUTH).status_code == 502
        opened = time.monotonic()

        fast_fail = client.post("/api/v1/generate", json=PROMPT, headers=AUTH)  # open
        assert fast_fail.status_code == 503
        assert fast_fail.json()["error"]["code"] == "circuit_open"
        assert int(fast_fail.headers["Retry-After"]) >= 1
        assert len(upstream.requests) == 2  # the open circuit spared the upstream
        ready = client.get("/health/ready")
        assert ready.status_code == 503
        assert ready.json()["checks"]["models"] == "unavailable"
        problem = client.app.state.lifecycle.problems["models"]  # type: ignore[attr-defined]
        assert "circuit open" in problem

        # Half-open once reset_s has passed: one trial call goes through and closes it.
        time.sleep(max(0.0, opened + reset_s + 0.1 - time.monotonic()))
        assert client.post("/api/v1/generate", json=PROMPT, headers=AUTH).status_code == 200
        assert client.get("/health/ready").status_code == 200
    assert len(upstream.requests) == 3


def test_one_callers_retries_and_an_upstream_429_do_not_open_the_circuit(
    upstream: Upstream, upstream_url: str
) -> None:
    # One prompt that fails three times (retries included), then a 429: back-pressure.
    upstream.then(*[Behaviour(status=500)] * 3, Behaviour(status=429, retry_after="0"))
    with TestClient(create_app(upstream_settings(upstream_url, llm_max_retries=2))) as client:
        assert client.post("/api/v1/generate", json=PROMPT, headers=AUTH).status_code == 502
        assert client.post("/api/v1/generate", json=PROMPT, headers=AUTH).status_code == 200
        assert client.get("/health/ready").status_code == 200
        assert client.post("/api/v1/generate", json=PROMPT, headers=AUTH).status_code == 200
    assert len(upstream.requests) == 6  # 3 tries, the 429 and its retry, then one more


def test_each_upstream_has_its_own_circuit(upstream: Upstream, upstream_url: str) -> None:
    failing = Upstream()
    failing.default = Behaviour(status=500)
    with serve(failing.app(), lifespan="off") as failing_url:
        models = [
            {"name": "healthy", "base_url": f"{upstream_url}/v1"},
            {"name": "broken", "base_url": f"{failing_url}/v1", "upstream_model": "real-name"},
        ]
        settings = upstream_settings(
            upstream_url, llm_models=models, llm_max_retries=0, llm_breaker_min_calls=2
        )
        with TestClient(create_app(settings)) as client:
            broken = {**PROMPT, "model": "broken"}
            for _ in range(2):
                assert client.post("/api/v1/generate", json=broken, headers=AUTH).status_code == 502
            refused = client.post("/api/v1/generate", json=broken, headers=AUTH)
            assert refused.json()["error"]["code"] == "circuit_open"
            healthy = client.post(
                "/api/v1/generate", json={**PROMPT, "model": "healthy"}, headers=AUTH
            )
            assert healthy.status_code == 200
    assert failing.requests[0]["model"] == "real-name"  # the upstream's own name for it
    assert upstream.requests[0]["model"] == "healthy"


def test_a_retry_waiting_for_its_turn_holds_no_bulkhead_slot(
    upstream: Upstream, upstream_url: str
) -> None:
    upstream.then(Behaviour(status=503, retry_after="1"))  # the first call waits 1 s to retry
    settings = upstream_settings(upstream_url, llm_max_concurrency=1)

    async def two_calls(base_url: str) -> tuple[float, float]:
        async with httpx.AsyncClient(base_url=base_url, headers=AUTH, timeout=10) as http:

            async def timed(delay: float) -> float:
                await asyncio.sleep(delay)
                start = time.monotonic()
                response = await http.post("/api/v1/generate", json=PROMPT)
                assert response.status_code == 200
                return time.monotonic() - start

            slow, quick = await asyncio.gather(timed(0), timed(0.3))
            return slow, quick

    with serve(create_app(settings)) as base_url:
        slow, quick = asyncio.run(two_calls(base_url))
    assert slow >= 1.0
    assert quick < 0.5  # it did not wait for the retrying call's slot


def test_stream_retries_before_the_first_token(upstream: Upstream, upstream_url: str) -> None:
    upstream.then(Behaviour(status=502))
    with TestClient(create_app(upstream_settings(upstream_url))) as client:
        response = client.post("/api/v1/generate/stream", json=PROMPT, headers=AUTH)
    assert response.status_code == 200
    events = parse_sse(response.text)
    text = "".join(json.loads(data)["text"] for name, data in events if name == "delta")
    assert text == "w0 w1 w2 w3 w4"
    assert events[-1][0] == "done"
    assert len(upstream.requests) == 2


def test_stream_cut_midway_ends_with_an_error_event(upstream: Upstream, upstream_url: str) -> None:
    upstream.then(Behaviour(cut_after_chunks=2))
    with TestClient(create_app(upstream_settings(upstream_url))) as client:
        response = client.post("/api/v1/generate/stream", json=PROMPT, headers=AUTH)
    assert response.status_code == 200
    events = [(name, data) for name, data in parse_sse(response.text) if name != "comment"]
    names = [name for name, _ in events]
    assert names[0] == "delta"  # the stream had started: the status was already 200
    assert names[-1] == "error"
    assert "done" not in names
    error = json.loads(events[-1][1])["error"]
    assert error["code"] == "upstream_bad_response"
    assert len(upstream.requests) == 1  # tokens were out: no retry


def wait_for_disconnects(upstream: Upstream, count: int) -> None:
    deadline = time.monotonic() + 5
    while upstream.disconnects < count and time.monotonic() < deadline:
        time.sleep(0.05)


def test_client_disconnect_cancels_a_waiting_call(upstream: Upstream, upstream_url: str) -> None:
    upstream.default = Behaviour(delay_s=10)
    with serve(create_app(upstream_settings(upstream_url, llm_timeout_s=30))) as base_url:
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(f"{base_url}/api/v1/generate", json=PROMPT, headers=AUTH, timeout=0.5)
        wait_for_disconnects(upstream, 1)
    assert upstream.disconnects == 1
    assert len(upstream.requests) == 1


def test_client_disconnect_cancels_a_stream(upstream: Upstream, upstream_url: str) -> None:
    upstream.default = Behaviour(tokens=50, token_delay_s=0.2)
    payload = {"prompt": "long", "max_tokens": 50}
    with serve(create_app(upstream_settings(upstream_url))) as base_url:
        with (
            httpx.Client(timeout=5) as http,
            http.stream(
                "POST", f"{base_url}/api/v1/generate/stream", json=payload, headers=AUTH
            ) as response,
        ):
            assert response.status_code == 200
            first = next(response.iter_text())
        assert "delta" in first
        wait_for_disconnects(upstream, 1)  # hung up after the first event
    assert upstream.disconnects == 1
