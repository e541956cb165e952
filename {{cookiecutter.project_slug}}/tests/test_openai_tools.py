"""Agent-facing parts of `/v1` with the clients people use: tool calls, structured outputs,
several choices, strict validation, models, embeddings, several configured models.

The fake model plays the whole loop offline; the proxy tests send the same
conversations through the OpenAI-compatible provider to the scriptable upstream, which
must see them exactly as sent.
"""

from __future__ import annotations

import base64
import json
import math
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from langchain_core.messages import HumanMessage, ToolMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from openai.types.chat import (
    ChatCompletion,
    ChatCompletionMessage,
    ChatCompletionMessageFunctionToolCall,
    ChatCompletionMessageParam,
    ChatCompletionNamedToolChoiceParam,
    ChatCompletionToolParam,
)
from pydantic import BaseModel

from {{ cookiecutter.project_slug }}.llm.tokens import count_tokens
from {{ cookiecutter.project_slug }}.main import create_app

from .conftest import API_KEY, AUTH, make_settings, upstream_settings
from .servers import serve
from .upstream import Behaviour, Upstream

WEATHER: ChatCompletionToolParam = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                "days": {"type": "integer", "minimum": 1, "maximum": 7},
            },
            "required": ["city", "unit"],
            "additionalProperties": False,
        },
    },
}
ASK: list[ChatCompletionMessageParam] = [
    {"role": "user", "content": "Use get_weather to tell me the weather in Paris."}
]


class Forecast(BaseModel):
    city: str
    temperature_c: float
    sunny: bool
    hours: list[int]


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    with serve(create_app(make_settings())) as url:
        yield url


@pytest.fixture
def client(base_url: str) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{base_url}/v1", api_key=API_KEY, max_retries=0) as client:
        yield client


def function_calls(message: ChatCompletionMessage) -> list[ChatCompletionMessageFunctionToolCall]:
    calls = message.tool_calls or []
    assert all(isinstance(call, ChatCompletionMessageFunctionToolCall) for call in calls)
    return [call for call in calls if isinstance(call, ChatCompletionMessageFunctionToolCall)]


def check_weather_arguments(arguments: str) -> dict[str, Any]:
    values: dict[str, Any] = json.loads(arguments)
    assert isinstance(values["city"], str)
    assert values["unit"] in {"celsius", "fahrenheit"}
    assert set(values) <= {"city", "unit", "days"}
    if "days" in values:
        assert 1 <= values["days"] <= 7
    return values


# -- tools -------------------------------------------------------------------------------
def test_a_tool_call_its_result_and_the_answer(client: openai.OpenAI) -> None:
    first = client.chat.completions.create(model="fake-model", messages=ASK, tools=[WEATHER])
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    (call,) = function_calls(choice.message)
    assert call.type == "function"
    assert call.function.name == "get_weather"
    check_weather_arguments(call.function.arguments)

    messages: list[ChatCompletionMessageParam] = [
        *ASK,
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": call.function.arguments},
                }
            ],
        },
        {"role": "tool", "tool_call_id": call.id, "content": '{"temperature": 21}'},
    ]
    final = client.chat.completions.create(model="fake-model", messages=messages, tools=[WEATHER])
    assert final.choices[0].finish_reason == "stop"
    assert final.choices[0].message.content
    assert final.choices[0].message.tool_calls is None


def test_tool_choice_none_forced_and_required(client: openai.OpenAI) -> None:
    plain: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Hello there."}]
    none = client.chat.completions.create(
        model="fake-model", messages=ASK, tools=[WEATHER], tool_choice="none"
    )
    assert none.choices[0].message.tool_calls is None
    forced = client.chat.completions.create(
        model="fake-model",
        messages=plain,
        tools=[WEATHER],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
    )
    assert forced.choices[0].message.tool_calls is not None
    required = client.chat.completions.create(
        model="fake-model", messages=plain, tools=[WEATHER], tool_choice="required"
    )
    assert required.choices[0].finish_reason == "tool_calls"
    unknown: ChatCompletionNamedToolChoiceParam = {
        "type": "function",
        "function": {"name": "nope"},
    }
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model="fake-model",
            messages=plain,
            tools=[WEATHER],
            tool_choice=unknown,
        )
    assert caught.value.code == "unsupported_parameter"
    assert caught.value.param == "tool_choice"


def test_streamed_tool_calls_come_as_openai_streams_them(client: openai.OpenAI) -> None:
    whole = client.chat.completions.create(model="fake-model", messages=ASK, tools=[WEATHER])
    (expected,) = function_calls(whole.choices[0].message)
    chunks = list(
        client.chat.completions.create(
            model="fake-model", messages=ASK, tools=[WEATHER], stream=True
        )
    )
    deltas = [
        delta
        for chunk in chunks
        for choice in chunk.choices
        for delta in choice.delta.tool_calls or []
    ]
    first, rest = deltas[0], deltas[1:]
    assert first.index == 0
    assert first.id == expected.id
    assert first.type == "function"
    assert first.function is not None
    assert first.function.name == "get_weather"
    assert rest
    assert all(d.id is None and d.function and d.function.name is None for d in rest)
    arguments = "".join(d.function.arguments or "" for d in deltas if d.function)
    assert arguments == expected.function.arguments
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices[0].finish_reason]
    assert finishes == ["tool_calls"]


def test_parallel_calls_of_every_named_tool(client: openai.OpenAI) -> None:
    clock: ChatCompletionToolParam = {
        "type": "function",
        "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}},
    }
    messages: list[ChatCompletionMessageParam] = [
        {"role": "user", "content": "Call get_weather and get_time for Rome."}
    ]
    both = client.chat.completions.create(
        model="fake-model", messages=messages, tools=[WEATHER, clock]
    )
    calls = function_calls(both.choices[0].message)
    assert [call.function.name for call in calls] == ["get_weather", "get_time"]
    assert len({call.id for call in calls}) == 2
    one = client.chat.completions.create(
        model="fake-model", messages=messages, tools=[WEATHER, clock], parallel_tool_calls=False
    )
    assert len(one.choices[0].message.tool_calls or []) == 1


# -- structured outputs ------------------------------------------------------------------
def test_parse_with_a_pydantic_model(client: openai.OpenAI) -> None:
    completion = client.chat.completions.parse(
        model="fake-model",
        messages=[{"role": "user", "content": "Forecast for Oslo, please."}],
        response_format=Forecast,
    )
    parsed = completion.choices[0].message.parsed
    assert isinstance(parsed, Forecast)
    assert parsed.hours


def test_json_object_mode_writes_json(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="fake-model",
        messages=[{"role": "user", "content": "Reply in JSON."}],
        response_format={"type": "json_object"},
        max_tokens=5,  # JSON is never cut mid-document
    )
    assert isinstance(json.loads(completion.choices[0].message.content or ""), dict)


# -- sampling parameters -----------------------------------------------------------------
def test_several_choices_whole_and_streamed(client: openai.OpenAI) -> None:
    messages: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Two takes."}]
    whole = client.chat.completions.create(model="fake-model", messages=messages, n=2, seed=7)
    assert [choice.index for choice in whole.choices] == [0, 1]
    assert whole.choices[0].message.content != whole.choices[1].message.content
    streamed = client.chat.completions.create(
        model="fake-model", messages=messages, n=2, seed=7, stream=True
    )
    texts = {0: "", 1: ""}
    for chunk in streamed:
        for choice in chunk.choices:
            texts[choice.index] += choice.delta.content or ""
    assert texts == {c.index: c.message.content for c in whole.choices}


def test_seed_and_stop_are_honoured(client: openai.OpenAI) -> None:
    messages: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Say something."}]

    def text(**params: Any) -> str:
        completion = client.chat.completions.create(
            model="fake-model", messages=messages, max_tokens=40, **params
        )
        return completion.choices[0].message.content or ""

    assert text(seed=1) == text(seed=1)
    assert text(seed=1) != text(seed=2)
    full = text(seed=3)
    stop = full.split()[3]
    cut = client.chat.completions.create(
        model="fake-model", messages=messages, max_tokens=40, seed=3, stop=[stop]
    )
    assert cut.choices[0].message.content == full[: full.index(stop)]
    assert cut.choices[0].finish_reason == "stop"


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"logprobs": True}, "logprobs"),
        ({"presence_penalty": 0.5}, "presence_penalty"),
        ({"logit_bias": {"50256": -100}}, "logit_bias"),
        ({"reasoning_effort": "low"}, "reasoning_effort"),
        ({"extra_body": {"prediction": {"type": "content", "content": "x"}}}, "prediction"),
    ],
)
def test_what_the_model_cannot_honour_is_refused_by_name(
    client: openai.OpenAI, params: dict[str, Any], param: str
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="fake-model", messages=ASK, **params)
    assert caught.value.code == "unsupported_parameter"
    assert caught.value.param == param


def test_parameters_that_change_nothing_are_accepted(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="fake-model",
        messages=[
            {"role": "developer", "content": "Be brief."},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is in this picture?"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0K"}},
                ],
            },
        ],
        presence_penalty=0,
        user="end-user-1",
        metadata={"ticket": "42"},
        store=False,
        service_tier="auto",
        prompt_cache_key="tenant-42",
        extra_body={"prompt_cache_retention": "24h"},
    )
    assert completion.choices[0].message.content


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"max_tokens": "5"}, "max_tokens"),
        ({"temperature": "1"}, "temperature"),
        ({"n": True}, "n"),
        ({"temperature": 2.5}, "temperature"),
        ({"messages": [{"role": "tool", "content": "x"}]}, "messages[0].tool_call_id"),
        ({"messages": [{"role": "user", "content": [{"type": "input_audio"}]}]}, None),
    ],
)
def test_invalid_requests_are_400_naming_the_field(
    base_url: str, body: dict[str, Any], param: str | None
) -> None:
    payload = {"model": "fake-model", "messages": [{"role": "user", "content": "hi"}], **body}
    response = httpx.post(f"{base_url}/v1/chat/completions", json=payload, headers=AUTH)
    assert response.status_code == 400
    error = response.json()["error"]
    if param is not None:
        assert error["param"] == param
    else:
        assert error["param"].startswith("messages[0].content[0]")


# -- models ------------------------------------------------------------------------------
def test_a_model_by_id_and_an_unknown_one(client: openai.OpenAI) -> None:
    assert client.models.retrieve("fake-model").id == "fake-model"
    with pytest.raises(openai.NotFoundError) as caught:
        client.models.retrieve("gpt-nope")
    assert caught.value.code == "model_not_found"


def test_several_models_with_aliases(tmp_path: Path) -> None:
    models_file = tmp_path / "models.toml"
    models_file.write_text(
        '[[models]]\nname = "small"\naliases = ["s", "tiny"]\n\n'
        '[[models]]\nname = "large"\n\n'
        '[[models]]\nname = "vectors"\nkind = "embedding"\n',
        encoding="utf-8",
    )
    with (
        serve(create_app(make_settings(llm_models_file=str(models_file)))) as url,
        openai.OpenAI(base_url=f"{url}/v1", api_key=API_KEY, max_retries=0) as client,
    ):
        assert [model.id for model in client.models.list()] == ["small", "large", "vectors"]
        assert client.models.retrieve("tiny").id == "small"
        reply = client.chat.completions.create(model="s", messages=ASK)
        assert reply.choices[0].message.content
        native = httpx.post(
            f"{url}/api/v1/generate", json={"prompt": "hi", "model": "large"}, headers=AUTH
        )
        assert native.json()["model"] == "large"
        unknown = httpx.post(
            f"{url}/api/v1/generate", json={"prompt": "hi", "model": "fake-model"}, headers=AUTH
        )
        assert unknown.status_code == 404
        assert unknown.json()["error"]["code"] == "model_not_found"
        assert client.embeddings.create(model="vectors", input="x").data


# -- embeddings --------------------------------------------------------------------------
def test_embeddings_are_unit_vectors_same_text_same_vector(client: openai.OpenAI) -> None:
    result = client.embeddings.create(model="fake-embedding", input=["alpha", "beta", "alpha"])
    vectors = [item.embedding for item in result.data]
    assert [item.index for item in result.data] == [0, 1, 2]
    # The SDK asks for base64 (float32) by default: equal to 1 within float32 precision.
    assert all(math.isclose(math.fsum(x * x for x in v), 1.0, rel_tol=1e-5) for v in vectors)
    assert vectors[0] == vectors[2]
    assert vectors[0] != vectors[1]
    assert result.usage.prompt_tokens == sum(map(count_tokens, ["alpha", "beta", "alpha"]))
    short = client.embeddings.create(model="fake-embedding", input="alpha", dimensions=16)
    assert len(short.data[0].embedding) == 16


def test_embeddings_in_base64(base_url: str) -> None:
    body = {"model": "fake-embedding", "input": "alpha"}
    floats = httpx.post(f"{base_url}/v1/embeddings", json=body, headers=AUTH).json()
    packed = httpx.post(
        f"{base_url}/v1/embeddings", json={**body, "encoding_format": "base64"}, headers=AUTH
    ).json()
    raw = base64.b64decode(packed["data"][0]["embedding"])
    decoded = struct.unpack(f"<{len(raw) // 4}f", raw)
    expected = floats["data"][0]["embedding"]
    assert all(math.isclose(a, b, rel_tol=1e-6) for a, b in zip(decoded, expected, strict=True))


def test_embeddings_refuse_bad_input(base_url: str) -> None:
    for body, status in [
        ({"model": "fake-embedding", "input": ""}, 400),
        ({"model": "fake-embedding", "input": []}, 400),
        ({"model": "fake-model", "input": "x"}, 404),  # a chat model is no embedding model
    ]:
        response = httpx.post(f"{base_url}/v1/embeddings", json=body, headers=AUTH)
        assert response.status_code == status, response.text


# -- LangChain ---------------------------------------------------------------------------
@tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"Sunny in {city}"


def test_langchain_tool_round_trip_and_structured_output(base_url: str) -> None:
    llm = ChatOpenAI(model="fake-model", base_url=f"{base_url}/v1", api_key=API_KEY, max_retries=0)
    ask = HumanMessage("Please call get_weather for Lisbon.")
    with_tools = llm.bind_tools([get_weather])
    call_message = with_tools.invoke([ask])
    assert call_message.tool_calls[0]["name"] == "get_weather"
    result = get_weather.invoke(call_message.tool_calls[0])
    assert isinstance(result, ToolMessage)
    answer = with_tools.invoke([ask, call_message, result])
    assert answer.content
    assert not answer.tool_calls

    structured = llm.with_structured_output(Forecast).invoke("Forecast for Oslo.")
    assert isinstance(structured, Forecast)
    as_tool = llm.with_structured_output(Forecast, method="function_calling")
    assert isinstance(as_tool.invoke("Forecast for Oslo."), Forecast)


# -- through the OpenAI-compatible provider ----------------------------------------------
def test_the_upstream_sees_tools_and_tool_messages_exactly_as_sent(
    upstream: Upstream, upstream_url: str
) -> None:
    name, arguments = "get_weather", '{"city":"Paris","unit":"celsius"}'
    call = {"name": name, "arguments": arguments}
    upstream.then(Behaviour(tool_calls=[call]), Behaviour(tool_calls=[call]))
    conversation: list[ChatCompletionMessageParam] = [
        {"role": "system", "content": "Be brief."},
        *ASK,
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_a",
                    "type": "function",
                    "function": {"name": name, "arguments": arguments},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_a", "content": "21 degrees"},
    ]
    sent: dict[str, Any] = {
        "tools": [WEATHER],
        "tool_choice": "auto",
        "parallel_tool_calls": False,
        "seed": 5,
        "temperature": 0.2,
        "response_format": {"type": "json_object"},
        "user": "u-1",
        "metadata": {"k": "v"},
        "logprobs": True,
        "top_logprobs": 2,
        "presence_penalty": 0.5,
        "frequency_penalty": 0.1,
        "logit_bias": {"50256": -100},
        "reasoning_effort": "low",
        "store": True,
    }
    settings = upstream_settings(upstream_url, llm_model="upstream-model")
    with (
        serve(create_app(settings)) as url,
        openai.OpenAI(base_url=f"{url}/v1", api_key=API_KEY, max_retries=0) as client,
    ):
        whole = client.chat.completions.create(
            model="upstream-model", messages=conversation, max_completion_tokens=50, extra_body=sent
        )
        stream = client.chat.completions.create(
            model="upstream-model", messages=conversation, stream=True, tools=[WEATHER]
        )
        chunks = list(stream)
    seen = upstream.requests[0]
    assert seen["messages"] == conversation
    for key, value in sent.items():
        assert seen[key] == value, key
    assert seen["max_tokens"] == 50
    assert isinstance(whole, ChatCompletion)
    assert whole.system_fingerprint == "fp_upstream"
    assert whole.choices[0].finish_reason == "tool_calls"
    assert function_calls(whole.choices[0].message)[0].function.arguments == arguments
    streamed = "".join(
        delta.function.arguments or ""
        for chunk in chunks
        for choice in chunk.choices
        for delta in choice.delta.tool_calls or []
        if delta.function
    )
    assert streamed == arguments
    assert upstream.requests[1]["tools"] == [WEATHER]


def test_an_upstream_content_filter_finish_is_passed_on(
    upstream: Upstream, upstream_url: str
) -> None:
    upstream.then(Behaviour(finish_reason="content_filter"))
    settings = upstream_settings(upstream_url)
    with (
        serve(create_app(settings)) as url,
        openai.OpenAI(base_url=f"{url}/v1", api_key=API_KEY, max_retries=0) as client,
    ):
        completion = client.chat.completions.create(model="upstream-model", messages=ASK)
    assert completion.choices[0].finish_reason == "content_filter"


def test_embeddings_through_the_upstream(upstream: Upstream, upstream_url: str) -> None:
    settings = upstream_settings(upstream_url, llm_embedding_model="text-embedding-3-small")
    with (
        serve(create_app(settings)) as url,
        openai.OpenAI(base_url=f"{url}/v1", api_key=API_KEY, max_retries=0) as client,
    ):
        result = client.embeddings.create(
            model="text-embedding-3-small", input=["a", "b"], dimensions=3
        )
    assert [item.embedding for item in result.data] == [[1.0, 0.0, 0.0], [2.0, 0.0, 0.0]]
    assert upstream.requests[0] == {
        "model": "text-embedding-3-small",
        "input": ["a", "b"],
        "encoding_format": "float",
        "dimensions": 3,
    }
