from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from {{ cookiecutter.project_slug }} import PROJECT_NAME, __version__, main
from {{ cookiecutter.project_slug }}.llm import models
from {{ cookiecutter.project_slug }}.llm.fake import FakeProvider

from .conftest import AUTH, make_settings


def test_root_names_the_service_and_links_docs(client: TestClient) -> None:
    body = client.get("/").json()
    assert body["name"] == PROJECT_NAME
    assert body["version"] == __version__
    assert body["docs"] == "/docs"
    assert client.get(body["docs"]).status_code == 200
    assert client.get(body["openapi"]).json()["info"]["title"] == PROJECT_NAME


def test_probes_answer_without_auth(client: TestClient) -> None:
    assert client.get("/health/live").json() == {"status": "ok"}
    ready = client.get("/health/ready")
    assert ready.status_code == 200
{%- set checks = ["models", "jobs"] %}
{%- if cookiecutter.use_redis %}{% set checks = ["redis"] + checks %}{% endif %}
{%- if cookiecutter.database != "none" %}{% set checks = ["database"] + checks %}{% endif %}
    checks = dict.fromkeys({{ checks | tojson }}, "ok")
    assert ready.json() == {"status": "ok", "checks": checks}
    summary = client.get("/health").json()
    assert summary["status"] == "ok"
    assert summary["version"] == __version__
    assert summary["environment"] == "test"
    assert summary["uptime_s"] >= 0


def test_readiness_is_503_while_draining(client: TestClient) -> None:
    client.app.state.lifecycle.draining = True  # type: ignore[attr-defined]
    response = client.get("/health/ready")
    assert response.status_code == 503
    assert response.json()["checks"]["shutdown"] == "draining"
    assert client.get("/health/live").status_code == 200


def test_failing_check_makes_readiness_503_with_the_reason(client: TestClient) -> None:
    async def broken() -> str | None:
        raise ConnectionError("refused")

    client.app.state.lifecycle.add_check("dependency", broken)  # type: ignore[attr-defined]
    response = client.get("/health/ready")
    assert response.status_code == 503
    assert response.json()["checks"]["dependency"] == "ConnectionError: refused"


def test_lifespan_builds_the_providers_and_closes_them(monkeypatch: pytest.MonkeyPatch) -> None:
    closed: list[str] = []

    class RecordingProvider(FakeProvider):
        async def aclose(self) -> None:
            closed.append(self.name)

    monkeypatch.setattr(models, "FakeProvider", RecordingProvider)
    with TestClient(main.create_app(make_settings(llm_model="lifespan-model"))) as client:
        body = client.post("/api/v1/generate", json={"prompt": "hi"}, headers=AUTH).json()
        assert body["model"] == "lifespan-model"
        assert closed == []
    assert closed == ["fake"]  # one upstream: the chat and embedding models share it
