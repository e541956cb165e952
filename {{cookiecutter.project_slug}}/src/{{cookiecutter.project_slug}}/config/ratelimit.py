"""Settings of the rate limits: requests and tokens per minute per caller, and sign-ins."""

from __future__ import annotations

from pydantic import Field

from .common import SettingsPart


class RateLimitSettings(SettingsPart):
    # Per caller (API key or user, else client address), refilled continuously; 0: unlimited.
    rate_limit_rpm: int = Field(default=60, ge=0)
    rate_limit_tpm: int = Field(default=100_000, ge=0)
    # Sign-in attempts per minute, per client address and per username; 0: unlimited.
    rate_limit_login_per_minute: int = Field(default=10, ge=0)
