"""The official `openai` SDK, unchanged, against the served app (`base_url=.../v1`)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import openai
import pytest

from {{ cookiecutter.project_slug }}.main import create_app

from .conftest import API_KEY, make_settings, parse_sse, upstream_settings
from .servers import serve
from .upstream import Behaviour, Upstream

MESSAGES: list[openai.types.chat.ChatCompletionMessageParam] = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "What is an ASGI server?"},
]


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    with serve(create_app(make_settings())) as url:
        yield url


@pytest.fixture
def client(base_url: str) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{base_url}/v1", api_key=API_KEY, max_retries=0) as client:
        yield client


def test_models_list(client: openai.OpenAI) -> None:
    assert [model.id for model in client.models.list()] == ["fake-model", "fake-embedding"]


def test_chat_completion(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="fake-model", messages=MESSAGES, max_tokens=20, temperature=0
    )
    assert completion.object == "chat.completion"
    assert completion.choices[0].message.role == "assistant"
    assert completion.choices[0].message.content
    assert completion.choices[0].finish_reason in {"stop", "length"}
    assert completion.usage is not None
    assert completion.usage.completion_tokens <= 20


def test_chat_stream_is_shaped_like_openais(client: openai.OpenAI) -> None:
    whole = client.chat.completions.create(
        model="fake-model", messages=MESSAGES, max_tokens=30, temperature=0
    )
    chunks = list(
        client.chat.completions.create(
            model="fake-model",
            messages=MESSAGES,
            max_tokens=30,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert content == whole.choices[0].message.content
    finish = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert len(finish) == 1
    assert finish[0].choices[0].finish_reason == whole.choices[0].finish_reason
    usage_chunk = chunks[-1]
    assert usage_chunk.choices == []
    assert usage_chunk.usage == whole.usage
    assert len({c.id for c in chunks}) == 1


def test_raw_stream_ends_with_done(base_url: str) -> None:
    response = httpx.post(
        f"{base_url}/v1/chat/completions",
        json={"model": "fake-model", "messages": MESSAGES, "stream": True},
        headers={"Authorization": f"Bearer {API_KEY}"},
    )
    assert response.headers["content-type"].startswith("text/event-stream")
    events = parse_sse(response.text)
    assert events[-1] == (None, "[DONE]")
    assert all(name is None for name, _ in events)  # OpenAI streams unnamed events


def test_text_completions(client: openai.OpenAI) -> None:
    completion = client.completions.create(model="fake-model", prompt="Once upon a time")
    assert completion.object == "text_completion"
    assert completion.choices[0].text
    streamed = client.completions.create(model="fake-model", prompt="Once upon a time", stream=True)
    text = "".join(chunk.choices[0].text for chunk in streamed if chunk.choices)
    assert text == completion.choices[0].text


@pytest.mark.anyio
async def test_async_client_streams(base_url: str) -> None:
    client = openai.AsyncOpenAI(base_url=f"{base_url}/v1", api_key=API_KEY, max_retries=0)
    async with client:
        stream = await client.chat.completions.create(
            model="fake-model", messages=MESSAGES, stream=True
        )
        pieces = [chunk.choices[0].delta.content or "" async for chunk in stream if chunk.choices]
        whole = await client.chat.completions.create(model="fake-model", messages=MESSAGES)
    assert "".join(pieces)
    assert whole.choices[0].message.content


def test_bad_request(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="fake-model", messages=MESSAGES, temperature=5)
    assert caught.value.param == "temperature"
{%- if cookiecutter.auth != "none" %}


def test_authentication_error(base_url: str) -> None:
    with (
        openai.OpenAI(base_url=f"{base_url}/v1", api_key="sk-wrong", max_retries=0) as client,
        pytest.raises(openai.AuthenticationError),
    ):
        client.models.list()
{%- endif %}


def test_unknown_model_is_not_found(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model="gpt-nope", messages=MESSAGES)
    assert caught.value.code == "model_not_found"


def test_rate_limit_honours_retry_after(upstream: Upstream, upstream_url: str) -> None:
    upstream.then(*[Behaviour(status=429, retry_after="1")] * 2)
    settings = upstream_settings(upstream_url, llm_max_retries=0)
    with (
        serve(create_app(settings)) as url,
        openai.OpenAI(base_url=f"{url}/v1", api_key=API_KEY, max_retries=1) as client,
    ):
        start = time.monotonic()
        with pytest.raises(openai.RateLimitError):
            client.chat.completions.create(model="upstream-model", messages=MESSAGES)
        elapsed = time.monotonic() - start
    assert len(upstream.requests) == 2  # the SDK retried once, after Retry-After
    assert elapsed >= 1.0


def test_server_error(upstream: Upstream, upstream_url: str) -> None:
    upstream.then(Behaviour(status=500))
    settings = upstream_settings(upstream_url, llm_max_retries=0)
    with (
        serve(create_app(settings)) as url,
        openai.OpenAI(base_url=f"{url}/v1", api_key=API_KEY, max_retries=0) as client,
        pytest.raises(openai.InternalServerError) as caught,
    ):
        client.chat.completions.create(model="upstream-model", messages=MESSAGES)
    assert caught.value.status_code == 502
