"""Settings of the `/ws/chat` WebSocket module."""

from __future__ import annotations

from pydantic import Field

from .common import SettingsPart


class WebSocketSettings(SettingsPart):
    # A connection with no reply in progress and nothing from the client is closed after this.
    ws_idle_timeout_s: float = Field(default=300.0, gt=0)
