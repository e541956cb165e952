from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
from fastapi.testclient import TestClient

from {{ cookiecutter.project_slug }} import PROJECT_NAME, __version__, main
from {{ cookiecutter.project_slug }}.core.lifecycle import Lifecycle
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
    assert client.get("/health/ready").status_code == 200
    # At once, though the checks' results were just cached.
    client.app.state.lifecycle.draining = True  # type: ignore[attr-defined]
    response = client.get("/health/ready")
    assert response.status_code == 503
    assert response.json()["checks"]["shutdown"] == "draining"
    assert client.get("/health/live").status_code == 200


def readiness_log(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line]
    return [line for line in lines if str(line.get("event", "")).startswith("readiness check")]


def test_a_failing_check_is_unavailable_and_its_reason_is_logged_once(
    capsys: pytest.CaptureFixture[str],
) -> None:
    healthy = True

    async def dependency() -> str | None:
        if healthy:
            return None
        raise ConnectionError("refused by db.internal:5432 for user app")

    with TestClient(main.create_app(make_settings(readiness_cache_s=0))) as client:
        client.app.state.lifecycle.add_check("dependency", dependency)  # type: ignore[attr-defined]
        assert client.get("/health/ready").status_code == 200
        healthy = False
        capsys.readouterr()
        for _ in range(3):
            response = client.get("/health/ready")
            assert response.status_code == 503
            assert response.json()["checks"]["dependency"] == "unavailable"
            assert "db.internal" not in response.text  # hosts and users stay in the log
        summary = client.get("/health")
        assert summary.json()["checks"]["dependency"] == "unavailable"
        assert "db.internal" not in summary.text
        failing = readiness_log(capsys)
        healthy = True
        assert client.get("/health/ready").status_code == 200
        recovered = readiness_log(capsys)
    # One line per change of state, not one per probe.
    assert [(line["event"], line["check"]) for line in failing] == [
        ("readiness check failing", "dependency")
    ]
    assert failing[0]["reason"] == "ConnectionError: refused by db.internal:5432 for user app"
    assert failing[0]["level"] == "warning"
    assert [(line["event"], line["check"]) for line in recovered] == [
        ("readiness check ok again", "dependency")
    ]


def test_readiness_is_evaluated_at_most_once_a_second_even_when_probes_overlap(
    client: TestClient,
) -> None:
    calls = 0

    async def slow() -> str | None:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.2)
        return None

    lifecycle: Lifecycle = client.app.state.lifecycle  # type: ignore[attr-defined]
    lifecycle.add_check("slow", slow)

    async def probes() -> list[tuple[bool, dict[str, Any]]]:
        return await asyncio.gather(*(lifecycle.readiness() for _ in range(20)))

    results = client.portal.call(probes)  # type: ignore[union-attr]
    assert calls == 1  # twenty concurrent probes shared one evaluation
    assert all(ready for ready, _ in results)
    for _ in range(5):
        assert client.get("/health/ready").status_code == 200
    assert calls == 1  # and later ones within the second reuse it
    time.sleep(1.05)
    assert client.get("/health/ready").status_code == 200
    assert calls == 2


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
