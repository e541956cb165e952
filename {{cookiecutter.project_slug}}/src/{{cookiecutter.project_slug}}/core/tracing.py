{%- set clients = ["upstream HTTP"] %}
{%- if cookiecutter.database != "none" %}{% set clients = clients + ["SQL"] %}{% endif %}
{%- if cookiecutter.use_redis %}{% set clients = clients + ["Redis"] %}{% endif -%}
"""OpenTelemetry tracing: requests, model calls and jobs, and their {{ clients | join(", ") }} calls.

Configured by the standard OTEL_* variables only. A process traces when they name an
exporter (OTEL_TRACES_EXPORTER, or an OTLP endpoint: OTEL_EXPORTER_OTLP_ENDPOINT or
OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) and OTEL_SDK_DISABLED is not true. Otherwise nothing
is installed (no tracer provider, no instrumentation, no middleware): spans that are
made and then dropped would still cost CPU on every request.

Server spans are FastAPI's own (its telemetry starts once a tracer provider is set);
client spans ({{ clients | join(", ") }}) come from the OpenTelemetry instrumentations;
model-call spans (with the `gen_ai.*` attributes) and job spans from `TracingObserver`.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator, MutableMapping, Sequence
from contextlib import contextmanager
from contextvars import Token
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from fastapi import FastAPI
from fastapi.telemetry import TelemetryConfig
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.instrumentation.aiohttp_client import AioHttpClientInstrumentor
{%- if cookiecutter.use_redis %}
from opentelemetry.instrumentation.redis import RedisInstrumentor
{%- endif %}
{%- if cookiecutter.database != "none" %}
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
{%- endif %}
from opentelemetry.sdk.resources import OTELResourceDetector, Resource
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from opentelemetry.trace import Link, SpanKind, StatusCode, Tracer, format_span_id, format_trace_id
from opentelemetry.util.types import Attributes
from starlette.types import ASGIApp, Receive, Scope, Send
from structlog.types import EventDict

from .. import __version__
from .observe import ModelCall, Observer, joined

if TYPE_CHECKING:
    from ..services import Services

SERVICE_NAME = "{{ cookiecutter.project_slug | replace('_', '-') }}"
REQUEST_ID_ATTRIBUTE = "request.id"
UNTRACED_PATHS = ("/health", "/metrics")  # probes and scrapes: many, and never interesting


def untraced(scope: MutableMapping[str, Any]) -> bool:
    return str(scope.get("path", "")).startswith(UNTRACED_PATHS)


# FastAPI(telemetry=...): server spans only (no span per dependency, endpoint and
# serialisation: they double the spans of a request), exporters from this module.
REQUEST_TELEMETRY: TelemetryConfig = {
    "operation_spans": False,
    "auto_configure": False,
    "exclude": untraced,
}


class ConfigurationError(RuntimeError):
    """OTEL_* names an exporter that is not installed."""


def exporters_from_environment() -> list[SpanExporter]:
    """The span exporters OTEL_* names; none when tracing is off."""
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return []
    names = os.environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if not names and (
        os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    ):
        names = "otlp"
    return [exporter(name) for name in names.split(",") if name.strip() not in {"", "none"}]


def exporter(name: str) -> SpanExporter:
    """The exporter an OTEL_TRACES_EXPORTER name stands for (its entry point), made from
    OTEL_EXPORTER_OTLP_* and the other variables that exporter reads."""
    name = name.strip()
    if name == "otlp":
        protocol = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or os.environ.get(
            "OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"
        )
        name = "otlp_proto_grpc" if protocol.strip() == "grpc" else "otlp_proto_http"
    found = entry_points(group="opentelemetry_traces_exporter", name=name)
    if not found:
        raise ConfigurationError(
            f"OTEL_TRACES_EXPORTER: no span exporter '{name}' is installed "
            "(this service ships otlp over http/protobuf, and console)"
        )
    made: SpanExporter = next(iter(found)).load()()
    return made


def service_resource() -> Resource:
    """This service, named by OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES when set."""
    ours = Resource.create({"service.name": SERVICE_NAME, "service.version": __version__})
    return ours.merge(OTELResourceDetector().detect())  # the variables win


class WithoutOrphanClientSpans(Sampler):
    """Drops client spans that start no trace of a request or job: readiness checks,
    job-queue polling, pool pings. Every other span is sampled by `sampler`
    (OTEL_TRACES_SAMPLER's). Model calls always count: they are work someone asked for."""

    def __init__(self, sampler: Sampler) -> None:
        self.sampler = sampler

    def should_sample(
        self,
        parent_context: otel_context.Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: trace.TraceState | None = None,
    ) -> SamplingResult:
        if (
            kind is SpanKind.CLIENT
            and not (attributes and "gen_ai.operation.name" in attributes)
            and not trace.get_current_span(parent_context).get_span_context().is_valid
        ):
            return SamplingResult(Decision.DROP)
        return self.sampler.should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state
        )

    def get_description(self) -> str:
        return f"WithoutOrphanClientSpans({self.sampler.get_description()})"


class RequestIdSpans(SpanProcessor):
    """Gives every span the request id of its parent span, so all spans of a request
    (or a job) carry the id that the server span (or job span) got."""

    def on_start(self, span: Span, parent_context: otel_context.Context | None = None) -> None:
        parent = trace.get_current_span(parent_context)
        if isinstance(parent, ReadableSpan) and parent.attributes:
            request_id = parent.attributes.get(REQUEST_ID_ATTRIBUTE)
            if request_id is not None:
                span.set_attribute(REQUEST_ID_ATTRIBUTE, request_id)

    def on_end(self, span: ReadableSpan) -> None:
        return None


def start_tracing(exporters: Sequence[SpanExporter]) -> TracerProvider:
    """Install this process's tracer provider, batching spans to `exporters`, and trace
    the upstream HTTP clients. Once per process (the provider is global)."""
    provider = TracerProvider(resource=service_resource())
    provider.sampler = WithoutOrphanClientSpans(provider.sampler)  # before any tracer exists
    provider.add_span_processor(RequestIdSpans())
    for each in exporters:
        provider.add_span_processor(BatchSpanProcessor(each))
    trace.set_tracer_provider(provider)
    instrumentor = AioHttpClientInstrumentor()
    if not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument(tracer_provider=provider)  # every ClientSession made from now
    return provider


def tracing_provider() -> TracerProvider | None:
    """This process's tracer provider, started from OTEL_* on first use; None when off."""
    current = trace.get_tracer_provider()
    if isinstance(current, TracerProvider):  # started already (or by a test, or a distro)
        return current
    exporters = exporters_from_environment()
    return start_tracing(exporters) if exporters else None


class RequestIdOnSpans:
    """Pure ASGI, inside the edge: the request id on the server span (`RequestIdSpans`
    passes it on to the spans below)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_id = scope.get("state", {}).get("request_id")
        if request_id:  # not for the lifespan
            trace.get_current_span().set_attribute(REQUEST_ID_ATTRIBUTE, request_id)
        await self.app(scope, receive, send)


def trace_requests(app: FastAPI) -> None:
    """When this process traces, server spans carry the request id (added after the edge)."""
    if tracing_provider() is not None:
        app.add_middleware(RequestIdOnSpans)


def add_trace_ids(logger: object, method_name: str, event_dict: EventDict) -> EventDict:
    """structlog: the current span's trace and span ids on the log line, when there is one."""
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        event_dict["trace_id"] = format_trace_id(context.trace_id)
        event_dict["span_id"] = format_span_id(context.span_id)
    return event_dict


def requested(call: ModelCall) -> dict[str, Any]:
    """The OpenTelemetry GenAI attributes known before the call."""
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": call.operation,
        # The wire API of every upstream but the built-in fake.
        "gen_ai.provider.name": "fake" if call.upstream == "fake" else "openai",
        "gen_ai.request.model": call.model,
    }
    attributes["gen_ai.system"] = attributes["gen_ai.provider.name"]  # older conventions
    if call.upstream != "fake":
        address = urlsplit(f"//{call.upstream}")
        if address.hostname:
            attributes["server.address"] = address.hostname
        if address.port:
            attributes["server.port"] = address.port
    if call.max_tokens is not None:
        attributes["gen_ai.request.max_tokens"] = call.max_tokens
    if call.temperature is not None:
        attributes["gen_ai.request.temperature"] = call.temperature
    return attributes


def answered(call: ModelCall) -> dict[str, Any]:
    """The attributes the call's end fills in."""
    attributes: dict[str, Any] = {"cache.hit": call.cached}
    if call.response_model:
        attributes["gen_ai.response.model"] = call.response_model
    if call.usage is not None:
        attributes["gen_ai.usage.input_tokens"] = call.usage.prompt_tokens
        attributes["gen_ai.usage.output_tokens"] = call.usage.completion_tokens
    if call.finish_reasons:
        attributes["gen_ai.response.finish_reasons"] = list(call.finish_reasons)
    if call.error is not None:
        attributes["error.type"] = call.error
    return attributes


class TracingObserver(Observer):
    """A span per model call (`{operation} {model}`) and per job run."""

    def __init__(self, tracer: Tracer) -> None:
        self.tracer = tracer
        self.current: dict[int, Token[otel_context.Context]] = {}  # calls whose span is current

    @contextmanager
    def model_call(self, call: ModelCall) -> Iterator[ModelCall]:
        span = self.tracer.start_span(
            f"{call.operation} {call.model}", kind=SpanKind.CLIENT, attributes=requested(call)
        )
        self.current[id(call)] = otel_context.attach(trace.set_span_in_context(span))
        try:
            yield call
        except BaseException as exc:
            span.record_exception(exc)
            span.set_status(StatusCode.ERROR, call.error)
            raise
        finally:
            span.set_attributes(answered(call))
            span.end()
            self._leave(call)

    def stream_opened(self, call: ModelCall) -> None:
        # The upstream call has begun under the span. The rest of a stream may be read in
        # another task, where this task's context token could not be reset: reset it now.
        self._leave(call)

    def _leave(self, call: ModelCall) -> None:
        """The call's span stops being the current one (if it still is)."""
        token = self.current.pop(id(call), None)
        if token is not None:
            otel_context.detach(token)

    @contextmanager
    def job_run(self, job_id: str, request_id: str | None) -> Iterator[None]:
        attributes = {"messaging.operation.type": "process", "messaging.message.id": job_id}
        if request_id:
            attributes[REQUEST_ID_ATTRIBUTE] = request_id
        with self.tracer.start_as_current_span(
            "run job",
            context=otel_context.Context(),  # a trace of its own: the request has ended
            kind=SpanKind.CONSUMER,
            attributes=attributes,
        ):
            yield

    def job_finished(self, outcome: str) -> None:
        span = trace.get_current_span()  # the job's, when it ran under `job_run`
        span.set_attribute("job.outcome", outcome)
        if outcome != "succeeded":
            span.set_status(StatusCode.ERROR, f"job {outcome}")


def attach_tracing(services: Services) -> None:
    """Trace model calls and jobs{% if cookiecutter.database != "none" %}, the database{% endif %}{% if cookiecutter.use_redis %}, Redis{% endif %} when this process traces."""
    provider = tracing_provider()
    if provider is None:
        return
    # Exported when the services close: uvicorn ends a SIGTERM by re-raising the signal,
    # so the exit handler that would flush the last spans never runs.
    services.stack.push_async_callback(asyncio.to_thread, provider.force_flush)
    tracer = provider.get_tracer(__name__, __version__)
    services.observer = joined(services.observer, TracingObserver(tracer))
{%- if cookiecutter.database != "none" %}
    sql = SQLAlchemyInstrumentor()
    if not sql.is_instrumented_by_opentelemetry:  # it traces one engine: a process has one
        sql.instrument(
            engine=services.database.engine.sync_engine,
            tracer_provider=provider,
            # It declares SQLAlchemy < 2.1 but only needs the engine events 2.1 keeps
            # (tests/test_tracing.py checks the spans).
            skip_dep_check=True,
        )
{%- endif %}
{%- if cookiecutter.use_redis %}
    RedisInstrumentor.instrument_client(services.redis, tracer_provider=provider)
{%- endif %}
