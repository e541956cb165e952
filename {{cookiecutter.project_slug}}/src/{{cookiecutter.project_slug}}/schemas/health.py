from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class RootInfo(BaseModel):
    name: str = Field(examples=["AI Service"])
    version: str = Field(examples=["1.0.0"])
    message: str = Field(examples=["AI Service is ready"])
    docs: str = Field(examples=["/docs"])
    redoc: str = Field(examples=["/redoc"])
    openapi: str = Field(examples=["/openapi.json"])


class Liveness(BaseModel):
    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    status: Literal["ok", "unavailable"] = Field(examples=["ok"])
    checks: dict[str, Literal["ok", "unavailable", "draining"]] = Field(
        description="Each dependency's state (`shutdown: draining` on SIGTERM); the reason "
        "a check fails is in the service's log, not here.",
        examples=[{"database": "ok", "provider": "ok"}],
    )


class HealthSummary(Readiness):
    version: str = Field(examples=["1.0.0"])
    environment: str = Field(examples=["production"])
    uptime_s: float = Field(examples=[3600.5])
