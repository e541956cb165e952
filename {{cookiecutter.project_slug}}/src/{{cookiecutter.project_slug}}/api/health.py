"""Probes: liveness (the process answers), readiness (dependencies answer), and a summary."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response, status

from .. import __version__
from ..schemas.health import HealthSummary, Liveness, Readiness
from .deps import LifecycleDep, SettingsDep

router = APIRouter(prefix="/health", tags=["health"])
NOT_READY: dict[int | str, dict[str, Any]] = {
    503: {"model": Readiness, "description": "A dependency is down, or shutting down"}
}


@router.get("/live", summary="Liveness: the process is up")
async def live() -> Liveness:
    """200 while the process runs: for liveness probes (it never checks dependencies)."""
    return Liveness()


@router.get("/ready", summary="Readiness: dependencies answer", responses=NOT_READY)
async def ready(lifecycle: LifecycleDep, response: Response) -> Readiness:
    """Whether this process should get traffic: 200 when every dependency answers, 503
    otherwise and from the moment it starts draining (SIGTERM). Each check says only `ok`,
    `unavailable` or `draining` (the reasons go to the log); results are cached for about a
    second.
    """
    is_ready, checks = await lifecycle.readiness()
    if not is_ready:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    return Readiness(status="ok" if is_ready else "unavailable", checks=checks)


@router.get("", summary="Summary: readiness, version and uptime", responses=NOT_READY)
async def summary(
    lifecycle: LifecycleDep, settings: SettingsDep, response: Response
) -> HealthSummary:
    """Readiness with the version, environment and uptime: for people and dashboards."""
    is_ready, checks = await lifecycle.readiness()
    if not is_ready:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    return HealthSummary(
        status="ok" if is_ready else "unavailable",
        checks=checks,
        version=__version__,
        environment=settings.environment,
        uptime_s=lifecycle.uptime_s,
    )
