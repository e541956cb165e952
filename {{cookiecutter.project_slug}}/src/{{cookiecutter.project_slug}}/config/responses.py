"""Settings of the Responses API (`/v1/responses`): how long and how much is stored."""

from __future__ import annotations

from pydantic import Field

from .common import SettingsPart


class ResponsesSettings(SettingsPart):
    # Stored responses (store: true) are forgotten this long after they were created.
    responses_ttl_s: float = Field(default=30 * 24 * 3600.0, gt=0)
    # The in-memory store (no database, no Redis) keeps at most this many, oldest dropped first.
    responses_max_stored: int = Field(default=10_000, ge=1)
    # The conversation a response is built from (its previous_response_id chain and its
    # input items), as JSON: a longer one is refused with 400 instead of being stored.
    responses_max_context_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    # Background responses (background: true): at most this many run at once per process,
    # each for at most this long.
    responses_max_background: int = Field(default=64, ge=1)
    responses_background_timeout_s: float = Field(default=900.0, gt=0)
