"""Bad input, tried for real over HTTP: each gets a 4xx with the error body naming the
problem, the server keeps serving, and nothing in the database changes."""

from __future__ import annotations

import time
{%- if cookiecutter.database != "none" %}
{%- endif %}
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
{%- if cookiecutter.database != "none" %}
from sqlalchemy import func, select
{%- endif %}

{% if cookiecutter.database != "none" -%}
from {{ cookiecutter.project_slug }}.db.models import GenerationLog, JobRecord
{% endif -%}
from {{ cookiecutter.project_slug }}.main import create_app

from .conftest import AUTH, {% if cookiecutter.database != "none" %}callers, {% endif %}make_settings
from .servers import serve
{%- if cookiecutter.database != "none" %}
from .test_db import query
{%- endif %}

MAX_PROMPT_CHARS = 1_000
SMALL_BODY_LIMIT = 16 * 1024  # small, so an oversize body is refused in a few packets
LARGE_BODY_LIMIT = 8 * 1024 * 1024  # for the huge-but-allowed JSON
NATIVE = "/api/v1/generate"
OPENAI = "/v1/chat/completions"
CHAT = {"model": "fake-model", "messages": [{"role": "user", "content": "hi"}]}
JSON = {"Content-Type": "application/json"}


def nested(depth: int) -> bytes:
    return b'{"prompt": "hi", "deep": ' + b"[" * depth + b"]" * depth + b"}"


@dataclass
class Case:
    name: str
    path: str
    status: int
    json: Any = None
    content: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    param: str | None = None
    code: str | None = None
    says: str = ""  # a fragment the message must hold

    def send(self, http: httpx.Client | TestClient, auth: dict[str, str] = AUTH) -> Any:
        """The response (TestClient's is an httpx2 one, hence Any)."""
        headers = {**auth, **self.headers}
        if self.content is not None:
            return http.post(self.path, content=self.content, headers=headers)
        return http.post(self.path, json=self.json, headers=headers)


def invalid(name: str, body: Any, param: str | None, says: str = "", path: str = NATIVE) -> Case:
    """A JSON body with one bad field: 422 on the native API, 400 on /v1 (as OpenAI)."""
    status = 400 if path.startswith("/v1/") else 422
    return Case(name, path, status, json=body, param=param, says=says)


def unreadable(
    name: str,
    path: str,
    status: int,
    content: bytes,
    code: str,
    says: str = "",
    *,
    sent_as: str = "",
) -> Case:
    """A body the service cannot read as a JSON object (`sent_as`: its Content-Type)."""
    headers = {"Content-Type": sent_as or "application/json"}
    return Case(name, path, status, content=content, headers=headers, code=code, says=says)


def too_long(path: str, body: dict[str, Any], param: str = "prompt") -> Case:
    says = f"at most {MAX_PROMPT_CHARS} characters"
    return Case(f"long prompt on {path}", path, 422, json=body, param=param, says=says)


LONG = "x" * (MAX_PROMPT_CHARS + 1)
HI = {"prompt": "hi"}
UNSUPPORTED = "unsupported_media_type"
FORM = "application/x-www-form-urlencoded"
CASES = [
    invalid("max_tokens as a string", {**HI, "max_tokens": "5"}, "max_tokens"),
    invalid("max_tokens as a float", {**HI, "max_tokens": 5.0}, "max_tokens"),
    invalid("cache as a number", {**HI, "cache": 0}, "cache"),
    invalid("temperature as a string", {**HI, "temperature": "1"}, "temperature"),
    invalid("negative max_tokens", {**HI, "max_tokens": -1}, "max_tokens"),
    invalid("huge max_tokens", {**HI, "max_tokens": 10**12}, "max_tokens"),
    invalid("temperature below 0", {**HI, "temperature": -0.1}, "temperature"),
    invalid("temperature above 2", {**HI, "temperature": 2.01}, "temperature"),
    invalid("temperature above 2 on /v1", {**CHAT, "temperature": 3}, "temperature", path=OPENAI),
    invalid("empty prompt", {"prompt": ""}, "prompt", says="at least 1 character"),
    invalid("prompt of the wrong type", {"prompt": ["hi"]}, "prompt"),
    invalid("no prompt", {"max_tokens": 5}, "prompt", says="Field required"),
    Case("unknown model on the native API", NATIVE, 404, {**HI, "model": "gpt-x"}, param="model"),
    invalid("a JSON array", [HI], None, says="must be a JSON object"),
    too_long(NATIVE, {"prompt": LONG}),
    too_long(f"{NATIVE}/stream", {"prompt": LONG}),
    too_long(f"{NATIVE}/batch", {"requests": [HI, {"prompt": LONG}]}, "requests[1].prompt"),
    too_long("/api/v1/jobs", {"prompt": LONG}),
    Case("unknown model on /v1", OPENAI, 404, {**CHAT, "model": "nope"}, param="model"),
    unreadable("malformed JSON", NATIVE, 400, b'{"prompt": ', "invalid_json", "not valid JSON"),
    unreadable("malformed JSON on /v1", OPENAI, 400, b'{"model": ', "invalid_json"),
    unreadable("invalid UTF-8", NATIVE, 400, b'{"prompt": "\xff\xfe"}', "invalid_json", "UTF-8"),
    unreadable("deep JSON", NATIVE, 400, nested(10_000), "invalid_json", "nested too deeply"),
    unreadable("deeper JSON on /v1", OPENAI, 400, nested(200_000), "invalid_json"),
    Case("no body", NATIVE, 422, content=b"", code="missing_body"),
    unreadable("text/plain", NATIVE, 415, b"{}", UNSUPPORTED, sent_as="text/plain"),
    unreadable("text/plain on /v1", OPENAI, 400, b"{}", UNSUPPORTED, sent_as="text/plain"),
    unreadable("a form", NATIVE, 415, b"prompt=hi", UNSUPPORTED, sent_as=FORM),
]


def assert_error_body(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.headers["X-Request-ID"]
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["message"]
    error: dict[str, Any] = body["error"]
    return error


def limits(max_body_bytes: int = LARGE_BODY_LIMIT) -> dict[str, Any]:
    return {"max_prompt_chars": MAX_PROMPT_CHARS, "max_body_bytes": max_body_bytes}


@contextmanager
def client_of(**settings: Any) -> Iterator[httpx.Client]:
    with (
        serve(create_app(make_settings(**settings))) as base_url,
        httpx.Client(base_url=base_url, timeout=30) as client,
    ):
        yield client


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    with client_of(**limits()) as client:
        yield client


@pytest.fixture(scope="module")
def http_small() -> Iterator[httpx.Client]:
    """A server with a small MAX_BODY_BYTES."""
    with client_of(**limits(SMALL_BODY_LIMIT)) as client:
        yield client


def still_serving(http: httpx.Client | TestClient, auth: dict[str, str] = AUTH) -> None:
    response = http.post(NATIVE, json={"prompt": "still there?", "max_tokens": 3}, headers=auth)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_bad_input_is_a_4xx_naming_the_problem(http: httpx.Client, case: Case) -> None:
    error = assert_error_body(case.send(http), case.status)
    assert error["type"] in {"invalid_request_error", "not_found_error"}
    assert error["param"] == case.param
    if case.code is not None:
        assert error["code"] == case.code
    if case.param is not None and case.status != 404:
        assert error["message"].startswith(case.param)
    assert case.says in error["message"]
    assert "Traceback" not in error["message"]


def test_json_integers_are_fine_for_floats(http: httpx.Client) -> None:
    response = http.post(NATIVE, json={"prompt": "hi", "temperature": 1}, headers=AUTH)
    assert response.status_code == 200, response.text


def oversize_chunks(limit: int) -> Iterator[bytes]:
    """A JSON body over `limit` bytes, sent chunked (no Content-Length)."""
    yield b'{"prompt": "'
    for _ in range(limit // 4096 + 2):
        yield b"x" * 4096
    yield b'"}'


def oversize(sent: str) -> bytes | Iterator[bytes]:
    """A JSON body over SMALL_BODY_LIMIT: with its length declared, or chunked."""
    if sent == "sized":
        return b'{"prompt": "' + b"x" * (SMALL_BODY_LIMIT + 1) + b'"}'
    return oversize_chunks(SMALL_BODY_LIMIT)


@contextmanager
def small_limit_client(where: str, served: httpx.Client) -> Iterator[httpx.Client | TestClient]:
    if where == "served":
        yield served
        return
    with TestClient(create_app(make_settings(**limits(SMALL_BODY_LIMIT)))) as client:
        yield client


@pytest.mark.parametrize("path", [NATIVE, OPENAI])
@pytest.mark.parametrize("sent", ["sized", "chunked"])
@pytest.mark.parametrize("where", ["served", "in-process"])
def test_oversize_bodies_are_413(
    http_small: httpx.Client, where: str, path: str, sent: str
) -> None:
    with small_limit_client(where, http_small) as http:
        response = http.post(path, content=oversize(sent), headers={**AUTH, **JSON})
        if sent == "chunked":
            assert response.request.headers["transfer-encoding"] == "chunked"
        error = assert_error_body(response, 413)
        assert error["code"] == "request_too_large"
        assert str(SMALL_BODY_LIMIT) in error["message"]
        still_serving(http)


def test_huge_json_under_the_limit_is_answered_promptly(http: httpx.Client) -> None:
    numbers = list(range(700_000))  # about 5 MB of JSON numbers
    started = time.monotonic()
    native = http.post(NATIVE, json={"prompt": "hi", "numbers": numbers}, headers=AUTH)
    error = assert_error_body(native, 422)
    assert error["param"] == "numbers"  # not a field of the native API
    openai = http.post(OPENAI, json={**CHAT, "numbers": numbers}, headers=AUTH)
    error = assert_error_body(openai, 400)  # kept for an upstream; the fake model refuses it
    assert (error["param"], error["code"]) == ("numbers", "unsupported_parameter")
    assert time.monotonic() - started < 10
    still_serving(http)
{%- if cookiecutter.database != "none" %}


def rows_of(principal: str) -> tuple[int, int]:
    """The caller's rows in the generation log and the job records."""
    settings = make_settings()
    logged = select(func.count()).where(GenerationLog.principal == principal)
    jobs = select(func.count()).where(JobRecord.owner == principal)
    return query(settings, logged)[0][0], query(settings, jobs)[0][0]


def test_bad_input_changes_nothing_in_the_database() -> None:
    admitted, (caller,) = callers(1)  # its own caller: other tests' rows do not count
    auth = caller.headers
    with TestClient(create_app(make_settings(**admitted, **limits()))) as client:
        for case in CASES:
            assert case.send(client, auth).status_code == case.status, case.name
        for path in (NATIVE, "/api/v1/jobs", OPENAI):
            body = b'{"prompt": "' + b"x" * (LARGE_BODY_LIMIT + 1) + b'"}'
            assert client.post(path, content=body, headers={**auth, **JSON}).status_code == 413
        still_serving(client, auth)  # one good request: the log does record this caller
    # The app has closed: whatever its generation log held is written by now.
    assert rows_of(caller.principal) == (1, 0)
{%- endif %}
