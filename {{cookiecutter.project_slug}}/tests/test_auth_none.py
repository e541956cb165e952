"""No authentication (auth=none): anyone may call, and a caller is its address."""

from __future__ import annotations

import httpx
from fastapi.testclient import TestClient

from {{ cookiecutter.project_slug }}.main import create_app

from .conftest import make_settings
from .servers import serve

PROMPT = {"prompt": "hi", "max_tokens": 3}


def test_every_route_answers_without_credentials(client: TestClient) -> None:
    assert client.post("/api/v1/generate", json=PROMPT).status_code == 200
    assert client.get("/v1/models").status_code == 200
    # A credential sent anyway is ignored, not refused.
    headers = {"Authorization": "Bearer sk-anything", "X-API-Key": "whatever"}
    assert client.post("/api/v1/generate", json=PROMPT, headers=headers).status_code == 200


def test_a_caller_is_its_address_as_forwarded_by_a_trusted_gateway() -> None:
    with serve(create_app(make_settings())) as base_url, httpx.Client(base_url=base_url) as http:
        # The gateway (127.0.0.1, trusted by FORWARDED_ALLOW_IPS) forwards the client's address.
        here, there = {"X-Forwarded-For": "198.51.100.7"}, {"X-Forwarded-For": "203.0.113.9"}
        job = http.post("/api/v1/jobs", json=PROMPT, headers=here)
        assert job.status_code == 202
        assert http.get(job.headers["Location"], headers=here).status_code == 200
        assert http.get(job.headers["Location"], headers=there).status_code == 404


def test_openapi_declares_no_security(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    assert "securitySchemes" not in document.get("components", {})
    for path, methods in document["paths"].items():
        for operation in methods.values():
            assert "security" not in operation, path
