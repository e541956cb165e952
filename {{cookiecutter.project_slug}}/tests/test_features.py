"""Cache, request coalescing, batch, background jobs, native streaming, CPU pool."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncGenerator
from typing import Any

import anyio
import httpx
import pytest
from fastapi.testclient import TestClient

from {{ cookiecutter.project_slug }}.api.streaming import with_heartbeat
from {{ cookiecutter.project_slug }}.core.cpu import CPUPool
from {{ cookiecutter.project_slug }}.llm.tokens import count_tokens
from {{ cookiecutter.project_slug }}.main import create_app
from {{ cookiecutter.project_slug }}.settings import Settings
{% if cookiecutter.auth != "none" %}
from .conftest import AUTH, callers, job_worker, make_settings, parse_sse, upstream_settings
{%- else %}
from .conftest import AUTH, job_worker, make_settings, parse_sse, upstream_settings
{%- endif %}
from .servers import serve
from .upstream import Behaviour, Upstream


def generate(client: TestClient, *, headers: dict[str, str] | None = None, **body: Any) -> Any:
    return client.post("/api/v1/generate", json=body, headers={**AUTH, **(headers or {})})


# -- cache ------------------------------------------------------------------------------
def test_temperature_zero_is_cached(client: TestClient) -> None:
    first = generate(client, prompt="cache me", temperature=0)
    second = generate(client, prompt="cache me", temperature=0)
    assert first.headers["X-Cache"] == "MISS"
    assert second.headers["X-Cache"] == "HIT"
    assert second.json()["cached"] is True
    assert second.json()["text"] == first.json()["text"]


def test_sampled_requests_are_not_cached_unless_opted_in(client: TestClient) -> None:
    assert generate(client, prompt="sampled", temperature=0.7).headers["X-Cache"] == "MISS"
    assert generate(client, prompt="sampled", temperature=0.7).headers["X-Cache"] == "MISS"
    generate(client, prompt="opted in", temperature=0.7, cache=True)
    assert generate(client, prompt="opted in", temperature=0.7, cache=True).json()["cached"]
    generate(client, prompt="opted out", temperature=0, cache=False)
    assert not generate(client, prompt="opted out", temperature=0, cache=False).json()["cached"]


def test_no_cache_header_bypasses_the_cache(client: TestClient) -> None:
    generate(client, prompt="fresh", temperature=0)
    bypass = generate(client, headers={"Cache-Control": "no-cache"}, prompt="fresh", temperature=0)
    assert bypass.headers["X-Cache"] == "MISS"


def test_cache_key_is_normalised(client: TestClient) -> None:
    generate(client, prompt="  same question ", temperature=0)
    assert generate(client, prompt="same question", temperature=0).json()["cached"]
{%- if cookiecutter.auth != "none" %}


@pytest.mark.parametrize("scope", ["principal", "global"])
def test_cached_answers_are_each_callers_own_unless_the_scope_is_global(scope: str) -> None:
    """A HIT must not tell one caller what another asked (CACHE_SCOPE=principal, the
    default); CACHE_SCOPE=global shares answers between callers on purpose."""
    admitted, (asker, other) = callers(2)
    settings = make_settings(cache_scope=scope, **admitted)
    body = {"prompt": f"what did the other caller ask? ({scope})", "temperature": 0}
    with TestClient(create_app(settings)) as client:
        first = client.post("/api/v1/generate", json=body, headers=asker.headers)
        again = client.post("/api/v1/generate", json=body, headers=asker.headers)
        theirs = client.post("/api/v1/generate", json=body, headers=other.headers)
    assert (first.headers["X-Cache"], again.headers["X-Cache"]) == ("MISS", "HIT")
    assert theirs.headers["X-Cache"] == ("HIT" if scope == "global" else "MISS")
    assert theirs.json()["cached"] is (scope == "global")
{%- endif %}


def test_identical_in_flight_requests_share_one_upstream_call(
    upstream: Upstream, upstream_url: str
) -> None:
    upstream.default = Behaviour(delay_s=0.5)
    body = {"prompt": "popular", "temperature": 0, "max_tokens": 5}

    async def burst(base_url: str) -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=base_url, headers=AUTH, timeout=10) as http:
            return await asyncio.gather(
                *(http.post("/api/v1/generate", json=body) for _ in range(8))
            )

    with serve(create_app(upstream_settings(upstream_url))) as base_url:
        responses = asyncio.run(burst(base_url))
    assert [r.status_code for r in responses] == [200] * 8
    assert len({r.json()["text"] for r in responses}) == 1
    assert len(upstream.requests) == 1


# -- batch ------------------------------------------------------------------------------
def test_batch_answers_each_item(client: TestClient) -> None:
    prompts = [{"prompt": f"item {n}", "max_tokens": 4} for n in range(5)]
    body = client.post("/api/v1/generate/batch", json={"requests": prompts}, headers=AUTH).json()
    assert body["succeeded"] == 5
    assert body["failed"] == 0
    assert [item["index"] for item in body["results"]] == list(range(5))
    single = generate(client, prompt="item 3", max_tokens=4).json()
    assert body["results"][3]["result"]["text"] == single["text"]


def test_batch_reports_errors_per_item() -> None:
    with TestClient(
        create_app(make_settings(fake_llm_failure_rate=1.0, llm_max_retries=0))
    ) as client:
        body = client.post(
            "/api/v1/generate/batch",
            json={"requests": [{"prompt": "a"}, {"prompt": "b"}]},
            headers=AUTH,
        ).json()
    assert body["failed"] == 2
    assert body["results"][0]["error"]["code"] == "upstream_unavailable"
    assert body["results"][0]["result"] is None


def test_batch_size_is_capped() -> None:
    with TestClient(create_app(make_settings(batch_max_items=2))) as client:
        response = client.post(
            "/api/v1/generate/batch", json={"requests": [{"prompt": "x"}] * 3}, headers=AUTH
        )
    assert response.status_code == 422
    assert response.json()["error"]["param"] == "requests"


# -- jobs -------------------------------------------------------------------------------
def wait_for_job(client: TestClient, location: str, headers: dict[str, str] = AUTH) -> Any:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        job = client.get(location, headers=headers).json()
        if job["status"] in {"succeeded", "failed"}:
            return job
        time.sleep(0.02)
    pytest.fail(f"job {location} did not finish")


def test_job_is_accepted_then_polled_to_its_result(client: TestClient, settings: Settings) -> None:
    response = client.post("/api/v1/jobs", json={"prompt": "later", "max_tokens": 6}, headers=AUTH)
    assert response.status_code == 202
    job = response.json()
    assert job["status"] in {"queued", "running", "succeeded"}
    assert response.headers["Location"] == f"/api/v1/jobs/{job['id']}"
    with job_worker(settings):
        done = wait_for_job(client, response.headers["Location"])
    assert done["status"] == "succeeded"
    assert done["result"]["tokens_used"] == 6
    assert done["finished_at"] >= done["created_at"]
{%- if cookiecutter.auth != "none" %}


def test_jobs_of_others_do_not_exist() -> None:
    admitted, (me, other) = callers(2)
    settings = make_settings(**admitted)
    with job_worker(settings), TestClient(create_app(settings)) as client:
        response = client.post("/api/v1/jobs", json={"prompt": "mine"}, headers=me.headers)
        location = response.headers["Location"]
        theirs = client.get(location, headers=other.headers)
        assert theirs.status_code == 404
        assert theirs.json()["error"]["code"] == "job_not_found"
        assert wait_for_job(client, location, me.headers)["status"] == "succeeded"
{%- endif %}


def test_concurrent_submissions_run_each_job_exactly_once(
    upstream: Upstream, upstream_url: str
) -> None:
    prompts = [f"job {n}" for n in range(40)]

    async def submit_all(base_url: str) -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=base_url, headers=AUTH, timeout=10) as http:
            return await asyncio.gather(
                *(http.post("/api/v1/jobs", json={"prompt": p, "max_tokens": 3}) for p in prompts)
            )

    settings = upstream_settings(upstream_url, job_workers=3)
    with job_worker(settings), serve(create_app(settings)) as base_url:
        accepted = asyncio.run(submit_all(base_url))
        assert {r.status_code for r in accepted} == {202}
        ids = {r.json()["id"] for r in accepted}
        assert len(ids) == len(prompts)
        with httpx.Client(base_url=base_url, headers=AUTH) as http:
            deadline = time.monotonic() + 15
            pending = set(ids)
            while pending and time.monotonic() < deadline:
                pending = {
                    i
                    for i in pending
                    if http.get(f"/api/v1/jobs/{i}").json()["status"] != "succeeded"
                }
                time.sleep(0.05)
    assert not pending
    seen = sorted(request["messages"][0]["content"] for request in upstream.requests)
    assert seen == sorted(prompts)  # every job ran, none twice


def test_full_queue_answers_503_with_retry_after() -> None:
    # One job runs (five tokens, half a second) and one waits: the next two are refused.
    settings = make_settings(job_queue_size=1, job_workers=1, fake_llm_token_latency_ms=100)
    with TestClient(create_app(settings)) as client:
        body = {"max_tokens": 5}
        statuses = [
            client.post("/api/v1/jobs", json={"prompt": f"p{n}", **body}, headers=AUTH)
            for n in range(4)
        ]
    refused = [r for r in statuses if r.status_code == 503]
    assert statuses[0].status_code == 202
    assert refused
    assert refused[0].headers["Retry-After"]
    assert refused[0].json()["error"]["code"] == "queue_full"


# -- native streaming -------------------------------------------------------------------
def test_native_stream_matches_the_whole_answer(client: TestClient) -> None:
    body: dict[str, Any] = {"prompt": "stream this", "max_tokens": 30, "temperature": 0}
    whole = generate(client, **body).json()
    response = client.post("/api/v1/generate/stream", json=body, headers=AUTH)
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["X-Request-ID"]
    events = parse_sse(response.text)
    text = "".join(json.loads(data)["text"] for name, data in events if name == "delta")
    assert text == whole["text"]
    name, data = events[-1]
    assert name == "done"
    assert json.loads(data)["usage"] == whole["usage"]


def test_stream_sends_heartbeats_while_the_model_is_quiet() -> None:
    settings = make_settings(fake_llm_token_latency_ms=150, sse_ping_interval_s=0.05)
    with TestClient(create_app(settings)) as client:
        response = client.post(
            "/api/v1/generate/stream", json={"prompt": "slow", "max_tokens": 3}, headers=AUTH
        )
    assert ("comment", "ping") in parse_sse(response.text)


@pytest.mark.anyio
async def test_a_stream_cut_off_by_its_client_lets_the_source_finish_cleaning_up() -> None:
    # What Starlette does when the client goes away: cancel the response's task group,
    # whose cancellation anyio delivers again at every await, the cleanup's included.
    steps: list[str] = []

    async def source() -> AsyncGenerator[bytes, None]:
        try:
            while True:
                await asyncio.sleep(0.01)
                yield b"data: token\n\n"
        finally:
            steps.append("closing")
            await asyncio.sleep(0.05)  # closing the upstream response, writing the log row
            steps.append("closed")

    async def respond() -> None:
        async for _ in with_heartbeat(source(), 15.0):
            pass

    async with anyio.create_task_group() as group:
        group.start_soon(respond)
        await asyncio.sleep(0.1)
        group.cancel_scope.cancel()
    assert steps == ["closing", "closed"]


def test_failure_before_the_first_token_is_a_plain_http_error() -> None:
    settings = make_settings(fake_llm_failure_rate=1.0, llm_max_retries=0)
    with TestClient(create_app(settings)) as client:
        response = client.post("/api/v1/generate/stream", json={"prompt": "x"}, headers=AUTH)
    assert response.status_code == 502
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error"]["code"] == "upstream_unavailable"


def test_failure_after_the_first_token_is_an_error_event() -> None:
    settings = make_settings(fake_llm_fail_after_tokens=2)
    with TestClient(create_app(settings)) as client:
        response = client.post(
            "/api/v1/generate/stream", json={"prompt": "x", "max_tokens": 20}, headers=AUTH
        )
    assert response.status_code == 200
    names = [name for name, _ in parse_sse(response.text)]
    assert names == ["delta", "delta", "error"]


# -- CPU-bound work ---------------------------------------------------------------------
def worker_pid(text: str) -> int:
    return os.getpid()


@pytest.mark.anyio
async def test_large_inputs_run_in_the_process_pool() -> None:
    pool = CPUPool(workers=1, threshold=100)
    try:
        assert await pool.run(worker_pid, "short") == os.getpid()
        assert await pool.run(worker_pid, "x" * 200) != os.getpid()
    finally:
        pool.close()


def test_tokenize_counts_large_texts_off_the_event_loop(client: TestClient) -> None:
    text = "The quick brown fox jumps over the lazy dog. " * 2000  # over the pool threshold
    body = client.post("/api/v1/tokenize", json={"text": text}, headers=AUTH).json()
    assert body == {"tokens": count_tokens(text), "characters": len(text)}
    assert body["tokens"] == 26_000  # 13 per sentence: 5-letter words count twice
