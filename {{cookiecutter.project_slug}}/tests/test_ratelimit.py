"""Rate limits: the token buckets, and requests and tokens per minute on every model route.

Most tests give the app an in-memory limiter on a clock that moves only when the test
says so, so every header value is exact. The official `openai` SDK runs against a real
server on the real clock.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Protocol, cast

import httpx
import openai
import pytest
from fastapi.testclient import TestClient
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from {{ cookiecutter.project_slug }}.api.limits import duration
from {{ cookiecutter.project_slug }}.core.ratelimit import Level, Limit, MemoryRateLimiter
from {{ cookiecutter.project_slug }}.llm.base import GenerationRequest
from {{ cookiecutter.project_slug }}.llm.fake import answer
from {{ cookiecutter.project_slug }}.llm.tokens import count_tokens, request_tokens
from {{ cookiecutter.project_slug }}.main import create_app
from {{ cookiecutter.project_slug }}.services import Services

from .conftest import API_KEY, AUTH, {% if cookiecutter.auth != "none" %}callers, {% endif %}make_settings, parse_sse
from .servers import serve
{% if cookiecutter.auth != "none" %}
ADMIT_OTHER, (OTHER_CALLER,) = callers(1)  # a second caller, with a credential of its own
OTHER = OTHER_CALLER.headers
{%- else %}
ADMIT_OTHER: dict[str, Any] = {}  # without authentication a caller is its address
{%- endif %}


class Clock:
    """Seconds that pass only when the test says so (or, once started, in real time)."""

    def __init__(self) -> None:
        self.base = 1_000.0
        self.started_at: float | None = None

    def __call__(self) -> float:
        if self.started_at is None:
            return self.base
        return self.base + time.monotonic() - self.started_at

    def advance(self, seconds: float) -> None:
        self.base += seconds

    def start(self) -> None:
        self.started_at = time.monotonic()


class Served:
    """An app behind a real server: its services once started, and the statuses it sent."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.state: dict[str, Any] = {}
        self.statuses: list[int] = []

    @property
    def services(self) -> Services:
        return cast(Services, self.state["services"])

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            self.state = scope["state"]  # filled by the app's lifespan
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def recording(message: Message) -> None:
            if message["type"] == "http.response.start":
                self.statuses.append(message["status"])
            await send(message)

        await self.app(scope, receive, recording)


@pytest.fixture
def clock() -> Clock:
    return Clock()


def run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


# -- the buckets ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("seconds", "spelled"),
    [
        (0, "0s"),
        (0.0004, "1ms"),
        (0.012, "12ms"),
        (0.5, "500ms"),
        (1, "1s"),
        (17.28, "17.28s"),
        (60, "1m0s"),
        (360, "6m0s"),
        (90.5, "1m30.5s"),
        (3605, "1h0m5s"),
    ],
)
def test_waits_are_spelled_as_openai_spells_them(seconds: float, spelled: str) -> None:
    assert duration(seconds) == spelled


def test_a_bucket_refills_continuously_over_a_minute(clock: Clock) -> None:
    limiter = MemoryRateLimiter(clock)
    limit = Limit("caller:requests", 60, 1)
    for left in range(59, -1, -1):
        decision = run(limiter.acquire([limit]))
        assert decision.allowed
        assert decision.levels == (Level(limit=60, remaining=left, reset_s=60 - left),)
    refused = run(limiter.acquire([limit]))
    assert not refused.allowed
    assert refused.retry_after_s == pytest.approx(1.0)
    clock.advance(0.5)
    assert run(limiter.acquire([limit])).retry_after_s == pytest.approx(0.5)
    clock.advance(0.5)
    assert run(limiter.acquire([limit])).allowed
    clock.advance(60)
    assert run(limiter.acquire([limit])).levels[0].remaining == 59  # full, never more


def test_limits_are_taken_all_or_none(clock: Clock) -> None:
    limiter = MemoryRateLimiter(clock)
    requests, tokens = Limit("c:requests", 10, 1), Limit("c:tokens", 100, 80)
    assert run(limiter.acquire([requests, tokens])).allowed
    refused = run(limiter.acquire([requests, tokens]))
    assert not refused.allowed
    assert [level.remaining for level in refused.levels] == [9, 20]  # nothing was taken
    assert refused.retry_after_s == pytest.approx((80 - 20) * 60 / 100)
    assert run(limiter.acquire([requests, Limit("c:tokens", 100, 20)])).allowed


def test_adjusting_gives_back_up_to_full_and_may_go_into_debt(clock: Clock) -> None:
    limiter = MemoryRateLimiter(clock)
    run(limiter.acquire([Limit("c:tokens", 100, 90)]))
    run(limiter.adjust(Limit("c:tokens", 100, -70)))  # the reservation was 70 too high
    assert run(limiter.acquire([Limit("c:tokens", 100, 0)])).levels[0].remaining == 80
    run(limiter.adjust(Limit("c:tokens", 100, -500)))
    assert run(limiter.acquire([Limit("c:tokens", 100, 0)])).levels[0].remaining == 100
    run(limiter.adjust(Limit("c:tokens", 100, 150)))  # used more than reserved
    in_debt = run(limiter.acquire([Limit("c:tokens", 100, 1)]))
    assert not in_debt.allowed
    assert in_debt.retry_after_s == pytest.approx(51 * 60 / 100)


def test_buckets_full_again_are_forgotten(clock: Clock) -> None:
    limiter = MemoryRateLimiter(clock)
    for caller in range(100):
        run(limiter.acquire([Limit(f"{caller}:requests", 60, 1)]))
    run(limiter.adjust(Limit("debtor:tokens", 60, 120)))
    clock.advance(61)
    run(limiter.acquire([Limit("late:requests", 60, 1)]))
    assert len(limiter._buckets) == 2  # the debtor (not full yet) and the latest caller


# -- HTTP routes ------------------------------------------------------------------------
@contextmanager
def limited(clock: Clock, **settings: Any) -> Iterator[TestClient]:
    """A client for an app limited as `settings` say, its limiter on `clock`."""
    app_settings = make_settings(**ADMIT_OTHER, **settings)
    with TestClient(create_app(app_settings)) as client:
        services = cast(Services, client.app_state["services"])
        services.rate_limiter = MemoryRateLimiter(clock)
        yield client


class Reply(Protocol):
    """What the tests read of a response (TestClient's type differs from httpx's)."""

    @property
    def status_code(self) -> int: ...

    @property
    def headers(self) -> Mapping[str, str]: ...

    @property
    def text(self) -> str: ...

    def json(self) -> Any: ...


def generate(client: TestClient, headers: dict[str, str] = AUTH, **body: Any) -> Reply:
    return client.post("/api/v1/generate", json={"prompt": "hello", **body}, headers=headers)


def remaining(response: Reply, name: str) -> int:
    return int(response.headers[f"x-ratelimit-remaining-{name}"])


def total_tokens(response: Reply) -> int:
    return int(response.json()["usage"]["total_tokens"])


def prompt_estimate(prompt: str) -> int:
    """What admission reserves for a prompt, before `max_tokens`."""
    return request_tokens(
        GenerationRequest.from_prompt(prompt, max_tokens=1, temperature=0.7, model="any")
    )


HELLO = prompt_estimate("hello")  # the prompt estimate of {"prompt": "hello"}


def test_requests_beyond_the_limit_get_429_in_openais_shape(clock: Clock) -> None:
    with limited(clock, rate_limit_rpm=2, rate_limit_tpm=0) as client:
        first, second, refused = generate(client), generate(client), generate(client)
        clock.advance(30)
        again = generate(client)
    assert (first.status_code, second.status_code, refused.status_code) == (200, 200, 429)
    assert first.headers["x-ratelimit-limit-requests"] == "2"
    assert [remaining(r, "requests") for r in (first, second)] == [1, 0]
    assert [r.headers["x-ratelimit-reset-requests"] for r in (first, second)] == ["30s", "1m0s"]
    assert "x-ratelimit-limit-tokens" not in first.headers  # RATE_LIMIT_TPM=0: unlimited
    assert refused.json() == {
        "error": {
            "message": "Rate limit reached for requests per minute: limit 2, remaining 0, "
            "requested 1. Please try again in 30s.",
            "type": "rate_limit_error",
            "param": None,
            "code": "rate_limit_exceeded",
        }
    }
    assert refused.headers["Retry-After"] == "30"
    assert refused.headers["x-ratelimit-remaining-requests"] == "0"
    assert refused.headers["X-Request-ID"]
    assert again.status_code == 200  # half a minute refilled one request


def test_tokens_are_reserved_at_admission_and_settled_to_usage(clock: Clock) -> None:
    with limited(clock, rate_limit_rpm=0, rate_limit_tpm=1000) as client:
        first = generate(client, max_tokens=300)
        second = generate(client, max_tokens=300)
    assert first.headers["x-ratelimit-limit-tokens"] == "1000"
    assert remaining(first, "tokens") == 1000 - (HELLO + 300)
    # The first request gave back what it did not use before the second was admitted.
    assert total_tokens(first) < HELLO + 300
    assert remaining(second, "tokens") == 1000 - total_tokens(first) - (HELLO + 300)
    assert "x-ratelimit-limit-requests" not in first.headers


def test_a_burst_of_long_generations_cannot_overrun_the_budget(clock: Clock) -> None:
    settings = make_settings(rate_limit_rpm=0, rate_limit_tpm=1000, fake_llm_token_latency_ms=20)
    app = Served(create_app(settings))
    body = {"prompt": "hello", "max_tokens": 400}

    async def burst(base_url: str) -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=base_url, headers=AUTH, timeout=10) as http:
            return await asyncio.gather(
                *(http.post("/api/v1/generate", json=body) for _ in range(5))
            )

    with serve(app) as base_url:
        app.services.rate_limiter = MemoryRateLimiter(clock)
        statuses = sorted(response.status_code for response in run(burst(base_url)))
    # Two reservations of HELLO + 400 fit in 1000 tokens; the others wait, however short
    # the answers of the two in flight turn out to be.
    assert statuses == [200, 200, 429, 429, 429]


{% if cookiecutter.auth != "none" -%}
def test_each_caller_has_its_own_limits(clock: Clock) -> None:
    with limited(clock, rate_limit_rpm=1) as client:
        assert generate(client).status_code == 200
        assert generate(client).status_code == 429
        assert generate(client, headers=OTHER).status_code == 200
        assert generate(client, headers=OTHER).status_code == 429
{%- else -%}
def test_each_address_has_its_own_limits(clock: Clock) -> None:
    app = Served(create_app(make_settings(rate_limit_rpm=1)))
    with serve(app) as base_url:
        app.services.rate_limiter = MemoryRateLimiter(clock)
        for address in ("127.0.0.1", "127.0.0.2"):  # two clients, not one
            transport = httpx.HTTPTransport(local_address=address)
            with httpx.Client(base_url=base_url, transport=transport) as http:
                assert http.post("/api/v1/generate", json={"prompt": "hi"}).status_code == 200
                assert http.post("/api/v1/generate", json={"prompt": "hi"}).status_code == 429
{%- endif %}


def test_a_request_larger_than_a_minutes_budget_is_refused_outright(clock: Clock) -> None:
    with limited(clock, rate_limit_rpm=3, rate_limit_tpm=1000) as client:
        too_long = generate(client, max_tokens=1000)
        too_many = client.post(
            "/api/v1/generate/batch", json={"requests": [{"prompt": "x"}] * 4}, headers=AUTH
        )
    assert too_long.status_code == 400  # no wait would help: not a 429 to retry
    assert too_long.json()["error"]["code"] == "request_too_large"
    assert too_long.json()["error"]["param"] == "max_tokens"
    assert too_many.status_code == 400
    assert too_many.json()["error"]["param"] == "requests"


def test_every_item_of_a_batch_counts(clock: Clock) -> None:
    items = {"requests": [{"prompt": "hello", "max_tokens": 5}] * 3}
    with limited(clock, rate_limit_rpm=5) as client:
        batch = client.post("/api/v1/generate/batch", json=items, headers=AUTH)
        refused = client.post("/api/v1/generate/batch", json=items, headers=AUTH)
        single = generate(client, max_tokens=5)
    assert batch.status_code == 200
    assert remaining(batch, "requests") == 2
    assert refused.status_code == 429
    assert remaining(single, "requests") == 1
    used = sum(item["result"]["usage"]["total_tokens"] for item in batch.json()["results"])
    assert remaining(single, "tokens") == 100_000_000 - used - (HELLO + 5)


def test_cached_answers_use_no_tokens(clock: Clock) -> None:
    with limited(clock, rate_limit_tpm=1000) as client:
        first = generate(client, temperature=0, max_tokens=50)
        hit = generate(client, temperature=0, max_tokens=50)
        after = generate(client, temperature=0, max_tokens=50)
    assert hit.json()["cached"]
    assert remaining(hit, "tokens") == 1000 - total_tokens(first) - (HELLO + 50)
    assert remaining(after, "tokens") == remaining(hit, "tokens")  # the hit gave all back


def test_a_stream_carries_the_headers_and_settles_to_its_usage(clock: Clock) -> None:
    with limited(clock, rate_limit_tpm=1000) as client:
        stream = client.post(
            "/api/v1/generate/stream", json={"prompt": "hello", "max_tokens": 300}, headers=AUTH
        )
        after = generate(client, max_tokens=300)
    assert remaining(stream, "requests") == 100_000 - 1
    assert remaining(stream, "tokens") == 1000 - (HELLO + 300)
    done = json.loads(next(data for name, data in parse_sse(stream.text) if name == "done"))
    assert remaining(after, "tokens") == 1000 - done["usage"]["total_tokens"] - (HELLO + 300)


def test_a_stream_that_fails_midway_is_charged_what_it_delivered(clock: Clock) -> None:
    with limited(clock, rate_limit_tpm=1000, fake_llm_fail_after_tokens=5) as client:
        stream = client.post(
            "/api/v1/generate/stream", json={"prompt": "hello", "max_tokens": 300}, headers=AUTH
        )
        after = client.post("/api/v1/tokenize", json={"text": "x"}, headers=AUTH)
    events = parse_sse(stream.text)
    assert events[-1][0] == "error"
    delivered = "".join(json.loads(data)["text"] for name, data in events if name == "delta")
    assert remaining(after, "tokens") == 1000 - HELLO - count_tokens(delivered)


def test_a_client_that_leaves_a_stream_is_charged_what_was_produced(clock: Clock) -> None:
    settings = make_settings(rate_limit_tpm=10_000, fake_llm_token_latency_ms=20)
    prompt = "tell me a long story"
    asked = GenerationRequest.from_prompt(
        prompt, max_tokens=300, temperature=0.7, model=settings.llm_model
    )
    whole = len(answer(asked, 0).pieces)
    assert whole > 10  # leaving after 3 is early
    estimate = prompt_estimate(prompt)
    app = Served(create_app(settings))
    with serve(app) as base_url, httpx.Client(base_url=base_url, headers=AUTH) as http:
        app.services.rate_limiter = MemoryRateLimiter(clock)
        body = {"prompt": prompt, "max_tokens": 300}
        with http.stream("POST", "/api/v1/generate/stream", json=body) as stream:
            deltas = 0
            for line in stream.iter_lines():
                deltas += line == "event: delta"
                if deltas == 3:
                    break
        deadline = time.monotonic() + 5
        while True:  # settled once the server has seen the client go
            left = remaining(http.post("/api/v1/tokenize", json={"text": "x"}), "tokens")
            if left != 10_000 - (estimate + 300) or time.monotonic() > deadline:
                break
            time.sleep(0.05)
    charged = 10_000 - left
    assert estimate + 3 <= charged < estimate + whole


def test_background_jobs_are_charged_their_reservation_at_submission(clock: Clock) -> None:
    with limited(clock, rate_limit_rpm=2, rate_limit_tpm=1000) as client:
        job = client.post("/api/v1/jobs", json={"prompt": "hello", "max_tokens": 300}, headers=AUTH)
        after = client.post("/api/v1/tokenize", json={"text": "x"}, headers=AUTH)
        refused = client.post("/api/v1/jobs", json={"prompt": "hello"}, headers=AUTH)
    assert job.status_code == 202
    assert remaining(job, "tokens") == remaining(after, "tokens") == 1000 - (HELLO + 300)
    assert refused.status_code == 429


def test_reads_are_not_limited(clock: Clock) -> None:
    with limited(clock, rate_limit_rpm=1) as client:
        assert generate(client).status_code == 200
        for path in ("/v1/models", "/api/v1/jobs/job-unknown", "/health"):
            response = client.get(path, headers=AUTH)
            assert response.status_code != 429
            assert "x-ratelimit-limit-requests" not in response.headers


def test_the_openai_routes_are_limited_too(clock: Clock) -> None:
    messages = [{"role": "user", "content": "hello"}]
    with limited(clock, rate_limit_rpm=2, rate_limit_tpm=5000) as client:
        chat = client.post(
            "/v1/chat/completions", json={"model": "fake-model", "messages": messages}, headers=AUTH
        )
        text = client.post(
            "/v1/completions",
            json={"model": "fake-model", "prompt": "hello", "stream": True},
            headers=AUTH,
        )
        refused = client.post(
            "/v1/chat/completions", json={"model": "fake-model", "messages": messages}, headers=AUTH
        )
    # /v1/chat/completions reserves its default max_tokens (1024), /v1/completions 16.
    assert remaining(chat, "tokens") == 5000 - (HELLO + 1024)
    assert remaining(text, "tokens") == 5000 - chat.json()["usage"]["total_tokens"] - (HELLO + 16)
    assert remaining(text, "requests") == 0
    assert refused.status_code == 429
    assert refused.json()["error"]["type"] == "rate_limit_error"


# -- the official SDK, real server, real clock -------------------------------------------
def test_the_openai_sdk_raises_rate_limit_error_and_waits_retry_after() -> None:
    settings = make_settings(rate_limit_rpm=60, batch_max_items=60)
    app = Served(create_app(settings))
    messages: list[openai.types.chat.ChatCompletionMessageParam] = [
        {"role": "user", "content": "hello"}
    ]
    with serve(app) as base_url:
        spend = {"requests": [{"prompt": "spend the minute", "max_tokens": 1}] * 60}
        assert httpx.post(f"{base_url}/api/v1/generate/batch", json=spend, headers=AUTH).is_success

        with (
            openai.OpenAI(base_url=f"{base_url}/v1", api_key=API_KEY, max_retries=0) as impatient,
            pytest.raises(openai.RateLimitError) as refused,
        ):
            impatient.chat.completions.create(model="fake-model", messages=messages)
        assert refused.value.code == "rate_limit_exceeded"
        assert refused.value.response.headers["retry-after"] == "1"
        assert refused.value.response.headers["x-ratelimit-remaining-requests"] == "0"

        app.statuses.clear()
        with openai.OpenAI(base_url=f"{base_url}/v1", api_key=API_KEY, max_retries=2) as patient:
            started = time.monotonic()
            raw = patient.chat.completions.with_raw_response.create(
                model="fake-model", messages=messages
            )
            waited = time.monotonic() - started
    assert raw.parse().choices[0].message.content
    assert app.statuses == [429, 200]  # one refusal, then the retry after Retry-After
    assert 1.0 <= waited < 3.0  # the SDK's own first backoff would be 0.5 s at most
    assert re.fullmatch(r"\d+", raw.headers["x-ratelimit-remaining-requests"])
    assert raw.headers["x-ratelimit-limit-tokens"] == "100000000"
