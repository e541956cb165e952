"""`/ws/chat`: a conversation over one WebSocket, replies streamed token by token.

The client sends `{"type": "prompt", "prompt": ..., "max_tokens": ..., "temperature": ...}`
and gets `delta` messages as the model writes, then `usage` and `done`; it may send
`cancel` to stop a reply and `ping` to get a `pong`. Several turns share the
conversation. A malformed message gets an `error` message and the connection stays
usable; a connection idle for `WS_IDLE_TIMEOUT_S` is closed; a disconnect cancels the
reply in progress. The caller is authenticated as on HTTP; browsers, which cannot set
headers on a WebSocket, offer the credential as the `bearer.<credential>` subprotocol.
Never in the query string: servers and proxies log it. Each prompt counts against the
caller's rate limits like a request; one over them gets an `error` message
(`rate_limit_exceeded`).
"""

from __future__ import annotations

import asyncio
import uuid
from contextlib import suppress

from fastapi import APIRouter, WebSocket, WebSocketDisconnect, status
from pydantic import BaseModel, ValidationError

from ..auth.principal import bearer_subprotocol
from ..core.context import RequestContext
from ..core.errors import APIError, as_api_error, describe_validation, error_detail
from ..core.lifecycle import Lifecycle
from ..core.logging import get_logger
from ..core.ratelimit import RateLimiter
from ..llm.base import ChatMessage, FinishReason, GenerationRequest, Usage
from ..llm.service import GenerationService
from ..middleware.request_id import request_id_of
from ..schemas.generate import UsageInfo, check_prompt_length
from ..schemas.ws import (
    CLIENT_MESSAGE,
    CancelMessage,
    DeltaMessage,
    DoneMessage,
    ErrorMessage,
    PongMessage,
    PromptMessage,
    UsageMessage,
)
from ..settings import Settings
from .deps import LifecycleDep, PrincipalDep, ServicesDep, SettingsDep
from .limits import RateLimit

router = APIRouter(tags=["websocket"])
logger = get_logger(__name__)
HISTORY_MESSAGES = 20  # context kept per connection: the last turns only


class ChatSession:
    def __init__(
        self,
        websocket: WebSocket,
        service: GenerationService,
        settings: Settings,
        context: RequestContext,
        lifecycle: Lifecycle,
        limiter: RateLimiter,
    ) -> None:
        self.websocket = websocket
        self.service = service
        self.settings = settings
        self.context = context
        self.lifecycle = lifecycle
        self.limiter = limiter
        self.history: list[ChatMessage] = []
        self.reply: asyncio.Task[None] | None = None
        self._send_lock = asyncio.Lock()

    async def send(self, message: BaseModel) -> None:
        async with self._send_lock:
            await self.websocket.send_text(message.model_dump_json())

    async def send_error(self, status_code: int, message: str, **fields: str | None) -> None:
        await self.send(ErrorMessage(error=error_detail(status_code, message, **fields)))

    def replying(self) -> bool:
        return self.reply is not None and not self.reply.done()

    async def run(self) -> None:
        try:
            while True:
                # Idle means: no reply in progress and nothing from the client.
                timeout = None if self.replying() else self.settings.ws_idle_timeout_s
                try:
                    frame = await asyncio.wait_for(self.websocket.receive(), timeout)
                except TimeoutError:
                    await self.websocket.close(status.WS_1000_NORMAL_CLOSURE, "idle timeout")
                    return
                if frame["type"] == "websocket.disconnect":
                    return
                if frame.get("text") is None:
                    await self.send_error(
                        422, "Messages are JSON text frames, not binary.", code="invalid_message"
                    )
                    continue
                await self.handle(frame["text"])
        except WebSocketDisconnect:
            return
        finally:
            if self.reply is not None and not self.reply.done():
                self.reply.cancel()  # the client has gone: stop the model too
                with suppress(asyncio.CancelledError):
                    await self.reply

    async def handle(self, raw: str) -> None:
        try:
            message = CLIENT_MESSAGE.validate_json(raw)
        except ValidationError as exc:
            text, param = describe_validation(exc.errors())
            await self.send_error(422, text, code="invalid_message", param=param)
            return
        if isinstance(message, PromptMessage):
            if self.lifecycle.refusing:
                await self.send_error(
                    503, "The server is shutting down; reconnect shortly.", code="shutting_down"
                )
                return
            try:
                check_prompt_length(message.prompt, self.settings.max_prompt_chars)
            except APIError as exc:
                await self.send_error(exc.status_code, exc.message, code=exc.code, param=exc.param)
                return
            if self.replying():
                await self.send_error(
                    409, "A reply is in progress: wait for it or cancel it.", code="busy"
                )
                return
            self.reply = asyncio.create_task(self.respond(message))
        elif isinstance(message, CancelMessage):
            if self.reply is not None:
                self.reply.cancel()
        else:
            await self.send(PongMessage())

    async def respond(self, message: PromptMessage) -> None:
        self.lifecycle.work_started()  # a draining server lets the reply finish
        try:
            await self._respond(message)
        finally:
            self.lifecycle.work_finished()

    async def _respond(self, message: PromptMessage) -> None:
        reply_id = f"gen-{uuid.uuid4().hex}"
        turn = ChatMessage("user", message.prompt)
        request = GenerationRequest(
            messages=(*self.history, turn),
            max_tokens=message.max_tokens,
            temperature=message.temperature,
            model=message.model or self.settings.llm_model,
        )
        limit = RateLimit(
            self.limiter, self.settings, self.context.principal, observer=self.service.observer
        )
        try:
            await limit.admit(request)  # each prompt counts, as a request does on HTTP
        except APIError as exc:
            await self.send_error(exc.status_code, exc.message, code=exc.code)
            return
        text: list[str] = []
        reason: FinishReason = "stop"
        usage: Usage | None = None
        try:
            async for chunk in limit.metered(self.service.stream(request, self.context)):
                if chunk.text and chunk.index == 0:
                    text.append(chunk.text)
                    await self.send(DeltaMessage(text=chunk.text))
                reason = chunk.finish_reason or reason
                usage = chunk.usage or usage
        except asyncio.CancelledError:
            with suppress(Exception):  # the socket may already be gone
                await self.send(DoneMessage(id=reply_id, finish_reason="cancelled"))
            raise
        except Exception as exc:
            error = as_api_error(exc)
            if error is None:  # a bug must not leave the client waiting for `done`
                logger.exception("websocket reply failed", reply_id=reply_id)
                error = APIError(500, "The reply failed unexpectedly.", code="internal_error")
            await self.send_error(
                error.status_code, error.message, code=error.code, param=error.param
            )
            return
        finally:
            await limit.settle()
        if usage is not None:
            await self.send(UsageMessage(usage=UsageInfo.of(usage)))
        await self.send(DoneMessage(id=reply_id, finish_reason=reason))
        self.history = [*self.history, turn, ChatMessage("assistant", "".join(text))][
            -HISTORY_MESSAGES:
        ]


@router.websocket("/ws/chat")
async def chat(
    websocket: WebSocket,
    services: ServicesDep,
    settings: SettingsDep,
    lifecycle: LifecycleDep,
    principal: PrincipalDep,  # refused: the handshake gets HTTP 403, no connection
) -> None:
    # A browser that offered its credential as a subprotocol needs it echoed to connect.
    await websocket.accept(subprotocol=bearer_subprotocol(websocket))
    logger.info("websocket opened", principal=principal.id)
    context = RequestContext(principal.id, request_id_of(websocket.scope) or None)
    session = ChatSession(
        websocket, services.generation, settings, context, lifecycle, services.rate_limiter
    )
    services.observer.websocket_session(opened=True)
    try:
        await session.run()
    finally:
        services.observer.websocket_session(opened=False)
    logger.info("websocket closed", principal=principal.id)
