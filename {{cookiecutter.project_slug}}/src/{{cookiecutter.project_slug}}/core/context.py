"""Who a piece of work is for: passed explicitly from the API to the service and jobs."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RequestContext:
    principal: str  # the caller's stable, non-secret id (history, limits and cache scope)
    request_id: str | None = None
