"""Every error, on every route, has the OpenAI error body and a request id."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from {{ cookiecutter.project_slug }}.main import create_app

from .conftest import AUTH, make_settings


def assert_error(response: Any, status: int, *, param: str | None = None) -> dict[str, Any]:
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    assert response.headers["X-Request-ID"]
    body = response.json()
    assert set(body) == {"error"}
    error: dict[str, Any] = body["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["message"]
    assert error["param"] == param
    assert "Traceback" not in response.text
    return error


def test_unknown_route_is_404(client: TestClient) -> None:
    error = assert_error(client.get("/nope"), 404)
    assert error["type"] == "not_found_error"
    assert "/nope" in error["message"]


def test_wrong_method_is_405(client: TestClient) -> None:
    response = client.get("/api/v1/generate", headers=AUTH)
    error = assert_error(response, 405)
    assert response.headers["Allow"] == "POST"
    assert error["type"] == "invalid_request_error"


@pytest.mark.parametrize(
    ("payload", "param"),
    [
        ({}, "prompt"),
        ({"prompt": ""}, "prompt"),
        ({"prompt": "hi", "max_tokens": 0}, "max_tokens"),
        ({"prompt": "hi", "temperature": 5}, "temperature"),
        ({"prompt": "hi", "max_tokens": "many"}, "max_tokens"),
        ({"prompt": "hi", "unknown": 1}, "unknown"),
    ],
)
def test_invalid_body_is_422_naming_the_field(
    client: TestClient, payload: dict[str, Any], param: str
) -> None:
    response = client.post("/api/v1/generate", json=payload, headers=AUTH)
    error = assert_error(response, 422, param=param)
    assert error["type"] == "invalid_request_error"
    assert error["message"].startswith(param)


def test_malformed_json_is_400(client: TestClient) -> None:
    response = client.post(
        "/api/v1/generate",
        content=b'{"prompt": ',
        headers={**AUTH, "Content-Type": "application/json"},
    )
    error = assert_error(response, 400)
    assert error["code"] == "invalid_json"
    assert "JSON" in error["message"]


def test_body_over_max_body_bytes_is_413() -> None:
    with TestClient(create_app(make_settings(max_body_bytes=64))) as client:
        response = client.post("/api/v1/generate", json={"prompt": "x" * 200}, headers=AUTH)
        error = assert_error(response, 413)
        assert error["type"] == "invalid_request_error"
        ok = client.post("/api/v1/generate", json={"prompt": "short"}, headers=AUTH)
        assert ok.status_code == 200


def test_unexpected_exception_is_500_without_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    app = create_app(make_settings())

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret internals")

    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/boom", headers={"X-Request-ID": "req-500"})
    error = assert_error(response, 500)
    assert error["type"] == "server_error"
    assert "secret internals" not in response.text
    assert response.headers["X-Request-ID"] == "req-500"
    logged = capsys.readouterr().out
    assert "secret internals" in logged  # the traceback goes to the logs instead
    assert "req-500" in logged
