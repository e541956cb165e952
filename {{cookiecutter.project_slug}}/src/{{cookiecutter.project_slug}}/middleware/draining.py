"""Refusing new requests once the process is draining.

The edge counts requests in flight, which the drain waits for (`core/lifecycle.py`);
health probes are always answered, so readiness can say 503 itself.
"""

from __future__ import annotations

from starlette.responses import Response

from ..core.errors import error_response

{% if cookiecutter.use_prometheus -%}
EXEMPT_PREFIXES = ("/health", "/metrics")  # a drain is worth watching
{% else -%}
EXEMPT_PREFIXES = ("/health",)
{% endif -%}
RETRY_AFTER_S = "5"


def shutting_down() -> Response:
    return error_response(
        503,
        "The server is shutting down; send the request again.",
        code="shutting_down",
        headers={"Retry-After": RETRY_AFTER_S, "Connection": "close"},
    )
