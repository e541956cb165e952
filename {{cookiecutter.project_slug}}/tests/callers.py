"""A client of the service under test, as the auth helpers (`auth_*.py`) make them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Caller:
    headers: dict[str, str]  # what it sends to be recognised
    principal: str  # the id the service records for it (history, job owner)
