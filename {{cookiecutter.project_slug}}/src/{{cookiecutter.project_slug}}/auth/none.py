"""No authentication (auth=none): for a private network, behind a gateway that authenticates.

Every caller is anonymous and known by its address; behind a proxy that is the
client's address only when FORWARDED_ALLOW_IPS trusts the proxy's `X-Forwarded-For`.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import HTTPConnection

from .principal import Principal, anonymous

SECURITY_SCHEMES: dict[str, dict[str, Any]] = {}  # nothing for /docs to ask for


async def authenticate(connection: HTTPConnection) -> Principal:
    """Anyone may call: the caller is its address."""
    return anonymous(connection)
