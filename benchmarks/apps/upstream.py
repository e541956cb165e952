"""A model server stand-in: OpenAI-compatible `POST /v1/chat/completions`, JSON or SSE.

Raw ASGI (no framework), served by uvicorn like the other servers, so that its own cost
stays far below that of the servers put in front of it. The reply has `max_tokens`
tokens (16 when the request names none). Settings (environment):

- BENCH_UPSTREAM_DELAY_MS: time to the whole answer (JSON) or to the first token (SSE);
- BENCH_UPSTREAM_TOKEN_INTERVAL_MS: pause between streamed tokens (0: no pause).

Any other method answers 200 `ok` (the readiness probe).
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Awaitable, Callable
from functools import lru_cache
from typing import Any

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

DELAY_S = float(os.environ.get("BENCH_UPSTREAM_DELAY_MS", "20")) / 1000
INTERVAL_S = float(os.environ.get("BENCH_UPSTREAM_TOKEN_INTERVAL_MS", "0")) / 1000
MODEL = "bench-model"
WORDS = ("Hello", " from", " the", " bench", " upstream", " model", " and", " goodbye", ".")
DEFAULT_TOKENS = 16
MAX_TOKENS = 4096


def chunk(delta: dict[str, str] | None, finish: str | None = None, usage: Any = None) -> bytes:
    """One `chat.completion.chunk` event, as compact JSON."""
    data: dict[str, Any] = {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": MODEL,
        "choices": [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    if usage is not None:
        data["usage"] = usage
    return b"data: " + json.dumps(data, separators=(",", ":")).encode() + b"\n\n"


def usage(tokens: int) -> dict[str, int]:
    return {"prompt_tokens": 3, "completion_tokens": tokens, "total_tokens": 3 + tokens}


def token_count(request: dict[str, Any]) -> int:
    wanted = request.get("max_completion_tokens") or request.get("max_tokens") or DEFAULT_TOKENS
    return max(1, min(MAX_TOKENS, int(wanted)))


@lru_cache(maxsize=64)
def completion(tokens: int) -> bytes:
    text = "".join(WORDS[i % len(WORDS)] for i in range(tokens))
    body = {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 0,
        "model": MODEL,
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
        ],
        "usage": usage(tokens),
    }
    return json.dumps(body, separators=(",", ":")).encode()


# Events encoded once: the first carries the role and the first token.
FIRST = chunk({"role": "assistant", "content": WORDS[0]})
TOKENS = [chunk({"content": word}) for word in WORDS]
FINISH = chunk({}, "stop")
DONE = b"data: [DONE]\n\n"
SSE_HEADERS = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]


async def lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def read_body(receive: Receive) -> bytes | None:
    """The whole request body, or None if the client went away."""
    body, more = b"", True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        body += message.get("body", b"")
        more = message.get("more_body", False)
    return body


async def stream(send: Send, request: dict[str, Any], tokens: int) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": SSE_HEADERS})
    await send({"type": "http.response.body", "body": FIRST, "more_body": True})
    for index in range(1, tokens):
        if INTERVAL_S:
            await asyncio.sleep(INTERVAL_S)
        await send(
            {"type": "http.response.body", "body": TOKENS[index % len(WORDS)], "more_body": True}
        )
    await send({"type": "http.response.body", "body": FINISH, "more_body": True})
    if (request.get("stream_options") or {}).get("include_usage"):
        usage_event = chunk(None, usage=usage(tokens))
        await send({"type": "http.response.body", "body": usage_event, "more_body": True})
    await send({"type": "http.response.body", "body": DONE})


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await lifespan(receive, send)
        return
    if scope["type"] != "http":
        return
    if scope["method"] != "POST":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})
        return
    body = await read_body(receive)
    if body is None:
        return
    request = json.loads(body)
    tokens = token_count(request)
    await asyncio.sleep(DELAY_S)
    if request.get("stream"):
        await stream(send, request, tokens)
        return
    payload = completion(tokens)
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(payload))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
