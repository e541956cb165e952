"""Application factory: `create_app(settings)` wires routers, middleware and the lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware

from . import DESCRIPTION, PROJECT_NAME, __version__
{%- set routers = ["generate", "health", "jobs", "openai", "responses", "root"] %}
{%- if cookiecutter.database != "none" %}{% set routers = routers + ["history"] %}{% endif %}
{%- if cookiecutter.use_websocket %}{% set routers = routers + ["ws"] %}{% endif %}
{%- if cookiecutter.auth == "jwt" %}{% set routers = routers + ["auth"] %}{% endif %}
{%- if cookiecutter.use_graphql %}{% set routers = routers + ["graphql"] %}{% endif %}
from .api import {{ routers | sort | join(", ") }}
from .api.deps import SECURITY
from .api.docs import install_docs
from .api.limits import LIMIT_HEADERS
from .core.cpu import CPUPool
from .core.errors import install_error_handlers
from .core.heap import settled_heap
from .core.lifecycle import Lifecycle
from .core.logging import configure_logging, get_logger
{%- if cookiecutter.use_prometheus %}
from .core.metrics import install_metrics
{%- endif %}
from .core.openapi import install_openapi, operation_id
{%- if cookiecutter.use_opentelemetry %}
from .core.tracing import REQUEST_TELEMETRY, trace_requests
{%- endif %}
{%- if cookiecutter.database != "none" %}
from .db.errors import install_database_error_handler
{%- endif %}
{%- if cookiecutter.use_redis %}
from .jobs.redis_queue import open_job_queue
{%- else %}
from .jobs.memory import open_job_queue
{%- endif %}
from .middleware.edge import EdgeMiddleware
from .middleware.https_redirect import HTTPSRedirectMiddleware
from .middleware.request_id import REQUEST_ID_HEADER
from .middleware.trusted_hosts import TrustedHostMiddleware
from .responses.background import open_background_responses
from .services import open_services
from .settings import Settings, get_settings

logger = get_logger(__name__)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
    settings: Settings = app.state.settings
    lifecycle: Lifecycle = app.state.lifecycle
    lifecycle.drain_on_signals()

    async with AsyncExitStack() as stack:
        services = await stack.enter_async_context(open_services(settings, lifecycle))
        cpu = CPUPool(workers=settings.cpu_workers)
        stack.callback(cpu.close)
        # Closed first: running jobs still need the services.
        job_queue = await stack.enter_async_context(open_job_queue(services))
        lifecycle.add_check("jobs", job_queue.readiness)
        background = await stack.enter_async_context(open_background_responses(services))
        models = [route.name for route in services.models.routes]
        stack.enter_context(settled_heap())  # what startup made is kept: collections skip it
        logger.info("started", environment=settings.environment, models=models)
        yield {"services": services, "jobs": job_queue, "cpu": cpu, "responses": background}
    logger.info("stopped")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings.log_level, settings.log_format)

    app = FastAPI(
        title=PROJECT_NAME,
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        generate_unique_id_function=operation_id,
{%- if cookiecutter.use_opentelemetry %}
        telemetry=REQUEST_TELEMETRY,
{%- endif %}
    )
    app.state.settings = settings
    app.state.lifecycle = Lifecycle(
        delay_s=settings.drain_delay_s,
        timeout_s=settings.drain_timeout_s,
        cache_s=settings.readiness_cache_s,
    )

    install_error_handlers(app)
    install_openapi(app, SECURITY)
    install_docs(app)
    app.include_router(root.router)
    app.include_router(health.router)
    app.include_router(generate.router)
    app.include_router(jobs.router)
    app.include_router(openai.router)
    app.include_router(responses.router)
{%- if cookiecutter.database != "none" %}
    install_database_error_handler(app)
    app.include_router(history.router)
{%- endif %}
{%- if cookiecutter.auth == "jwt" %}
    app.include_router(auth.router)
{%- endif %}
{%- if cookiecutter.use_websocket %}
    app.include_router(ws.router)
{%- endif %}
{%- if cookiecutter.use_graphql %}
    app.include_router(graphql.router_for(settings))
{%- endif %}

    # add_middleware wraps: the last one added runs first on the way in.
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST", "DELETE", "OPTIONS"],
            allow_headers=[
                "Authorization",
                "Cache-Control",
                "Content-Type",
                "X-API-Key",
                REQUEST_ID_HEADER,
            ],
            expose_headers=[
                REQUEST_ID_HEADER,
                "Retry-After",
                "X-Cache",
                "Location",
                *LIMIT_HEADERS,
            ],
        )
    if settings.force_https:
        app.add_middleware(HTTPSRedirectMiddleware)
    if settings.trusted_hosts:  # checked before any redirect names the host
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=settings.trusted_hosts)
{%- if cookiecutter.use_opentelemetry %}
    trace_requests(app)  # when OTEL_* names an exporter: spans, with the request id
{%- endif %}
    app.add_middleware(
        EdgeMiddleware,
        lifecycle=app.state.lifecycle,
        max_body_bytes=settings.max_body_bytes,
        hsts=settings.force_https,
    )
{%- if cookiecutter.use_prometheus %}
    install_metrics(app)  # GET /metrics; outermost, so it counts what clients got
{%- endif %}
    return app


app = create_app()
