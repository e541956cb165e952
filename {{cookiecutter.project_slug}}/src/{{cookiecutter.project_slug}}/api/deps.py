"""Shared resources for path operations, declared once as `Annotated` aliases.

Every dependency is `async def`: FastAPI runs plain `def` dependencies in a thread
pool, a round trip that would cost each request more than the work itself.
`HTTPConnection` makes them serve HTTP and WebSocket routes alike.
"""

from __future__ import annotations

{% if cookiecutter.database != "none" -%}
from collections.abc import AsyncIterator
{% endif -%}
from typing import Annotated, cast

import structlog
from fastapi import Depends
{%- if cookiecutter.database != "none" %}
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession
{%- endif %}
from starlette.requests import HTTPConnection

from ..core.cpu import CPUPool
from ..core.lifecycle import Lifecycle
from ..core.security import Principal, authenticate, presented_key
{%- if cookiecutter.database != "none" %}
from ..db.engine import Database
from ..db.errors import database_error
{%- endif %}
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
{%- if cookiecutter.database != "none" %}


async def get_session(connection: HTTPConnection) -> AsyncIterator[AsyncSession]:
    """A session per request: committed after the route succeeds, rolled back if it raises.

    Database errors become a 503 (unreachable) or 500 with the usual error body.
    """
    database = cast(Database, connection.state.database)
    try:
        async with database.session() as session:
            yield session
    except SQLAlchemyError as exc:
        raise database_error(exc) from exc
{%- endif %}


SettingsDep = Annotated[Settings, Depends(get_settings)]
LifecycleDep = Annotated[Lifecycle, Depends(get_lifecycle)]
ProviderDep = Annotated[Provider, Depends(get_provider)]
GenerationServiceDep = Annotated[GenerationService, Depends(get_generation_service)]
JobQueueDep = Annotated[JobQueue, Depends(get_job_queue)]
CPUPoolDep = Annotated[CPUPool, Depends(get_cpu_pool)]
{%- if cookiecutter.database != "none" %}
# "function" scope: the commit happens before the response is sent, so its failure is a 503.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
{%- endif %}


async def get_principal(connection: HTTPConnection, settings: SettingsDep) -> Principal:
    # Headers read directly: declared Header() parameters cost every request a parse.
    headers = connection.headers
    presented = presented_key(headers.get("authorization"), headers.get("x-api-key"))
    principal = authenticate(settings.api_keys, presented)
    structlog.contextvars.bind_contextvars(principal=principal.id)
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]
