"""Settings of the rate limits: requests and tokens per minute per caller."""

from __future__ import annotations

from pydantic import Field

from .common import SettingsPart


class RateLimitSettings(SettingsPart):
    # Per caller (API key or user, else client address), refilled continuously; 0: unlimited.
    rate_limit_rpm: int = Field(default=60, ge=0)
    rate_limit_tpm: int = Field(default=100_000, ge=0)
