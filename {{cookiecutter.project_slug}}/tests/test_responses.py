"""The Responses API (`/v1/responses`) with the official `openai` SDK against the served app.

Every non-streamed response is validated with the SDK's own `Response` type. The proxy
tests run the same function-tool conversation through the OpenAI-compatible provider
against the scriptable upstream, which must see the tools and messages as they were sent.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
{%- if cookiecutter.auth == "none" %}
import httpx2
{%- endif %}
import openai
import pytest
from fastapi.testclient import TestClient
from openai.types.responses import FunctionToolParam, Response, ResponseFunctionToolCall
from pydantic import BaseModel

from {{ cookiecutter.project_slug }}.main import create_app
from {{ cookiecutter.project_slug }}.settings import Settings

from .conftest import (
    API_KEY,
{%- if cookiecutter.auth != "none" %}
    callers,
{%- endif %}
    make_settings,
    parse_sse,
    upstream_settings,
)
from .servers import serve
from .upstream import Behaviour, Upstream
{% if cookiecutter.auth != "none" %}
ADMIT_OTHER, (OTHER,) = callers(1)  # a second caller, with a credential of its own
{%- else %}
ADMIT_OTHER: dict[str, Any] = {}  # without authentication another caller is another address
{%- endif %}
WEATHER: FunctionToolParam = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    },
    "strict": True,
}


def checked(response: Response) -> Response:
    """The response, after checking that the SDK's own type accepts it as served."""
    return Response.model_validate(response.model_dump(mode="json", by_alias=True))


def the_call(response: Response) -> ResponseFunctionToolCall:
    calls = [item for item in response.output if item.type == "function_call"]
    assert len(calls) == 1, response.output
    call = calls[0]
    assert isinstance(call, ResponseFunctionToolCall)
    return call


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    settings = make_settings(**ADMIT_OTHER)
    with serve(create_app(settings)) as url:
        yield url


@pytest.fixture
def client(base_url: str) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{base_url}/v1", api_key=API_KEY, max_retries=0) as client:
        yield client


def test_create_with_a_string_and_instructions(client: openai.OpenAI) -> None:
    response = checked(
        client.responses.create(
            model="fake-model",
            instructions="Answer in one sentence.",
            input="What is an ASGI server?",
            max_output_tokens=64,
            metadata={"ticket": "42"},
        )
    )
    assert response.id.startswith("resp_")
    assert response.object == "response"
    assert response.status == "completed"
    assert response.instructions == "Answer in one sentence."
    assert response.metadata == {"ticket": "42"}
    assert response.output_text
    [message] = response.output
    assert message.type == "message"
    assert message.role == "assistant"
    assert response.usage is not None
    assert response.usage.total_tokens == (
        response.usage.input_tokens + response.usage.output_tokens
    )
    assert response.usage.input_tokens_details.cached_tokens == 0
    assert response.usage.output_tokens_details.reasoning_tokens == 0


def test_create_with_items(client: openai.OpenAI) -> None:
    response = checked(
        client.responses.create(
            model="fake-model",
            input=[
                {"role": "developer", "content": "Be brief."},
                {"role": "user", "content": [{"type": "input_text", "text": "Name a colour."}]},
                {"type": "message", "role": "assistant", "content": "Blue."},
                {"role": "user", "content": "Another one?"},
            ],
            temperature=0,
        )
    )
    assert response.status == "completed"
    assert response.temperature == 0
    assert response.output_text


def test_output_cut_by_max_output_tokens_is_incomplete(client: openai.OpenAI) -> None:
    response = checked(
        client.responses.create(
            model="fake-model", input="Tell me a long story", max_output_tokens=2
        )
    )
    assert response.status == "incomplete"
    assert response.incomplete_details is not None
    assert response.incomplete_details.reason == "max_output_tokens"


def test_function_tool_round_trip(client: openai.OpenAI) -> None:
    first = checked(
        client.responses.create(
            model="fake-model", input="Call get_weather for Paris.", tools=[WEATHER]
        )
    )
    call = the_call(first)
    assert call.name == "get_weather"
    assert set(json.loads(call.arguments)) == {"city"}
    assert first.tools[0].type == "function"
    assert first.tools[0].name == "get_weather"

    second = checked(
        client.responses.create(
            model="fake-model",
            previous_response_id=first.id,
            input=[{"type": "function_call_output", "call_id": call.call_id, "output": "Sunny."}],
            tools=[WEATHER],
        )
    )
    assert second.previous_response_id == first.id
    assert [item.type for item in second.output] == ["message"]
    assert second.output_text


def test_the_whole_conversation_can_be_sent_instead_of_chained(client: openai.OpenAI) -> None:
    first = client.responses.create(
        model="fake-model", input="Call get_weather for Oslo.", tools=[WEATHER], store=False
    )
    call = the_call(first)
    conversation: list[Any] = [
        {"role": "user", "content": "Call get_weather for Oslo."},
        *[item.model_dump(exclude_none=True) for item in first.output],
        {"type": "function_call_output", "call_id": call.call_id, "output": "Rain."},
    ]
    second = checked(
        client.responses.create(model="fake-model", input=conversation, tools=[WEATHER])
    )
    assert second.output_text


def test_stream_with_the_sdk_helper(client: openai.OpenAI) -> None:
    with client.responses.stream(
        model="fake-model", input="Call get_weather for Rome.", tools=[WEATHER]
    ) as stream:
        events = list(stream)
        final = stream.get_final_response()
    kinds = [event.type for event in events]
    assert kinds[:3] == ["response.created", "response.in_progress", "response.output_item.added"]
    assert "response.function_call_arguments.delta" in kinds
    assert kinds[-3:] == [
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    numbers = [event.sequence_number for event in events]
    assert numbers == list(range(len(events)))
    call = the_call(final)
    deltas = [e.delta for e in events if e.type == "response.function_call_arguments.delta"]
    assert "".join(deltas) == call.arguments

    # Stored before `response.completed` went out: it can be continued at once.
    after = checked(
        client.responses.create(
            model="fake-model",
            previous_response_id=final.id,
            input=[{"type": "function_call_output", "call_id": call.call_id, "output": "Hot."}],
            tools=[WEATHER],
        )
    )
    assert after.output_text
    assert checked(client.responses.retrieve(final.id)).output[0].type == "function_call"


def test_streamed_text_events_in_order(client: openai.OpenAI) -> None:
    with client.responses.stream(model="fake-model", input="Say hello", temperature=0) as stream:
        events = list(stream)
        final = stream.get_final_response()
    kinds = [event.type for event in events]
    deltas = kinds.count("response.output_text.delta")
    assert deltas > 0
    assert kinds == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        *["response.output_text.delta"] * deltas,
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [event.sequence_number for event in events] == list(range(len(events)))
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert final.output_text == text
    whole = client.responses.create(model="fake-model", input="Say hello", temperature=0)
    assert whole.output_text == text


def test_raw_stream_names_each_event(base_url: str) -> None:
    response = httpx.post(
        f"{base_url}/v1/responses",
        json={"model": "fake-model", "input": "hi", "stream": True},
        headers={"Authorization": f"Bearer {API_KEY}"},
    )
    assert response.headers["content-type"].startswith("text/event-stream")
    events = [(name, json.loads(data)) for name, data in parse_sse(response.text)]
    assert all(name == data["type"] for name, data in events)
    assert events[-1][0] == "response.completed"  # and no [DONE]: OpenAI sends none here


class Weather(BaseModel):
    city: str
    celsius: float
    summary: str


def test_structured_output_with_parse(client: openai.OpenAI) -> None:
    parsed = client.responses.parse(
        model="fake-model", input="Describe the weather in Lima.", text_format=Weather
    )
    assert isinstance(parsed.output_parsed, Weather)
    assert parsed.text is not None
    assert parsed.text.format is not None
    assert parsed.text.format.type == "json_schema"
    checked(client.responses.retrieve(parsed.id))


def test_get_and_delete(client: openai.OpenAI) -> None:
    created = client.responses.create(model="fake-model", input="Remember me")
    fetched = checked(client.responses.retrieve(created.id))
    assert fetched.model_dump() == created.model_dump()
    client.responses.delete(created.id)
    with pytest.raises(openai.NotFoundError) as caught:
        client.responses.retrieve(created.id)
    assert caught.value.code == "response_not_found"
    with pytest.raises(openai.NotFoundError):
        client.responses.delete(created.id)


def test_another_principals_response_is_not_found(client: openai.OpenAI, base_url: str) -> None:
    mine = client.responses.create(model="fake-model", input="Mine")
{%- if cookiecutter.auth != "none" %}
    other = openai.OpenAI(
        base_url=f"{base_url}/v1",
        api_key=OTHER.headers["Authorization"].removeprefix("Bearer "),
        max_retries=0,
    )
{%- else %}
    # The SDK's own HTTP client, sending from another address.
    elsewhere = openai.DefaultHttpxClient(transport=httpx2.HTTPTransport(local_address="127.0.0.2"))
    other = openai.OpenAI(
        base_url=f"{base_url}/v1", api_key=API_KEY, max_retries=0, http_client=elsewhere
    )
{%- endif %}
    with pytest.raises(openai.NotFoundError):
        other.responses.retrieve(mine.id)
    with pytest.raises(openai.NotFoundError):
        other.responses.delete(mine.id)
    with pytest.raises(openai.NotFoundError) as caught:
        other.responses.create(model="fake-model", input="Go on", previous_response_id=mine.id)
    assert caught.value.param == "previous_response_id"
    assert client.responses.retrieve(mine.id).id == mine.id
    other.close()


def test_store_false_is_not_kept(client: openai.OpenAI) -> None:
    unstored = checked(client.responses.create(model="fake-model", input="Forget", store=False))
    assert unstored.output_text
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(unstored.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.create(model="fake-model", input="Again", previous_response_id=unstored.id)


def test_a_chain_is_rebuilt_through_every_previous_response(client: openai.OpenAI) -> None:
    first = client.responses.create(model="fake-model", input="One")
    second = client.responses.create(model="fake-model", input="Two", previous_response_id=first.id)
    third = client.responses.create(
        model="fake-model", input="Three", previous_response_id=second.id
    )
    assert third.usage is not None
    assert second.usage is not None
    assert third.usage.input_tokens > second.usage.input_tokens  # it saw the whole chain
    client.responses.delete(first.id)
    with pytest.raises(openai.NotFoundError):  # a link of the chain is gone
        client.responses.create(model="fake-model", input="Four", previous_response_id=third.id)


def test_a_conversation_past_the_size_bound_is_refused() -> None:
    with TestClient(create_app(make_settings(responses_max_context_bytes=2048))) as http:
        headers = {"Authorization": f"Bearer {API_KEY}"}
        previous = None
        for _ in range(20):
            body = {"model": "fake-model", "input": "x" * 300, "previous_response_id": previous}
            answer = http.post("/v1/responses", json=body, headers=headers)
            if answer.status_code != 200:
                break
            previous = answer.json()["id"]
        assert answer.status_code == 400
        assert answer.json()["error"]["code"] == "context_too_long"
        assert answer.json()["error"]["param"] == "previous_response_id"


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"tools": [{"type": "web_search"}]}, "tools[0].type"),
        ({"input": [{"type": "reasoning", "id": "rs_1", "summary": []}]}, "input[0].type"),
        (
            {"input": [{"role": "user", "content": [{"type": "input_file"}]}]},
            "input[0].content[0].type",
        ),
        ({"conversation": "conv_1"}, "conversation"),
        ({"truncation": "auto"}, "truncation"),
        ({"include": ["file_search_call.results"]}, "include[0]"),
        ({"background": True, "store": False}, "store"),
    ],
)
def test_what_cannot_be_honoured_is_refused_by_name(
    client: openai.OpenAI, extra: dict[str, Any], param: str
) -> None:
    body: dict[str, Any] = {"input": "hi", **extra}
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="fake-model", extra_body=body)
    assert caught.value.code == "unsupported_parameter"
    assert caught.value.param == param


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"input": [{"type": "message", "content": "hi"}]}, "input[0].role"),
        (
            {"input": [{"role": "user", "content": [{"type": "input_text"}]}]},
            "input[0].content[0].text",
        ),
        ({"input": [{"type": "function_call_output", "output": "x"}]}, "input[0].call_id"),
        ({"input": 5}, "input"),
        ({"input": "hi", "tool_choice": "maybe"}, "tool_choice"),
        ({"input": "hi", "text": {"format": {"type": "json_schema"}}}, "text.format"),
    ],
)
def test_invalid_values_name_their_field(
    client: openai.OpenAI, extra: dict[str, Any], param: str
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="fake-model", extra_body=extra)
    assert caught.value.code == "invalid_value"
    assert caught.value.param == param


def test_unknown_model_is_not_found(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client.responses.create(model="gpt-nope", input="hi")
    assert caught.value.code == "model_not_found"


def wait_for(client: openai.OpenAI, response_id: str, statuses: set[str]) -> Response:
    deadline = time.monotonic() + 10
    while True:
        response = client.responses.retrieve(response_id)
        if response.status in statuses or time.monotonic() > deadline:
            return checked(response)
        time.sleep(0.05)


def test_background_response_is_polled_to_completion(client: openai.OpenAI) -> None:
    queued = checked(client.responses.create(model="fake-model", input="Later", background=True))
    assert queued.status in {"queued", "in_progress"}
    assert queued.background is True
    done = wait_for(client, queued.id, {"completed"})
    assert done.status == "completed"
    assert done.output_text
    # Cancelling a finished background response returns it as it is.
    assert client.responses.cancel(queued.id).status == "completed"


def test_background_response_can_be_cancelled() -> None:
    settings = make_settings(fake_llm_token_latency_ms=200)  # a minute-long answer
    with (
        serve(create_app(settings)) as url,
        openai.OpenAI(base_url=f"{url}/v1", api_key=API_KEY, max_retries=0) as client,
    ):
        queued = client.responses.create(model="fake-model", input="Slowly", background=True)
        assert wait_for(client, queued.id, {"in_progress"}).status == "in_progress"
        cancelled = checked(client.responses.cancel(queued.id))
        assert cancelled.status == "cancelled"
        time.sleep(0.3)  # the run stops, and must not overwrite the cancel
        assert checked(client.responses.retrieve(queued.id)).status == "cancelled"
        assert client.responses.cancel(queued.id).status == "cancelled"  # idempotent


def test_only_background_responses_can_be_cancelled(client: openai.OpenAI) -> None:
    response = client.responses.create(model="fake-model", input="Now")
    with pytest.raises(openai.BadRequestError):
        client.responses.cancel(response.id)


def test_background_responses_beyond_the_bound_are_refused() -> None:
    settings = make_settings(fake_llm_token_latency_ms=200, responses_max_background=1)
    with TestClient(create_app(settings)) as http:
        headers = {"Authorization": f"Bearer {API_KEY}"}
        body = {"model": "fake-model", "input": "Slowly", "background": True}
        assert http.post("/v1/responses", json=body, headers=headers).status_code == 200
        refused = http.post("/v1/responses", json=body, headers=headers)
    assert refused.status_code == 503
    assert refused.json()["error"]["code"] == "background_full"
    assert refused.headers["Retry-After"] == "5"


def test_shutdown_marks_running_background_responses_failed() -> None:
    settings = make_settings(fake_llm_token_latency_ms=200)
    headers = {"Authorization": f"Bearer {API_KEY}"}
    with TestClient(create_app(settings)) as http:
        body = {"model": "fake-model", "input": "Slowly", "background": True}
        response_id = http.post("/v1/responses", json=body, headers=headers).json()["id"]

        def status() -> str:
            return str(http.get(f"/v1/responses/{response_id}", headers=headers).json()["status"])

        deadline = time.monotonic() + 10
        while status() == "queued" and time.monotonic() < deadline:
            time.sleep(0.05)  # the run has not started yet
        assert status() == "in_progress"  # running: its first tokens are on their way
        store = http.app_state["services"].response_store
    if store.shared:  # a process started later reads what this one recorded
        with TestClient(create_app(settings)) as http:
            stopped = http.get(f"/v1/responses/{response_id}", headers=headers).json()
    else:
        record = asyncio.run(store.get(response_id))
        stopped = record.response
    assert stopped["status"] == "failed"
    assert "stopped" in stopped["error"]["message"]


def shares_its_store(settings: Settings) -> bool:
    with TestClient(create_app(settings)) as http:
        return bool(http.app_state["services"].response_store.shared)


def test_every_process_sees_a_shared_store() -> None:
    """Two app processes on one store: a response made by one is read, continued and
    cancelled through the other. The in-memory store is each process's own."""
    settings = make_settings(fake_llm_token_latency_ms=200)
    shared = shares_its_store(settings)
    with (
        serve(create_app(settings)) as first_url,
        serve(create_app(settings)) as second_url,
        openai.OpenAI(base_url=f"{first_url}/v1", api_key=API_KEY, max_retries=0) as first,
        openai.OpenAI(base_url=f"{second_url}/v1", api_key=API_KEY, max_retries=0) as second,
    ):
        made = first.responses.create(model="fake-model", input="Hi", max_output_tokens=2)
        if not shared:
            with pytest.raises(openai.NotFoundError):
                second.responses.retrieve(made.id)
            return
        assert second.responses.retrieve(made.id).id == made.id
        assert second.responses.create(
            model="fake-model", input="More", previous_response_id=made.id, max_output_tokens=2
        )
        running = first.responses.create(model="fake-model", input="Slowly", background=True)
        assert wait_for(first, running.id, {"in_progress"}).status == "in_progress"
        assert second.responses.cancel(running.id).status == "cancelled"
        time.sleep(1.5)  # the first process polls its store and stops the run
        assert first.responses.retrieve(running.id).status == "cancelled"


def test_stream_failure_after_the_first_event_is_a_failed_event() -> None:
    with TestClient(create_app(make_settings(fake_llm_fail_after_tokens=3))) as http:
        answer = http.post(
            "/v1/responses",
            json={"model": "fake-model", "input": "hello", "stream": True},
            headers={"Authorization": f"Bearer {API_KEY}"},
        )
    events = [json.loads(data) for _, data in parse_sse(answer.text)]
    assert answer.status_code == 200
    assert events[0]["type"] == "response.created"
    assert events[-1]["type"] == "response.failed"
    failed = Response.model_validate(events[-1]["response"])
    assert failed.status == "failed"
    assert failed.error is not None
    assert failed.error.code == "server_error"
    assert [e["sequence_number"] for e in events] == list(range(len(events)))


def test_stream_failure_before_the_first_event_is_an_http_error() -> None:
    with TestClient(create_app(make_settings(fake_llm_failure_rate=1))) as http:
        answer = http.post(
            "/v1/responses",
            json={"model": "fake-model", "input": "hello", "stream": True},
            headers={"Authorization": f"Bearer {API_KEY}"},
        )
    assert answer.status_code == 502
    assert answer.json()["error"]["code"] == "upstream_unavailable"


# -- the same conversation through the OpenAI-compatible provider ----------------------
UPSTREAM_CALL = {"id": "call_up_1", "name": "get_weather", "arguments": '{"city": "Paris"}'}
UPSTREAM_TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "The weather in a city.",
            "parameters": WEATHER["parameters"],
            "strict": True,
        },
    }
]


def expected_messages(output: str) -> list[dict[str, Any]]:
    """The chat messages the upstream must see on the second turn."""
    return [
        {"role": "system", "content": "Use the tools."},
        {"role": "user", "content": "Call get_weather for Paris."},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_up_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "content": output, "tool_call_id": "call_up_1"},
    ]


@pytest.mark.parametrize("streamed", [False, True], ids=["create", "stream"])
def test_function_tool_round_trip_through_an_upstream(
    upstream: Upstream, upstream_url: str, streamed: bool
) -> None:
    upstream.then(Behaviour(tool_calls=(UPSTREAM_CALL,)))
    with (
        serve(create_app(upstream_settings(upstream_url))) as url,
        openai.OpenAI(base_url=f"{url}/v1", api_key=API_KEY, max_retries=0) as client,
    ):
        asked: dict[str, Any] = {
            "model": "upstream-model",
            "instructions": "Use the tools.",
            "input": "Call get_weather for Paris.",
            "tools": [WEATHER],
        }
        first: Response
        if streamed:
            with client.responses.stream(**asked) as stream:
                first = stream.get_final_response()
        else:
            first = checked(client.responses.create(**asked))
        call = the_call(first)
        assert (call.call_id, call.name, call.arguments) == (
            "call_up_1",
            "get_weather",
            '{"city": "Paris"}',
        )
        second = checked(
            client.responses.create(
                model="upstream-model",
                instructions="Use the tools.",
                previous_response_id=first.id,
                input=[{"type": "function_call_output", "call_id": "call_up_1", "output": "Sunny"}],
                tools=[WEATHER],
            )
        )
    assert second.output_text == "w0 w1 w2 w3 w4"
    assert [request["tools"] for request in upstream.requests] == [UPSTREAM_TOOLS] * 2
    assert upstream.requests[0]["messages"] == expected_messages("Sunny")[:2]
    assert upstream.requests[1]["messages"] == expected_messages("Sunny")
    assert upstream.requests[0]["stream"] is streamed
