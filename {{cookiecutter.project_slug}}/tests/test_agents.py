"""The OpenAI Agents SDK (`openai-agents`) running an agent with one function tool against
the served app, through its Responses and its Chat Completions model classes.

Tracing is off and every model is given its client, so the SDK never leaves loopback.
The fake model calls a tool that the prompt names, then answers in text.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from agents import (
    Agent,
    FunctionTool,
    Model,
    OpenAIChatCompletionsModel,
    OpenAIResponsesModel,
    Runner,
    function_tool,
    set_tracing_disabled,
)
from agents.items import ToolCallItem, ToolCallOutputItem
from openai import AsyncOpenAI

from {{ cookiecutter.project_slug }}.main import create_app

from .conftest import API_KEY, make_settings, upstream_settings
from .servers import serve
from .upstream import Behaviour, Upstream

set_tracing_disabled(True)
PROMPT = "Call get_weather for Paris, then tell me what to wear."
MODEL_CLASSES: dict[str, Callable[[str, AsyncOpenAI], Model]] = {
    "responses": lambda name, client: OpenAIResponsesModel(model=name, openai_client=client),
    "chat": lambda name, client: OpenAIChatCompletionsModel(model=name, openai_client=client),
}


def weather_agent(model: Model, calls: list[str]) -> Agent[Any]:
    @function_tool
    def get_weather(city: str) -> str:
        """The weather in a city."""
        calls.append(city)
        return f"Sunny and 24 degrees in {city}."

    return Agent(
        name="weather",
        instructions="Use the tools, then answer.",
        tools=[get_weather],
        model=model,
    )


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    with serve(create_app(make_settings())) as url:
        yield url


@pytest.mark.anyio
@pytest.mark.parametrize("kind", list(MODEL_CLASSES))
async def test_agent_calls_its_tool_and_answers(base_url: str, kind: str) -> None:
    calls: list[str] = []
    async with AsyncOpenAI(base_url=f"{base_url}/v1", api_key=API_KEY, max_retries=0) as client:
        agent = weather_agent(MODEL_CLASSES[kind]("fake-model", client), calls)
        result = await Runner.run(agent, PROMPT)
    assert len(calls) == 1  # the tool ran once, with the argument its schema asks for
    assert isinstance(calls[0], str)
    assert calls[0]
    kinds = [type(item) for item in result.new_items]
    assert kinds.index(ToolCallItem) < kinds.index(ToolCallOutputItem)
    assert isinstance(result.final_output, str)
    assert result.final_output


@pytest.mark.anyio
async def test_streamed_agent_run_with_the_responses_model(base_url: str) -> None:
    calls: list[str] = []
    async with AsyncOpenAI(base_url=f"{base_url}/v1", api_key=API_KEY, max_retries=0) as client:
        agent = weather_agent(MODEL_CLASSES["responses"]("fake-model", client), calls)
        result = Runner.run_streamed(agent, PROMPT)
        kinds = {event.type async for event in result.stream_events()}
    assert {"raw_response_event", "run_item_stream_event"} <= kinds
    assert len(calls) == 1
    assert isinstance(result.final_output, str)
    assert result.final_output


@pytest.mark.anyio
@pytest.mark.parametrize("kind", list(MODEL_CLASSES))
async def test_agent_through_an_upstream(upstream: Upstream, upstream_url: str, kind: str) -> None:
    """The same run through the OpenAI-compatible provider: the upstream sees the agent's
    tool and the tool messages exactly as the SDK sent them."""
    call = {"id": "call_up_7", "name": "get_weather", "arguments": '{"city": "Paris"}'}
    upstream.then(Behaviour(tool_calls=(call,)))
    calls: list[str] = []
    with serve(create_app(upstream_settings(upstream_url))) as url:
        async with AsyncOpenAI(base_url=f"{url}/v1", api_key=API_KEY, max_retries=0) as client:
            agent = weather_agent(MODEL_CLASSES[kind]("upstream-model", client), calls)
            result = await Runner.run(agent, PROMPT)
    assert calls == ["Paris"]
    assert result.final_output == "w0 w1 w2 w3 w4"
    first, second = upstream.requests
    [sent] = agent.tools
    assert isinstance(sent, FunctionTool)
    assert first["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "The weather in a city.",
                "parameters": sent.params_json_schema,
                "strict": sent.strict_json_schema,
            },
        }
    ]
    assert second["tools"] == first["tools"]
    assistant, answer = second["messages"][-2:]
    assert assistant["role"] == "assistant"
    assert [
        (c["id"], c["function"]["name"], json.loads(c["function"]["arguments"]))
        for c in assistant["tool_calls"]
    ] == [("call_up_7", "get_weather", {"city": "Paris"})]
    assert answer == {
        "role": "tool",
        "content": "Sunny and 24 degrees in Paris.",
        "tool_call_id": "call_up_7",
    }
