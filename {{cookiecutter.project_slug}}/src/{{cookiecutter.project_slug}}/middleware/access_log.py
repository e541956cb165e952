"""One structured log line per HTTP request, with status and duration (replaces uvicorn's)."""

from __future__ import annotations

from starlette.types import Scope

from ..core.logging import get_logger

logger = get_logger("access")


def log_request(scope: Scope, status: int, duration_s: float) -> None:
    client = scope.get("client")
    logger.info(
        "request",
        method=scope["method"],
        path=scope["path"],
        status=status,
        duration_ms=round(duration_s * 1000, 2),
        client=client[0] if client else None,
    )
