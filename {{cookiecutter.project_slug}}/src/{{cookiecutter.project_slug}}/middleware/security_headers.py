"""Conservative security headers on every HTTP response (a route's own value wins)."""

from __future__ import annotations

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}
HSTS = "max-age=31536000; includeSubDomains"


def security_headers(*, hsts: bool) -> dict[str, str]:
    """The headers, with HSTS when the service is served over HTTPS only (FORCE_HTTPS)."""
    return {**SECURITY_HEADERS, **({"Strict-Transport-Security": HSTS} if hsts else {})}
