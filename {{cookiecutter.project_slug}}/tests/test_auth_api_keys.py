"""API-key authentication: both headers, digests, fail-closed, OpenAPI, production refusals."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from {{ cookiecutter.project_slug }}.auth.api_keys import key_id
from {{ cookiecutter.project_slug }}.main import create_app

from .conftest import API_KEY, make_settings
from .servers import serve

OTHER_KEY = "sk-other-0123456789abcdef"
PROMPT = {"prompt": "hi", "max_tokens": 3}
OPEN_PATHS = ["/", "/health/live", "/health/ready", "/health", "/docs", "/redoc", "/openapi.json"]


def generate(client: TestClient, headers: dict[str, str]) -> Any:
    return client.post("/api/v1/generate", json=PROMPT, headers=headers)


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": f"Bearer {API_KEY}"},
        {"Authorization": f"bearer   {API_KEY} "},
        {"X-API-Key": API_KEY},
    ],
    ids=["bearer", "bearer-lower-case-spaces", "x-api-key"],
)
def test_both_key_headers_are_accepted(client: TestClient, headers: dict[str, str]) -> None:
    assert generate(client, headers).status_code == 200


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, "missing_api_key"),
        ({"Authorization": "Bearer"}, "missing_api_key"),
        ({"Authorization": f"Basic {API_KEY}"}, "missing_api_key"),
        ({"Authorization": "Bearer sk-wrong"}, "invalid_api_key"),
        ({"X-API-Key": "sk-wrong"}, "invalid_api_key"),
        ({"Authorization": f"Bearer {API_KEY[:-1]}"}, "invalid_api_key"),  # a prefix
        ({"Authorization": f"Bearer {API_KEY}x"}, "invalid_api_key"),  # an extension
        ({"Authorization": f"Bearer {API_KEY.upper()}"}, "invalid_api_key"),
    ],
    ids=["none", "empty-bearer", "basic", "wrong", "wrong-header", "prefix", "longer", "case"],
)
def test_a_missing_malformed_or_wrong_key_is_a_401_naming_the_problem(
    client: TestClient, headers: dict[str, str], code: str
) -> None:
    response = generate(client, headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    error = response.json()["error"]
    assert error["type"] == "authentication_error"
    assert error["code"] == code
    assert ("Missing" if code == "missing_api_key" else "Invalid") in error["message"]
    assert "sk-wrong" not in response.text
    assert API_KEY not in response.text


def test_the_caller_is_known_by_its_keys_id_never_the_key(client: TestClient) -> None:
    job = client.post("/api/v1/jobs", json=PROMPT, headers={"X-API-Key": API_KEY})
    assert job.status_code == 202
    # The same key by the other header is the same caller: it sees its own job.
    mine = client.get(job.headers["Location"], headers={"Authorization": f"Bearer {API_KEY}"})
    assert mine.status_code == 200
    assert key_id(API_KEY).startswith("key_")
    assert API_KEY not in key_id(API_KEY)


def test_comma_separated_keys_each_work() -> None:
    settings = make_settings(api_keys=f" {API_KEY}, {OTHER_KEY} ,")
    assert [key.get_secret_value() for key in settings.api_keys] == [API_KEY, OTHER_KEY]
    with TestClient(create_app(settings)) as client:
        for key in (API_KEY, OTHER_KEY):
            assert generate(client, {"Authorization": f"Bearer {key}"}).status_code == 200


def test_without_keys_every_call_is_refused() -> None:
    with TestClient(create_app(make_settings(api_keys=""))) as client:
        assert generate(client, {}).json()["error"]["code"] == "missing_api_key"
        refused = generate(client, {"Authorization": f"Bearer {API_KEY}"})
        assert refused.status_code == 401
        assert refused.json()["error"]["code"] == "invalid_api_key"


def test_allow_anonymous_serves_callers_without_a_key_by_their_address() -> None:
    settings = make_settings(api_keys="", allow_anonymous=True)
    with serve(create_app(settings)) as base_url, httpx.Client(base_url=base_url) as http:
        assert http.post("/api/v1/generate", json=PROMPT).status_code == 200
        # Behind a trusted proxy (FORWARDED_ALLOW_IPS) the address is the forwarded one.
        here, there = {"X-Forwarded-For": "198.51.100.7"}, {"X-Forwarded-For": "203.0.113.9"}
        job = http.post("/api/v1/jobs", json=PROMPT, headers=here)
        assert http.get(job.headers["Location"], headers=here).status_code == 200
        assert http.get(job.headers["Location"], headers=there).status_code == 404
        # Presenting a bad key is still an error, not a way in.
        refused = http.post("/api/v1/generate", json=PROMPT, headers={"X-API-Key": "sk-wrong"})
        assert refused.status_code == 401


@pytest.mark.parametrize("path", OPEN_PATHS)
def test_health_and_docs_need_no_key(client: TestClient, path: str) -> None:
    assert client.get(path).status_code == 200


def test_openapi_declares_both_schemes_on_every_protected_operation(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    schemes = document["components"]["securitySchemes"]
    assert schemes["APIKeyBearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": schemes["APIKeyBearer"]["description"],
    }
    header = schemes["APIKeyHeader"]
    assert (header["type"], header["in"], header["name"]) == ("apiKey", "header", "X-API-Key")
    operations = [
        (path, operation)
        for path, methods in document["paths"].items()
        for operation in methods.values()
    ]
    protected = [(path, op) for path, op in operations if path not in OPEN_PATHS]
    assert protected
    for path, operation in protected:
        assert operation.get("security") == [{"APIKeyBearer": []}, {"APIKeyHeader": []}], path
    for path, operation in operations:
        if path in OPEN_PATHS:
            assert "security" not in operation, path


def test_what_docs_authorize_sends_is_accepted(client: TestClient) -> None:
    """/docs' Authorize dialog sends each declared scheme the way OpenAPI describes it."""
    schemes = client.get("/openapi.json").json()["components"]["securitySchemes"]
    for scheme in schemes.values():
        if scheme["type"] == "http":
            headers = {"Authorization": f"{scheme['scheme'].title()} {API_KEY}"}
        else:
            headers = {scheme["name"]: API_KEY}
        assert client.get("/v1/models", headers=headers).status_code == 200, scheme


@pytest.mark.parametrize(
    ("values", "setting"),
    [
        ({"allow_anonymous": True}, "ALLOW_ANONYMOUS"),
        ({"api_keys": "change-me"}, "API_KEYS"),
        ({"api_keys": f"{API_KEY},short"}, "API_KEYS"),
{%- if cookiecutter.database == "none" %}
        ({"api_keys": ""}, "API_KEYS"),
{%- endif %}
    ],
    ids=[
        "anonymous",
        "example",
        "short",
{%- if cookiecutter.database == "none" %}
        "empty",
{%- endif %}
    ],
)
def test_production_refuses_unsafe_key_settings_in_one_sentence(
    values: dict[str, Any], setting: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        make_settings(environment="production", **values)
    (error,) = refused.value.errors()
    assert error["msg"].startswith("Value error, ENVIRONMENT=production ")
    assert setting in error["msg"]
    assert "\n" not in error["msg"]


def test_production_accepts_random_keys() -> None:
    settings = make_settings(environment="production", api_keys=f"sk-{'x9' * 16},{API_KEY}")
    assert len(settings.api_keys) == 2
{%- if cookiecutter.database != "none" %}
    # With a database the keys may all live in the api_keys table.
    assert make_settings(environment="production", api_keys="").api_keys == ()
{%- endif %}
