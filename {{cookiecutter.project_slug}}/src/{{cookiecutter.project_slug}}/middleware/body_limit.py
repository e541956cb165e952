"""Refusing request bodies over MAX_BODY_BYTES with a 413, before they are buffered.

A declared Content-Length over the limit is refused without reading the body (the
server reads no more than it declares); a chunked body is counted as it arrives and
refused as soon as it passes the limit. Both answers are the usual error body with
code `request_too_large`.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.types import Message, Receive

from ..core.errors import error_response


class BodyTooLargeError(HTTPException):
    """Raised from `receive`: FastAPI passes an HTTPException raised while it reads a body
    on to the exception handlers (anything else would become its generic 400)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, too_large_message(limit), headers={"Connection": "close"})


def too_large_message(limit: int) -> str:
    return f"The request body is larger than {limit} bytes."


def too_large(limit: int) -> Response:
    return error_response(
        413, too_large_message(limit), code="request_too_large", headers={"Connection": "close"}
    )


def counted(receive: Receive, limit: int) -> Receive:
    """`receive`, raising BodyTooLargeError once the body has passed `limit` bytes."""
    received = 0

    async def receive_counted() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise BodyTooLargeError(limit)
        return message

    return receive_counted
