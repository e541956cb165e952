from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from {{ cookiecutter.project_slug }}.main import create_app

from .conftest import AUTH, make_settings


def test_request_id_is_created_when_absent(client: TestClient) -> None:
    first = client.get("/health/live").headers["X-Request-ID"]
    second = client.get("/health/live").headers["X-Request-ID"]
    assert len(first) == 32
    assert first != second


def test_request_id_is_echoed(client: TestClient) -> None:
    response = client.get("/health/live", headers={"X-Request-ID": "abc-123"})
    assert response.headers["X-Request-ID"] == "abc-123"


def test_unsafe_request_id_is_replaced(client: TestClient) -> None:
    response = client.get("/health/live", headers={"X-Request-ID": "bad id\twith spaces"})
    assert response.headers["X-Request-ID"] != "bad id\twith spaces"
    assert len(response.headers["X-Request-ID"]) == 32


def test_security_headers_are_set(client: TestClient) -> None:
    headers = client.get("/health/live").headers
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert "Strict-Transport-Security" not in headers


def test_access_log_is_one_json_line_with_request_id(capsys: pytest.CaptureFixture[str]) -> None:
    with TestClient(create_app(make_settings())) as client:
        capsys.readouterr()
        headers = {**AUTH, "X-Request-ID": "log-1"}
        client.post("/api/v1/generate", json={"prompt": "hi"}, headers=headers)
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line]
    access = [line for line in lines if line.get("event") == "request"]
    assert len(access) == 1
    entry = access[0]
    assert entry["request_id"] == "log-1"
    assert entry["method"] == "POST"
    assert entry["path"] == "/api/v1/generate"
    assert entry["status"] == 200
    assert entry["duration_ms"] >= 0
    assert entry["level"] == "info"
    assert "timestamp" in entry


def test_cors_allows_configured_origins_only() -> None:
    settings = make_settings(cors_origins="https://app.example.com, https://admin.example.com")
    with TestClient(create_app(settings)) as client:
        preflight = {"Access-Control-Request-Method": "POST"}
        allowed = client.options(
            "/api/v1/generate", headers={**preflight, "Origin": "https://admin.example.com"}
        )
        denied = client.options(
            "/api/v1/generate", headers={**preflight, "Origin": "https://evil.example.com"}
        )
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://admin.example.com"
    assert "access-control-allow-origin" not in denied.headers


def test_force_https_redirects_but_spares_health_probes() -> None:
    with TestClient(create_app(make_settings(force_https=True))) as client:
        redirect = client.get("/api/v1/generate?x=1", follow_redirects=False)
        probe = client.get("/health/live", follow_redirects=False)
        secure = client.get("https://testserver/health/live")
    assert redirect.status_code == 308
    assert redirect.headers["location"] == "https://testserver/api/v1/generate?x=1"
    assert probe.status_code == 200
    assert secure.headers["Strict-Transport-Security"].startswith("max-age=")


PATH = "/api/v1/generate"


def test_trusted_hosts_refuse_other_hosts_with_the_error_body() -> None:
    settings = make_settings(trusted_hosts="api.example.com, *.example.org")
    with TestClient(create_app(settings)) as client:
        for host in ("api.example.com", "API.example.com:8443", "eu.example.org"):
            answer = client.post(PATH, json={"prompt": "hi"}, headers={**AUTH, "Host": host})
            assert answer.status_code == 200, host
        for host in ("evil.example.net", "example.org", "api.example.com.evil.net", ""):
            refused = client.post(PATH, json={"prompt": "hi"}, headers={**AUTH, "Host": host})
            assert refused.status_code == 400, host
            assert refused.json()["error"]["code"] == "invalid_host"
            assert refused.headers["X-Request-ID"]
        # The kubelet probes with the pod's IP as Host, which no list can name in advance.
        for path in ("/health/live", "/health/ready"):
            assert client.get(path, headers={"Host": "10.1.2.3:8000"}).status_code == 200


def test_untrusted_hosts_are_refused_before_the_https_redirect() -> None:
    settings = make_settings(trusted_hosts="api.example.com", force_https=True)
    with TestClient(create_app(settings)) as client:
        forged = client.get("/", headers={"Host": "evil.example.net"}, follow_redirects=False)
        trusted = client.get("/", headers={"Host": "api.example.com"}, follow_redirects=False)
    assert forged.status_code == 400  # never a redirect to the forged host
    assert trusted.status_code == 308
    assert trusted.headers["location"] == "https://api.example.com/"
