"""Last line of defence: an unexpected exception becomes a logged 500 with the error body.

The edge answers it inside its request id and access log, so the 500 still carries
`X-Request-ID` and the log line that holds the traceback carries the request id.
"""

from __future__ import annotations

from starlette.responses import Response
from starlette.types import Scope

from ..core.errors import error_response
from ..core.logging import get_logger

logger = get_logger("errors")


def internal_error(scope: Scope) -> Response:
    """Log the exception being handled; the 500 to answer with, if headers are not sent."""
    logger.exception("unhandled error", path=scope["path"])
    return error_response(500, "The server failed to handle this request.", code="internal_error")
