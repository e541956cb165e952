"""A scriptable OpenAI-compatible model server, for tests that need a real upstream.

Each request takes the next scripted behaviour (or answers normally when none is
left): delay, 429 with Retry-After, 500, hang past the client's timeout, a stream
cut after some chunks, or function calls instead of text. It records every request
and every client that went away.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route


def usage(completion_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": 3,
        "completion_tokens": completion_tokens,
        "total_tokens": 3 + completion_tokens,
    }


@dataclass
class Behaviour:
    status: int = 200
    delay_s: float = 0.0
    retry_after: str | None = None
    cut_after_chunks: int | None = None  # stream: drop the connection after this many
    token_delay_s: float = 0.0
    tokens: int = 5
    # Answer with these function calls ({"id", "name", "arguments"}) instead of text.
    tool_calls: tuple[dict[str, str], ...] = ()


@dataclass
class Upstream:
    script: deque[Behaviour] = field(default_factory=deque)
    requests: list[dict[str, Any]] = field(default_factory=list)
    request_times: list[float] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    disconnects: int = 0
    default: Behaviour = field(default_factory=Behaviour)

    def then(self, *behaviours: Behaviour) -> Upstream:
        self.script.extend(behaviours)
        return self

    def reset(self) -> None:
        self.script.clear()
        self.requests.clear()
        self.request_times.clear()
        self.headers.clear()
        self.disconnects = 0
        self.default = Behaviour()

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/v1/chat/completions", self.chat, methods=["POST"])])

    async def chat(self, request: Request) -> Response:
        body = await request.json()
        self.requests.append(body)
        self.request_times.append(time.monotonic())
        self.headers.append(dict(request.headers))
        behaviour = self.script.popleft() if self.script else self.default
        if behaviour.delay_s and await self.client_left_during(request, behaviour.delay_s):
            self.disconnects += 1
            return Response(status_code=499)
        if behaviour.status != 200:
            headers = {"Retry-After": behaviour.retry_after} if behaviour.retry_after else None
            error = {"error": {"message": f"scripted {behaviour.status}", "type": "test"}}
            return JSONResponse(error, status_code=behaviour.status, headers=headers)
        words = [f"w{i}" for i in range(min(behaviour.tokens, body.get("max_tokens") or 16))]
        model = body.get("model", "upstream-model")
        if body.get("stream"):
            events = self.events(request, words, model, behaviour)
            return StreamingResponse(events, media_type="text/event-stream")
        message: dict[str, Any] = {"role": "assistant", "content": " ".join(words)}
        if behaviour.tool_calls:
            message = {"role": "assistant", "content": None, "tool_calls": tool_calls(behaviour)}
        return JSONResponse(
            {
                "id": "chatcmpl-upstream",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": message,
                        "finish_reason": "tool_calls" if behaviour.tool_calls else "stop",
                    }
                ],
                "usage": usage(len(words)),
            }
        )

    async def client_left_during(self, request: Request, seconds: float) -> bool:
        """Sleep, unless the client disconnects first (Starlette would not tell us)."""

        async def disconnected() -> None:
            while (await request.receive())["type"] != "http.disconnect":
                pass

        try:
            await asyncio.wait_for(disconnected(), seconds)
        except TimeoutError:
            return False
        return True

    async def events(
        self, request: Request, words: list[str], model: str, behaviour: Behaviour
    ) -> AsyncIterator[bytes]:
        def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
            data = {
                "id": "chatcmpl-upstream",
                "object": "chat.completion.chunk",
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
                **extra,
            }
            return f"data: {json.dumps(data)}\n\n".encode()

        try:
            yield chunk({"role": "assistant", "content": ""})
            if behaviour.tool_calls:
                for index, call in enumerate(tool_calls(behaviour)):
                    opening = {**call, "function": {"name": call["function"]["name"]}}
                    yield chunk({"tool_calls": [{"index": index, **opening}]})
                    arguments = call["function"]["arguments"]
                    for at in range(0, len(arguments), 8):
                        piece = {"index": index, "function": {"arguments": arguments[at : at + 8]}}
                        yield chunk({"tool_calls": [piece]})
                yield chunk({}, "tool_calls")
                yield f"data: {json.dumps({'choices': [], 'usage': usage(1)})}\n\n".encode()
                yield b"data: [DONE]\n\n"
                return
            for index, word in enumerate(words):
                if behaviour.cut_after_chunks is not None and index >= behaviour.cut_after_chunks:
                    raise ConnectionResetError("scripted cut")  # uvicorn drops the connection
                if behaviour.token_delay_s:
                    await asyncio.sleep(behaviour.token_delay_s)
                yield chunk({"content": (" " if index else "") + word})
            yield chunk({}, "stop")
            yield f"data: {json.dumps({'choices': [], 'usage': usage(len(words))})}\n\n".encode()
            yield b"data: [DONE]\n\n"
        except asyncio.CancelledError:
            self.disconnects += 1
            raise


def tool_calls(behaviour: Behaviour) -> list[dict[str, Any]]:
    return [
        {
            "id": call["id"],
            "type": "function",
            "function": {"name": call["name"], "arguments": call["arguments"]},
        }
        for call in behaviour.tool_calls
    ]
