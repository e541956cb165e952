"""Shared resources for path operations, declared once as `Annotated` aliases.

Every dependency is `async def`: FastAPI runs plain `def` dependencies in a thread
pool, a round trip that would cost each request more than the work itself.
`HTTPConnection` makes them serve HTTP and WebSocket routes alike.
"""

from __future__ import annotations

from typing import Annotated, cast

from fastapi import Depends
from starlette.requests import HTTPConnection
{% if cookiecutter.auth == "api_key" %}
from ..auth.api_keys import authenticate
{%- elif cookiecutter.auth == "jwt" %}
from ..auth.jwt import authenticate
{%- else %}
from ..auth.none import authenticate
{%- endif %}
from ..auth.principal import Principal
from ..core.context import RequestContext
from ..core.cpu import CPUPool
from ..core.lifecycle import Lifecycle
from ..jobs.base import JobQueue
from ..llm.service import GenerationService
from ..middleware.request_id import request_id_of
from ..services import Services
from ..settings import Settings


async def get_settings(connection: HTTPConnection) -> Settings:
    return cast(Settings, connection.app.state.settings)


async def get_lifecycle(connection: HTTPConnection) -> Lifecycle:
    return cast(Lifecycle, connection.app.state.lifecycle)


async def get_services(connection: HTTPConnection) -> Services:
    return cast(Services, connection.state.services)


async def get_generation_service(connection: HTTPConnection) -> GenerationService:
    return cast(Services, connection.state.services).generation


async def get_job_queue(connection: HTTPConnection) -> JobQueue:
    return cast(JobQueue, connection.state.jobs)


async def get_cpu_pool(connection: HTTPConnection) -> CPUPool:
    return cast(CPUPool, connection.state.cpu)


SettingsDep = Annotated[Settings, Depends(get_settings)]
LifecycleDep = Annotated[Lifecycle, Depends(get_lifecycle)]
ServicesDep = Annotated[Services, Depends(get_services)]
GenerationServiceDep = Annotated[GenerationService, Depends(get_generation_service)]
JobQueueDep = Annotated[JobQueue, Depends(get_job_queue)]
CPUPoolDep = Annotated[CPUPool, Depends(get_cpu_pool)]


# The caller, authenticated as the project's mode says; the same on HTTP and WebSocket routes.
PrincipalDep = Annotated[Principal, Depends(authenticate)]


async def get_request_context(
    connection: HTTPConnection, principal: PrincipalDep
) -> RequestContext:
    return RequestContext(
        principal=principal.id, request_id=request_id_of(connection.scope) or None
    )


RequestContextDep = Annotated[RequestContext, Depends(get_request_context)]
