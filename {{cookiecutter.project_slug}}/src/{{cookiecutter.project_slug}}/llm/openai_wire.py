"""The provider-neutral types as OpenAI's Chat Completions JSON, and back.

Used by the OpenAI-compatible provider to talk to its upstream. (What this service
answers its own clients is shaped in `schemas/openai.py`.)
"""

from __future__ import annotations

from typing import Any

from .base import (
    ChatMessage,
    Choice,
    Completion,
    CompletionChunk,
    EmbeddingRequest,
    FinishReason,
    GenerationRequest,
    ImagePart,
    NamedToolChoice,
    TokenLogprob,
    ToolCall,
    ToolCallDelta,
    TopLogprob,
    Usage,
)

FINISH_REASONS: dict[str, FinishReason] = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",  # the legacy name of the same thing
    "content_filter": "content_filter",
}


def finish_reason(value: Any) -> FinishReason:
    return FINISH_REASONS.get(str(value), "stop")


def message_json(message: ChatMessage) -> dict[str, Any]:
    data: dict[str, Any] = {"role": message.role}
    if isinstance(message.content, str):
        data["content"] = message.content
    else:
        data["content"] = [
            {"type": "image_url", "image_url": image_json(part)}
            if isinstance(part, ImagePart)
            else {"type": "text", "text": part.text}
            for part in message.content
        ]
    if message.name is not None:
        data["name"] = message.name
    if message.tool_calls:
        data["tool_calls"] = [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments},
            }
            for call in message.tool_calls
        ]
        if data["content"] == "":
            data["content"] = None  # what OpenAI itself sends with tool calls
    if message.tool_call_id is not None:
        data["tool_call_id"] = message.tool_call_id
    if message.refusal is not None:
        data["refusal"] = message.refusal
    return data


def image_json(part: ImagePart) -> dict[str, Any]:
    return {"url": part.url, **({"detail": part.detail} if part.detail else {})}


def chat_payload(
    request: GenerationRequest, *, stream: bool, max_tokens_parameter: str = "max_tokens"
) -> dict[str, Any]:
    """The request body for `POST /chat/completions`: only what the request sets."""
    body: dict[str, Any] = {
        **request.extra,  # what this service does not model goes through as it came
        "model": request.model,
        "messages": [message_json(message) for message in request.messages],
        max_tokens_parameter: request.max_tokens,
        "stream": stream,
    }
    optional: dict[str, Any] = {
        "temperature": request.temperature,
        "top_p": request.top_p,
        "seed": request.seed,
        "presence_penalty": request.presence_penalty,
        "frequency_penalty": request.frequency_penalty,
        "logit_bias": request.logit_bias,
        "top_logprobs": request.top_logprobs,
        "parallel_tool_calls": request.parallel_tool_calls,
        "reasoning_effort": request.reasoning_effort,
        "user": request.user,
        "metadata": request.metadata,
    }
    body.update({key: value for key, value in optional.items() if value is not None})
    if request.stop:
        body["stop"] = list(request.stop)
    if request.n != 1:
        body["n"] = request.n
    if request.logprobs:
        body["logprobs"] = True
    if request.tools:
        body["tools"] = [
            {
                "type": "function",
                "function": {
                    key: value
                    for key, value in (
                        ("name", tool.name),
                        ("description", tool.description),
                        ("parameters", tool.parameters),
                        ("strict", tool.strict),
                    )
                    if value is not None
                },
            }
            for tool in request.tools
        ]
    if isinstance(request.tool_choice, NamedToolChoice):
        body["tool_choice"] = {"type": "function", "function": {"name": request.tool_choice.name}}
    elif request.tool_choice is not None:
        body["tool_choice"] = request.tool_choice
    fmt = request.response_format
    if fmt is not None:
        if fmt.type == "json_schema":
            schema: dict[str, Any] = {
                "name": fmt.name or "response",
                "schema": fmt.json_schema or {},
            }
            if fmt.strict is not None:
                schema["strict"] = fmt.strict
            if fmt.description:
                schema["description"] = fmt.description
            body["response_format"] = {"type": "json_schema", "json_schema": schema}
        else:
            body["response_format"] = {"type": fmt.type}
    if stream:
        body["stream_options"] = {"include_usage": True}
    return body


def embeddings_payload(request: EmbeddingRequest) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": request.model,
        "input": [list(item) if not isinstance(item, str) else item for item in request.inputs],
        "encoding_format": "float",
    }
    if request.dimensions is not None:
        body["dimensions"] = request.dimensions
    if request.user is not None:
        body["user"] = request.user
    return body


def parse_usage(data: Any) -> Usage | None:
    if not isinstance(data, dict):
        return None
    prompt_details = data.get("prompt_tokens_details") or {}
    completion_details = data.get("completion_tokens_details") or {}
    return Usage(
        int(data.get("prompt_tokens") or 0),
        int(data.get("completion_tokens") or 0),
        cached_tokens=int(prompt_details.get("cached_tokens") or 0),
        reasoning_tokens=int(completion_details.get("reasoning_tokens") or 0),
    )


def parse_logprobs(data: Any) -> tuple[TokenLogprob, ...] | None:
    if not isinstance(data, dict) or not isinstance(data.get("content"), list):
        return None
    return tuple(
        TokenLogprob(
            token=str(item["token"]),
            logprob=float(item["logprob"]),
            bytes=tuple(item["bytes"]) if item.get("bytes") is not None else None,
            top_logprobs=tuple(
                TopLogprob(
                    str(top["token"]),
                    float(top["logprob"]),
                    tuple(top["bytes"]) if top.get("bytes") is not None else None,
                )
                for top in item.get("top_logprobs") or []
            ),
        )
        for item in data["content"]
    )


def parse_tool_calls(data: Any) -> tuple[ToolCall, ...]:
    return tuple(
        ToolCall(
            id=str(call["id"]),
            name=str(call["function"]["name"]),
            arguments=str(call["function"].get("arguments") or ""),
        )
        for call in data or []
    )


def parse_completion(data: dict[str, Any], model: str) -> Completion:
    """A whole answer; raises KeyError/TypeError/ValueError on a malformed one."""
    choices = []
    for position, choice in enumerate(data["choices"]):
        message = choice["message"]
        choices.append(
            Choice(
                index=int(choice.get("index", position)),
                text=str(message.get("content") or ""),
                finish_reason=finish_reason(choice.get("finish_reason")),
                tool_calls=parse_tool_calls(message.get("tool_calls")),
                refusal=message.get("refusal"),
                logprobs=parse_logprobs(choice.get("logprobs")),
            )
        )
    if not choices:
        raise ValueError("no choices")
    return Completion(
        choices=tuple(choices),
        usage=parse_usage(data.get("usage")) or Usage(0, 0),
        model=str(data.get("model") or model),
        system_fingerprint=data.get("system_fingerprint"),
    )


def parse_chunk(event: dict[str, Any]) -> list[CompletionChunk]:
    """The chunks of one streamed event (one per choice it touches, or its usage)."""
    chunks = []
    model = event.get("model")
    fingerprint = event.get("system_fingerprint")
    for choice in event.get("choices") or []:
        delta = choice.get("delta") or {}
        reason = choice.get("finish_reason")
        chunk = CompletionChunk(
            text=str(delta.get("content") or ""),
            index=int(choice.get("index", 0)),
            tool_calls=tuple(
                ToolCallDelta(
                    index=int(call.get("index", 0)),
                    id=call.get("id"),
                    name=(call.get("function") or {}).get("name"),
                    arguments=str((call.get("function") or {}).get("arguments") or ""),
                )
                for call in delta.get("tool_calls") or []
            ),
            finish_reason=finish_reason(reason) if reason else None,
            refusal=delta.get("refusal"),
            logprobs=parse_logprobs(choice.get("logprobs")),
            model=model,
            system_fingerprint=fingerprint,
        )
        if chunk.has_output or chunk.finish_reason or chunk.logprobs:
            chunks.append(chunk)
    usage = parse_usage(event.get("usage"))
    if usage is not None:
        chunks.append(CompletionChunk(usage=usage, model=model))
    return chunks
