"""Shared resources for path operations, declared once as `Annotated` aliases."""

from __future__ import annotations

from typing import Annotated, cast

from fastapi import Depends, Header, Request

from ..core.cpu import CPUPool
from ..core.lifecycle import Lifecycle
from ..core.security import Principal, authenticate, presented_key
from ..jobs.base import JobQueue
from ..llm.base import Provider
from ..llm.service import GenerationService
from ..settings import Settings


def get_settings(request: Request) -> Settings:
    return cast(Settings, request.app.state.settings)


def get_lifecycle(request: Request) -> Lifecycle:
    return cast(Lifecycle, request.app.state.lifecycle)


def get_provider(request: Request) -> Provider:
    return cast(Provider, request.state.provider)


def get_generation_service(request: Request) -> GenerationService:
    return cast(GenerationService, request.state.generation)


def get_job_queue(request: Request) -> JobQueue:
    return cast(JobQueue, request.state.jobs)


def get_cpu_pool(request: Request) -> CPUPool:
    return cast(CPUPool, request.state.cpu)


SettingsDep = Annotated[Settings, Depends(get_settings)]
LifecycleDep = Annotated[Lifecycle, Depends(get_lifecycle)]
ProviderDep = Annotated[Provider, Depends(get_provider)]
GenerationServiceDep = Annotated[GenerationService, Depends(get_generation_service)]
JobQueueDep = Annotated[JobQueue, Depends(get_job_queue)]
CPUPoolDep = Annotated[CPUPool, Depends(get_cpu_pool)]


def get_principal(
    settings: SettingsDep,
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
    x_api_key: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Principal:
    return authenticate(settings.api_keys, presented_key(authorization, x_api_key))


PrincipalDep = Annotated[Principal, Depends(get_principal)]
