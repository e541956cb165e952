from __future__ import annotations

from fastapi import APIRouter, Request

from .. import PROJECT_NAME, __version__
from ..schemas.health import RootInfo

router = APIRouter(tags=["meta"])


@router.get("/", summary="Service name, version and documentation links")
async def root(request: Request) -> RootInfo:
    """Where to start: the service's name and version, and links to its documentation."""
    app = request.app
    return RootInfo(
        name=PROJECT_NAME,
        version=__version__,
        message=f"{PROJECT_NAME} is ready",
        docs=app.docs_url,
        redoc=app.redoc_url,
        openapi=app.openapi_url,
    )
