"""`/graphql` with real clients: httpx over HTTP, and a WebSocket client speaking
graphql-transport-ws by hand (the protocol of the `graphql-ws` JavaScript client)."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog.testing
from pydantic import ValidationError
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect
from websockets.sync.connection import Connection
from websockets.typing import Subprotocol

from {{ cookiecutter.project_slug }}.llm.service import GenerationService
from {{ cookiecutter.project_slug }}.main import create_app
from {{ cookiecutter.project_slug }}.settings import Settings

{% if cookiecutter.auth != "none" -%}
from .conftest import API_KEY, AUTH, AUTH_ENV, callers, make_settings, parse_sse, upstream_settings
{% else -%}
from .conftest import AUTH, AUTH_ENV, callers, make_settings, parse_sse, upstream_settings
{% endif -%}
from .servers import serve, service_process
from .upstream import Behaviour, Upstream

PROTOCOL = Subprotocol("graphql-transport-ws")
GENERATE = """
mutation Generate($prompt: String!, $maxTokens: Int, $model: String) {
  generate(prompt: $prompt, maxTokens: $maxTokens, temperature: 0, model: $model, cache: false) {
    id text tokensUsed model finishReason cached
    usage { promptTokens completionTokens totalTokens cachedTokens reasoningTokens }
  }
}
"""
STREAM = """
subscription Stream($prompt: String!, $maxTokens: Int) {
  generateStream(prompt: $prompt, maxTokens: $maxTokens) {
    __typename
    ... on GenerateDelta { text }
    ... on GenerateDone { id model finishReason tokensUsed usage { completionTokens } }
  }
}
"""


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    settings = make_settings(fake_llm_token_latency_ms=2, max_prompt_chars=50)
    with serve(create_app(settings)) as url:
        yield url


@pytest.fixture
def http(base_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url, timeout=10) as client:
        yield client


def post(
    http: httpx.Client,
    query: str,
    variables: dict[str, Any] | None = None,
    headers: dict[str, str] = AUTH,
) -> tuple[httpx.Response, dict[str, Any]]:
    response = http.post(
        "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
    )
    body: dict[str, Any] = response.json()
    return response, body


def native(http: httpx.Client, prompt: str, headers: dict[str, str]) -> httpx.Response:
    """The same generation through the REST API."""
    return http.post("/api/v1/generate", json={"prompt": prompt}, headers=headers)


def only_error(body: dict[str, Any]) -> dict[str, Any]:
    """The one error of a response, which must have no data."""
    assert body.get("data") is None, body
    (error,) = body["errors"]
    assert set(error["extensions"]) >= {"code", "type", "param", "status"}, error
    return dict(error)


# -- over HTTP --------------------------------------------------------------------------
def test_models_lists_the_model_registry(http: httpx.Client) -> None:
    response, body = post(http, "{ models { id kind ownedBy created aliases } }")
    assert response.status_code == 200, body
    listed = http.get("/v1/models", headers=AUTH).json()["data"]
    assert [model["id"] for model in body["data"]["models"]] == [model["id"] for model in listed]
    assert {model["kind"] for model in body["data"]["models"]} == {"chat", "embedding"}


def test_generate_answers_as_the_native_api_does(http: httpx.Client) -> None:
    response, body = post(http, GENERATE, {"prompt": "hello there", "maxTokens": 7})
    assert response.status_code == 200, body
    answer = body["data"]["generate"]
    native = http.post(
        "/api/v1/generate",
        json={"prompt": "hello there", "max_tokens": 7, "temperature": 0, "cache": False},
        headers=AUTH,
    ).json()
    assert answer["id"].startswith("gen-")
    assert answer["text"] == native["text"]
    assert answer["tokensUsed"] == native["tokens_used"] == 7
    assert (answer["model"], answer["finishReason"]) == ("fake-model", "length")
    assert answer["cached"] is False
    usage = native["usage"]
    assert answer["usage"] == {
        "promptTokens": usage["prompt_tokens"],
        "completionTokens": usage["completion_tokens"],
        "totalTokens": usage["total_tokens"],
        "cachedTokens": usage["prompt_tokens_details"]["cached_tokens"],
        "reasoningTokens": usage["completion_tokens_details"]["reasoning_tokens"],
    }
    assert int(response.headers["x-ratelimit-limit-requests"]) > 0


@pytest.mark.parametrize(
    ("variables", "code", "param"),
    [
        ({"prompt": "hi", "maxTokens": 0}, "invalid_value", "maxTokens"),
        ({"prompt": "", "maxTokens": 5}, "invalid_value", "prompt"),
        ({"prompt": "x" * 51}, "prompt_too_long", "prompt"),  # MAX_PROMPT_CHARS=50
        ({"prompt": "hi", "model": "no-such-model"}, "model_not_found", "model"),
    ],
    ids=["max-tokens-0", "empty-prompt", "prompt-too-long", "unknown-model"],
)
def test_arguments_the_service_refuses_are_errors_naming_the_argument(
    http: httpx.Client, variables: dict[str, Any], code: str, param: str
) -> None:
    response, body = post(http, GENERATE, variables)
    assert response.status_code == 200  # GraphQL's errors travel in a 200 response
    error = only_error(body)
    assert error["path"] == ["generate"]
    assert error["extensions"]["code"] == code
    assert error["extensions"]["param"] == param
    assert error["message"]


@pytest.mark.parametrize(
    "document",
    [
        'mutation { generate(prompt: "hi", maxTokens: "5") { text } }',
        'mutation { generate(prompt: "hi") { text colour } }',
        "{ models { id ",
    ],
    ids=["wrong-type", "unknown-field", "syntax"],
)
def test_documents_graphql_refuses_are_invalid_query(http: httpx.Client, document: str) -> None:
    error = only_error(post(http, document)[1])
    assert error["extensions"] == {
        "code": "invalid_query",
        "type": "invalid_request_error",
        "param": None,
        "status": 400,
    }


def test_requests_graphql_cannot_read_get_graphql_errors_too(http: httpx.Client) -> None:
    as_json = {**AUTH, "Content-Type": "application/json"}
    for response in (
        http.post("/graphql", content=b"{not json", headers=as_json),
        http.post("/graphql", json={"variables": {}}, headers=AUTH),
    ):
        assert response.status_code == 400
        assert response.json()["errors"][0]["extensions"]["code"] == "invalid_request"
    response, body = post(http, 'subscription { generateStream(prompt: "x") { __typename } }')
    assert only_error(body)["extensions"]["code"] == "unsupported_transport"
    ide = http.get("/graphql", headers={"Accept": "text/html"})
    assert ide.status_code == 404  # GraphiQL is off unless GRAPHQL_IDE=true


def test_an_unexpected_error_is_masked_and_logged(
    http: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the cache index at /srv/cache is corrupt")

    monkeypatch.setattr(GenerationService, "complete", broken)
    with structlog.testing.capture_logs() as logs:
        response, body = post(http, GENERATE, {"prompt": "hi"})
    error = only_error(body)
    assert error["message"] == "The request failed unexpectedly."
    assert error["extensions"]["code"] == "internal_error"
    assert "/srv/cache" not in response.text
    # The log tells what the client is not told.
    (logged,) = [entry for entry in logs if entry["event"] == "graphql operation failed"]
    assert "/srv/cache" in str(logged["exc_info"])
{%- if cookiecutter.auth != "none" %}


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer not-a-credential"}], ids=["missing", "wrong"]
)
def test_a_missing_or_wrong_credential_is_refused_as_rest_refuses_it(
    http: httpx.Client, headers: dict[str, str]
) -> None:
    rest = http.get("/v1/models", headers=headers)
    for document in ("{ models { id } }", GENERATE):
        response, body = post(http, document, {"prompt": "hi"}, headers=headers)
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"] == rest.headers["WWW-Authenticate"]
        error = only_error(body)
        assert error["message"] == rest.json()["error"]["message"]
        assert error["extensions"]["code"] == rest.json()["error"]["code"]
        assert error["extensions"]["type"] == "authentication_error"
    # The schema is public, as /openapi.json is: introspection needs no credential.
    response, body = post(http, "{ __schema { queryType { name } } }", headers=headers)
    assert response.status_code == 200
    assert body["data"]["__schema"]["queryType"]["name"] == "Query"
{%- endif %}


def test_rate_limits_are_the_ones_rest_counts_against() -> None:
    admitted, (caller,) = callers(1)
    with (
        serve(create_app(make_settings(**admitted, rate_limit_rpm=3))) as url,
        httpx.Client(base_url=url, timeout=10) as http,
    ):
        assert native(http, "a", caller.headers).status_code == 200
        response, body = post(http, GENERATE, {"prompt": "b"}, headers=caller.headers)
        assert body["data"]["generate"]["text"]
        assert response.headers["x-ratelimit-remaining-requests"] == "1"
        post(http, GENERATE, {"prompt": "c"}, headers=caller.headers)
        response, body = post(http, GENERATE, {"prompt": "d"}, headers=caller.headers)
        error = only_error(body)
        assert error["extensions"]["code"] == "rate_limit_exceeded"
        assert error["extensions"]["type"] == "rate_limit_error"
        assert error["extensions"]["retryAfter"] >= 1
        assert response.headers["Retry-After"] == str(error["extensions"]["retryAfter"])
        assert native(http, "e", caller.headers).status_code == 429
        # Reads are not limited, as on REST.
        assert post(http, "{ models { id } }", headers=caller.headers)[1]["data"]["models"]


def test_a_generation_is_settled_to_what_it_used() -> None:
    with (
        serve(create_app(make_settings(rate_limit_tpm=2000))) as url,
        httpx.Client(base_url=url, timeout=10) as http,
    ):
        response, body = post(http, GENERATE, {"prompt": "hello", "maxTokens": 900})
        reserved = 2000 - int(response.headers["x-ratelimit-remaining-tokens"])
        used = body["data"]["generate"]["usage"]["totalTokens"]
        assert reserved > 900 > used  # admitted for max_tokens, finished early
        after = http.post("/api/v1/tokenize", json={"text": "x"}, headers=AUTH)
        assert 2000 - used <= int(after.headers["x-ratelimit-remaining-tokens"]) <= 2000 - used + 10


def test_graphiql_is_served_only_when_asked_and_never_in_production() -> None:
    with (
        serve(create_app(make_settings(graphql_ide=True))) as url,
        httpx.Client(base_url=url, timeout=10) as http,
    ):
        page = http.get("/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 200
    assert "graphiql" in page.text.lower()
    with pytest.raises(ValidationError, match="GRAPHQL_IDE"):
        Settings(_env_file=None, environment="production", graphql_ide=True)
{%- if cookiecutter.database != "none" %}


def test_generations_is_the_callers_history_as_rest_pages_it() -> None:
    admitted, (caller,) = callers(1)
    settings = make_settings(**admitted, store_prompts=True)
    document = """
    query History($limit: Int, $cursor: String) {
      generations(limit: $limit, cursor: $cursor) {
        data { id model status completionTokens streamed prompt createdAt }
        nextCursor
      }
    }
    """
    prompts = [f"graphql history {n}" for n in range(3)]

    def history(http: httpx.Client, **variables: Any) -> dict[str, Any]:
        body = post(http, document, variables, headers=caller.headers)[1]
        page: dict[str, Any] = body["data"]["generations"]
        return page

    with serve(create_app(settings)) as url, httpx.Client(base_url=url, timeout=10) as http:
        for prompt in prompts:
            post(http, GENERATE, {"prompt": prompt, "maxTokens": 3}, headers=caller.headers)
        deadline = time.monotonic() + 15
        while True:  # the log is written in batches
            rows = [row for row in history(http, limit=100)["data"] if row["prompt"] in prompts]
            if len(rows) == len(prompts) or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert [row["prompt"] for row in rows] == prompts[::-1]  # newest first
        assert all(row["status"] == "ok" and row["completionTokens"] == 3 for row in rows)
        assert not any(row["streamed"] for row in rows)

        cursor, rest_cursor = None, None
        while True:  # cut as REST cuts it, cursor for cursor
            page = history(http, limit=2, cursor=cursor)
            params = {"limit": 2} | ({"cursor": rest_cursor} if rest_cursor else {})
            rest = http.get("/api/v1/generations", params=params, headers=caller.headers).json()
            assert [row["id"] for row in page["data"]] == [row["id"] for row in rest["data"]]
            cursor, rest_cursor = page["nextCursor"], rest["next_cursor"]
            assert cursor == rest_cursor
            if cursor is None:
                break

        for variables, param in (({"limit": 0}, "limit"), ({"cursor": "not-ours"}, "cursor")):
            error = only_error(post(http, document, variables, headers=caller.headers)[1])
            assert error["extensions"]["code"] == "invalid_value"
            assert error["extensions"]["param"] == param
{%- endif %}


# -- over the WebSocket (graphql-transport-ws) ------------------------------------------
def receive(ws: Connection) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(ws.recv(timeout=10))
    return message


def socket_url(base_url: str) -> str:
    return base_url.replace("http://", "ws://") + "/graphql"


@contextmanager
def graphql_socket(
    base_url: str,
    payload: dict[str, Any] | None = None,
    *,
    headers: dict[str, str] | None = None,
    subprotocols: tuple[str, ...] = (),
) -> Iterator[Connection]:
    """A socket past connection_init (credentials: `payload`, by default AUTH's)."""
    offered = [PROTOCOL, *(Subprotocol(name) for name in subprotocols)]
    with connect(socket_url(base_url), subprotocols=offered, additional_headers=headers) as ws:
        assert ws.subprotocol == PROTOCOL
        init = {"type": "connection_init", "payload": AUTH if payload is None else payload}
        ws.send(json.dumps(init))
        assert receive(ws) == {"type": "connection_ack"}
        yield ws


def subscribe(ws: Connection, operation_id: str, query: str, variables: dict[str, Any]) -> None:
    payload = {"query": query, "variables": variables}
    ws.send(json.dumps({"id": operation_id, "type": "subscribe", "payload": payload}))


def results(ws: Connection, operation_id: str) -> list[dict[str, Any]]:
    """The operation's `next` payloads, up to its `complete` (an `error` message fails)."""
    payloads: list[dict[str, Any]] = []
    while True:
        message = receive(ws)
        assert message["id"] == operation_id, message
        if message["type"] == "complete":
            return payloads
        assert message["type"] == "next", message
        payloads.append(message["payload"])


def test_a_subscription_streams_deltas_then_done_then_completes(base_url: str) -> None:
    with graphql_socket(base_url) as ws:
        subscribe(ws, "1", STREAM, {"prompt": "hello", "maxTokens": 6})
        events = [payload["data"]["generateStream"] for payload in results(ws, "1")]
    kinds = [event["__typename"] for event in events]
    assert kinds == ["GenerateDelta"] * 6 + ["GenerateDone"]
    done = events[-1]
    assert done["id"].startswith("gen-")
    assert (done["model"], done["finishReason"], done["tokensUsed"]) == ("fake-model", "length", 6)
    assert done["usage"] == {"completionTokens": 6}
    assert "".join(event["text"] for event in events[:-1]).strip()


def test_queries_and_mutations_run_over_the_socket_too(base_url: str) -> None:
    with graphql_socket(base_url) as ws:
        subscribe(ws, "a", "{ models { id } }", {})
        assert results(ws, "a")[0]["data"]["models"]
        subscribe(ws, "b", GENERATE, {"prompt": "x", "maxTokens": 3})
        assert results(ws, "b")[0]["data"]["generate"]["tokensUsed"] == 3
        subscribe(ws, "c", GENERATE, {"prompt": "x", "model": "no-such-model"})
        (payload,) = results(ws, "c")
    assert only_error(payload)["extensions"]["code"] == "model_not_found"


def test_stopping_a_subscription_cancels_the_model_call(
    upstream: Upstream, upstream_url: str
) -> None:
    upstream.default = Behaviour(tokens=100, token_delay_s=0.1)
    with serve(create_app(upstream_settings(upstream_url))) as url, graphql_socket(url) as ws:
        subscribe(ws, "1", STREAM, {"prompt": "long", "maxTokens": 100})
        assert receive(ws)["type"] == "next"
        ws.send(json.dumps({"id": "1", "type": "complete"}))
        deadline = time.monotonic() + 5
        while upstream.disconnects < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert upstream.disconnects == 1
        subscribe(ws, "2", "{ models { id } }", {})  # the socket goes on serving
        assert results(ws, "2")[0]["data"]["models"]


def test_a_failure_midway_ends_the_stream_with_the_error_rest_reports() -> None:
    settings = make_settings(fake_llm_fail_after_tokens=2)
    with serve(create_app(settings)) as url, graphql_socket(url) as ws:
        subscribe(ws, "1", STREAM, {"prompt": "x", "maxTokens": 20})
        payloads = results(ws, "1")
        body = {"prompt": "x", "max_tokens": 20}
        events = httpx.post(f"{url}/api/v1/generate/stream", json=body, headers=AUTH).text
    kinds = [payload["data"]["generateStream"]["__typename"] for payload in payloads[:2]]
    assert kinds == ["GenerateDelta", "GenerateDelta"]
    error = only_error(payloads[2])
    (rest,) = [json.loads(data) for name, data in parse_sse(events) if name == "error"]
    assert error["message"] == rest["error"]["message"]
    assert error["extensions"]["code"] == rest["error"]["code"]
    assert error["extensions"]["type"] == rest["error"]["type"] == "upstream_error"


def test_a_subscription_over_the_rate_limit_is_an_error_and_the_socket_stays_open() -> None:
    with serve(create_app(make_settings(rate_limit_rpm=1))) as url, graphql_socket(url) as ws:
        subscribe(ws, "1", STREAM, {"prompt": "first", "maxTokens": 2})
        assert results(ws, "1")[-1]["data"]["generateStream"]["__typename"] == "GenerateDone"
        subscribe(ws, "2", STREAM, {"prompt": "second", "maxTokens": 2})
        error = only_error(results(ws, "2")[0])
        assert error["extensions"]["code"] == "rate_limit_exceeded"
        assert error["extensions"]["retryAfter"] >= 1
        subscribe(ws, "3", "{ models { id } }", {})
        assert results(ws, "3")[0]["data"]["models"]


def test_a_stream_in_progress_finishes_during_a_drain(tmp_path: Path) -> None:
    # A 3 s stream: it is still going well after the 0.2 s delay, on a busy machine too.
    variables = {"FAKE_LLM_TOKEN_LATENCY_MS": "100", "DRAIN_DELAY_S": "0.2"}
    with service_process(tmp_path, **AUTH_ENV, **variables) as (url, process):
        with graphql_socket(url) as ws:
            subscribe(ws, "1", STREAM, {"prompt": "long", "maxTokens": 30})
            assert receive(ws)["type"] == "next"
            process.send_signal(signal.SIGTERM)
            time.sleep(0.8)  # past the delay: new work is refused, the stream goes on
            subscribe(ws, "2", STREAM, {"prompt": "another"})
            payloads: dict[str, list[dict[str, Any]]] = {"1": [], "2": []}
            completed: set[str] = set()
            while completed != {"1", "2"}:
                message = receive(ws)
                if message["type"] == "complete":
                    completed.add(message["id"])
                else:
                    payloads[message["id"]].append(message["payload"])
        assert only_error(payloads["2"][0])["extensions"]["code"] == "shutting_down"
        done = payloads["1"][-1]["data"]["generateStream"]
        assert (done["__typename"], done["tokensUsed"]) == ("GenerateDone", 30)
        process.communicate(timeout=20)


{%- if cookiecutter.auth != "none" %}


@pytest.mark.parametrize(
    ("payload", "headers", "subprotocols"),
    [
        ({"Authorization": f"Bearer {API_KEY}"}, None, ()),
{%- if cookiecutter.auth == "api_key" %}
        ({"X-API-Key": API_KEY}, None, ()),
{%- endif %}
        ({}, AUTH, ()),  # the handshake's header
        ({}, None, (f"bearer.{API_KEY}",)),  # what browsers can send
    ],
    ids=[
        "connection-init",
{%- if cookiecutter.auth == "api_key" %}
        "connection-init-x-api-key",
{%- endif %}
        "handshake-header",
        "bearer-subprotocol",
    ],
)
def test_credentials_may_come_in_connection_init_or_with_the_handshake(
    base_url: str,
    payload: dict[str, Any],
    headers: dict[str, str] | None,
    subprotocols: tuple[str, ...],
) -> None:
    with graphql_socket(base_url, payload, headers=headers, subprotocols=subprotocols) as ws:
        subscribe(ws, "1", "{ models { id } }", {})
        assert results(ws, "1")[0]["data"]["models"]


@pytest.mark.parametrize(
    ("payload", "headers"),
    [
        ({}, None),
        ({"Authorization": "Bearer not-a-credential"}, None),
        ({"Authorization": "Bearer not-a-credential"}, AUTH),  # the payload's entry wins
        ({}, {"Authorization": "Bearer not-a-credential"}),
    ],
    ids=["none", "wrong-in-payload", "wrong-payload-right-header", "wrong-header"],
)
def test_without_a_valid_credential_connection_init_is_refused_with_4403(
    base_url: str, payload: dict[str, Any], headers: dict[str, str] | None
) -> None:
    with connect(socket_url(base_url), subprotocols=[PROTOCOL], additional_headers=headers) as ws:
        ws.send(json.dumps({"type": "connection_init", "payload": payload}))
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4403
{%- else %}


def test_anyone_may_connect(base_url: str) -> None:
    with graphql_socket(base_url, {}) as ws:
        subscribe(ws, "1", "{ models { id } }", {})
        assert results(ws, "1")[0]["data"]["models"]
{%- endif %}


def test_operations_before_connection_init_close_the_socket(base_url: str) -> None:
    with connect(socket_url(base_url), subprotocols=[PROTOCOL]) as ws:
        subscribe(ws, "1", "{ models { id } }", {})
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4401
