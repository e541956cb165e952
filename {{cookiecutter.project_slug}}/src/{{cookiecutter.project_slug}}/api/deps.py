"""Shared resources for path operations, declared once as `Annotated` aliases.

Every dependency is `async def`: FastAPI runs plain `def` dependencies in a thread
pool, a round trip that would cost each request more than the work itself.
`HTTPConnection` makes them serve HTTP and WebSocket routes alike.

FastAPI solves every dependency of a route on each request, and a sub-dependency or a
`yield` costs more than most of them do. So the routes that reach the model take one,
`call: ModelCallDep`: the settings, the services, the caller and its rate limits in
one plain function, whose limits are settled once the response has been sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, cast

from fastapi import Depends, Request, Response
from starlette.requests import HTTPConnection
{% if cookiecutter.auth == "api_key" %}
from ..auth.api_keys import SECURITY_SCHEMES, authenticate
{%- elif cookiecutter.auth == "jwt" %}
from ..auth.jwt import SECURITY_SCHEMES, authenticate
{%- else %}
from ..auth.none import SECURITY_SCHEMES, authenticate
{%- endif %}
from ..auth.principal import Principal
from ..core.context import RequestContext
from ..core.cpu import CPUPool
from ..core.lifecycle import Lifecycle
from ..core.openapi import Security
from ..jobs.base import JobQueue
from ..llm.service import GenerationService
from ..middleware.edge import after_response
from ..middleware.request_id import request_id_of
from ..services import Services
from ..settings import Settings
from .limits import RateLimit


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


@dataclass(frozen=True, slots=True)
class ModelCall:
    """What a route that reaches the model works with."""

    settings: Settings
    services: Services
    context: RequestContext
    limit: RateLimit

    @property
    def service(self) -> GenerationService:
        return self.services.generation


async def model_call(request: Request, response: Response) -> ModelCall:
    settings = cast(Settings, request.app.state.settings)
    services = cast(Services, request.state.services)
    principal = await authenticate(request)
    context = RequestContext(principal.id, request_id_of(request.scope) or None)
    limit = RateLimit(services.rate_limiter, settings, principal.id, response, services.observer)
    after_response(request.scope, limit.settle)  # a stream has ended by then
    return ModelCall(settings, services, context, limit)


ModelCallDep = Annotated[ModelCall, Depends(model_call)]

# What /docs shows on the operations that depend on either.
SECURITY = Security(SECURITY_SCHEMES, (authenticate, model_call))
