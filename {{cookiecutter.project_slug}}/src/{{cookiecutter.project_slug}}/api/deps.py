"""Shared resources for path operations, declared once as `Annotated` aliases."""

from __future__ import annotations

from typing import Annotated, cast

from fastapi import Depends, Header, Request

from ..core.lifecycle import Lifecycle
from ..core.security import Principal, authenticate, presented_key
from ..llm.base import Provider
from ..settings import Settings


def get_settings(request: Request) -> Settings:
    return cast(Settings, request.app.state.settings)


def get_lifecycle(request: Request) -> Lifecycle:
    return cast(Lifecycle, request.app.state.lifecycle)


def get_provider(request: Request) -> Provider:
    return cast(Provider, request.state.provider)


SettingsDep = Annotated[Settings, Depends(get_settings)]
LifecycleDep = Annotated[Lifecycle, Depends(get_lifecycle)]
ProviderDep = Annotated[Provider, Depends(get_provider)]


def get_principal(
    settings: SettingsDep,
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
    x_api_key: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Principal:
    return authenticate(settings.api_keys, presented_key(authorization, x_api_key))


PrincipalDep = Annotated[Principal, Depends(get_principal)]
