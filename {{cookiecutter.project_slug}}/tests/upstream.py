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
from collections.abc import AsyncIterator, Sequence
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
    # Answer with these function calls ({"name", "arguments"}, optionally "id") instead of text.
    tool_calls: Sequence[dict[str, str]] = ()
    finish_reason: str | None = None  # overrides "stop" / "tool_calls"


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
        return Starlette(
            routes=[
                Route("/v1/chat/completions", self.chat, methods=["POST"]),
                Route("/v1/embeddings", self.embeddings, methods=["POST"]),
            ]
        )

    async def embeddings(self, request: Request) -> Response:
        body = await request.json()
        self.requests.append(body)
        self.headers.append(dict(request.headers))
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        size = body.get("dimensions") or 4
        data = [
            {"object": "embedding", "index": i, "embedding": [float(i + 1)] + [0.0] * (size - 1)}
            for i in range(len(inputs))
        ]
        usage = {"prompt_tokens": len(inputs), "total_tokens": len(inputs)}
        return JSONResponse(
            {"object": "list", "data": data, "model": body["model"], "usage": usage}
        )

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
                "system_fingerprint": "fp_upstream",
                "choices": [{"index": 0, "message": message, "finish_reason": finish(behaviour)}],
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
            for index, call in enumerate(tool_calls(behaviour)):
                head = {"index": index, "id": call["id"], "type": "function"}
                name = {"name": call["function"]["name"], "arguments": ""}
                yield chunk({"tool_calls": [{**head, "function": name}]})
                arguments = call["function"]["arguments"]
                for at in range(0, len(arguments), 5):
                    piece = {"arguments": arguments[at : at + 5]}
                    yield chunk({"tool_calls": [{"index": index, "function": piece}]})
            for index, word in enumerate(words if not behaviour.tool_calls else []):
                if behaviour.cut_after_chunks is not None and index >= behaviour.cut_after_chunks:
                    raise ConnectionResetError("scripted cut")  # uvicorn drops the connection
                if behaviour.token_delay_s:
                    await asyncio.sleep(behaviour.token_delay_s)
                yield chunk({"content": (" " if index else "") + word})
            yield chunk({}, finish(behaviour))
            yield f"data: {json.dumps({'choices': [], 'usage': usage(len(words))})}\n\n".encode()
            yield b"data: [DONE]\n\n"
        except asyncio.CancelledError:
            self.disconnects += 1
            raise


def tool_calls(behaviour: Behaviour) -> list[dict[str, Any]]:
    return [
        {
            "id": call.get("id", f"call_{n}"),
            "type": "function",
            "function": {"name": call["name"], "arguments": call["arguments"]},
        }
        for n, call in enumerate(behaviour.tool_calls)
    ]


def finish(behaviour: Behaviour) -> str:
    return behaviour.finish_reason or ("tool_calls" if behaviour.tool_calls else "stop")
