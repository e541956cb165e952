"""Settings of the metrics module that only the worker process reads."""

from __future__ import annotations

from pydantic import Field

from .common import SettingsPart


class MetricsSettings(SettingsPart):
    # The worker process serves its own GET /metrics here, on HOST (0 serves none).
    worker_metrics_port: int = Field(default=9101, ge=0, le=65535)
