from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient

from {{ cookiecutter.project_slug }}.llm.base import GenerationRequest
from {{ cookiecutter.project_slug }}.llm.fake import FakeProvider
from {{ cookiecutter.project_slug }}.main import create_app

from .conftest import AUTH, make_settings


def test_generate_answers_with_the_text_its_usage_and_its_metadata(client: TestClient) -> None:
    payload = {"prompt": "Tell me about FastAPI"}
    response = client.post("/api/v1/generate", json=payload, headers=AUTH)
    assert response.status_code == 200
    body = response.json()
    assert body["text"]
    assert body["tokens_used"] == body["usage"]["completion_tokens"] > 0
    assert body["usage"]["total_tokens"] == (
        body["usage"]["prompt_tokens"] + body["usage"]["completion_tokens"]
    )
    assert body["id"].startswith("gen-")
    assert body["model"] == "fake-model"
    assert body["finish_reason"] in {"stop", "length"}
    assert body["cached"] is False


def test_output_is_derived_from_the_prompt(client: TestClient) -> None:
    def text(prompt: str) -> str:
        response = client.post("/api/v1/generate", json={"prompt": prompt}, headers=AUTH)
        return str(response.json()["text"])

    assert text("alpha") == text("alpha")
    assert text("alpha") != text("beta")


def test_max_tokens_is_honoured(client: TestClient) -> None:
    body = client.post(
        "/api/v1/generate", json={"prompt": "a long answer please", "max_tokens": 3}, headers=AUTH
    ).json()
    assert body["tokens_used"] == 3
    assert body["finish_reason"] == "length"


def test_token_latency_paces_the_fake_model() -> None:
    settings = make_settings(fake_llm_token_latency_ms=20)
    with TestClient(create_app(settings)) as client:
        start = time.perf_counter()
        body = client.post(
            "/api/v1/generate", json={"prompt": "x", "max_tokens": 5}, headers=AUTH
        ).json()
        elapsed = time.perf_counter() - start
    assert body["tokens_used"] == 5
    assert elapsed >= 5 * 0.020


@pytest.mark.anyio
async def test_fake_stream_matches_the_complete_answer() -> None:
    provider = FakeProvider()
    request = GenerationRequest.from_prompt(
        "stream me", max_tokens=50, temperature=0.0, model="fake-model"
    )
    completion = await provider.complete(request)
    chunks = [chunk async for chunk in provider.stream(request)]
    assert "".join(chunk.text for chunk in chunks) == completion.text
    assert [c.finish_reason for c in chunks if c.finish_reason] == [completion.finish_reason]
    assert chunks[-1].usage == completion.usage
    assert chunks[-2].finish_reason == completion.finish_reason  # the choice's last chunk
