"""Shared resources for path operations, declared once as `Annotated` aliases.

Every dependency is `async def`: FastAPI runs plain `def` dependencies in a thread
pool, a round trip that would cost each request more than the work itself.
`HTTPConnection` makes them serve HTTP and WebSocket routes alike.
"""

from __future__ import annotations

from typing import Annotated, cast

import structlog
from fastapi import Depends, Header
from starlette.requests import HTTPConnection

from ..core.cpu import CPUPool
from ..core.lifecycle import Lifecycle
from ..core.security import Principal, authenticate, presented_key
from ..jobs.base import JobQueue
from ..llm.base import Provider
from ..llm.service import GenerationService
from ..settings import Settings


async def get_settings(connection: HTTPConnection) -> Settings:
    return cast(Settings, connection.app.state.settings)


async def get_lifecycle(connection: HTTPConnection) -> Lifecycle:
    return cast(Lifecycle, connection.app.state.lifecycle)


async def get_provider(connection: HTTPConnection) -> Provider:
    return cast(Provider, connection.state.provider)


async def get_generation_service(connection: HTTPConnection) -> GenerationService:
    return cast(GenerationService, connection.state.generation)


async def get_job_queue(connection: HTTPConnection) -> JobQueue:
    return cast(JobQueue, connection.state.jobs)


async def get_cpu_pool(connection: HTTPConnection) -> CPUPool:
    return cast(CPUPool, connection.state.cpu)


SettingsDep = Annotated[Settings, Depends(get_settings)]
LifecycleDep = Annotated[Lifecycle, Depends(get_lifecycle)]
ProviderDep = Annotated[Provider, Depends(get_provider)]
GenerationServiceDep = Annotated[GenerationService, Depends(get_generation_service)]
JobQueueDep = Annotated[JobQueue, Depends(get_job_queue)]
CPUPoolDep = Annotated[CPUPool, Depends(get_cpu_pool)]


async def get_principal(
    settings: SettingsDep,
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
    x_api_key: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Principal:
    principal = authenticate(settings.api_keys, presented_key(authorization, x_api_key))
    structlog.contextvars.bind_contextvars(principal=principal.id)
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]
