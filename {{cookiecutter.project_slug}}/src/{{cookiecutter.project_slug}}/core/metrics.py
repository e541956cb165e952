"""Prometheus metrics: GET /metrics, the HTTP series and the LLM series.

The HTTP series are recorded by `core/http_metrics.py`. The LLM series are recorded
by `PrometheusObserver`, which `attach_metrics` joins to the services' observer (see
core/observe.py), so the code doing the work never imports this module. The model series
are named after OpenTelemetry's GenAI semantic conventions. Every label value is bounded:
configured model names, upstream labels, error codes and fixed outcomes.

With several worker processes, each writes its samples to PROMETHEUS_MULTIPROC_DIR
(`core/metrics_files.py` prepares it) and a scrape of any of them reads them all; each
gauge says how the values of the processes combine.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING

from fastapi import APIRouter, FastAPI, Request, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
{%- if cookiecutter.use_redis %}
    start_http_server,
{%- endif %}
)
from starlette.concurrency import run_in_threadpool

from ..jobs.base import JobQueue
from .http_metrics import HTTPMetricsMiddleware
{%- if cookiecutter.use_redis %}
from .logging import get_logger
{%- endif %}
from .metrics_files import MULTIPROC_DIR
from .observe import ModelCall, Observer, joined

if TYPE_CHECKING:
    from ..services import Services
{%- if cookiecutter.use_redis %}
    from ..settings import Settings

logger = get_logger(__name__)
{%- endif %}

# Bucket boundaries the GenAI semantic conventions advise.
TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304)
DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48)
FIRST_TOKEN_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
PER_TOKEN_BUCKETS = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5)
BREAKER_STATES = {"closed": 0, "half_open": 1, "open": 2}
MODEL = ("gen_ai_operation_name", "gen_ai_request_model")

TOKEN_USAGE = Histogram(
    "gen_ai_client_token_usage",
    "Tokens per model call, by type: input (prompt) or output (completion).",
    [*MODEL, "gen_ai_token_type"],
    buckets=TOKEN_BUCKETS,
)
OPERATION_DURATION = Histogram(
    "gen_ai_client_operation_duration_seconds",
    "Duration of model calls to the upstream, by error type (empty: it succeeded).",
    [*MODEL, "error_type"],
    buckets=DURATION_BUCKETS,
)
TIME_TO_FIRST_TOKEN = Histogram(
    "gen_ai_server_time_to_first_token_seconds",
    "Streams: time from the call to its first output token.",
    MODEL,
    buckets=FIRST_TOKEN_BUCKETS,
)
TIME_PER_OUTPUT_TOKEN = Histogram(
    "gen_ai_server_time_per_output_token_seconds",
    "Streams: time per output token after the first.",
    MODEL,
    buckets=PER_TOKEN_BUCKETS,
)
UPSTREAM_ERRORS = Counter(
    "llm_upstream_errors",
    "Failed attempts at an upstream (retried or not), by error code.",
    ["upstream", "error_type"],
)
UPSTREAM_RETRIES = Counter(
    "llm_upstream_retries",
    "Attempts at an upstream repeated after a retryable failure.",
    ["upstream", "error_type"],
)
CACHE_LOOKUPS = Counter(
    "llm_cache_lookups", "Response cache lookups, by result: hit or miss.", ["result"]
)
RATE_LIMITED = Counter(
    "llm_rate_limited",
    "Requests refused with 429 by the caller's rate limit, by dimension: requests or tokens.",
    ["dimension"],
)
# The worst state among the live processes: each has a breaker of its own.
BREAKER_STATE = Gauge(
    "llm_upstream_breaker_state",
    "Circuit breaker of each upstream: 0 closed, 1 half-open (a trial call), 2 open.",
    ["upstream"],
    multiprocess_mode="livemax",
)
UPSTREAM_IN_FLIGHT = Gauge(
    "llm_upstream_in_flight",
    "Calls holding a bulkhead slot of the upstream (LLM_MAX_CONCURRENCY per process).",
    ["upstream"],
    multiprocess_mode="livesum",
)
UPSTREAM_WAITING = Gauge(
    "llm_upstream_waiting",
    "Calls waiting for a bulkhead slot of the upstream.",
    ["upstream"],
    multiprocess_mode="livesum",
)
{%- if cookiecutter.use_redis %}
# The queue is in Redis, shared: the most recent count any process read is the truth.
JOB_QUEUE_DEPTH = Gauge(
    "llm_job_queue_depth",
    "Jobs queued and not yet taken by a worker.",
    multiprocess_mode="mostrecent",
)
{%- else %}
# Each process runs a queue of its own: the depth is their sum.
JOB_QUEUE_DEPTH = Gauge(
    "llm_job_queue_depth",
    "Jobs queued and not yet taken by a worker.",
    multiprocess_mode="livesum",
)
{%- endif %}
JOBS_FINISHED = Counter("llm_jobs_finished", "Background jobs ended, by outcome.", ["outcome"])
{%- if cookiecutter.use_websocket or cookiecutter.use_graphql %}
WEBSOCKET_SESSIONS = Counter("llm_websocket_sessions", "WebSocket sessions opened.")
WEBSOCKET_SESSIONS_ACTIVE = Gauge(
    "llm_websocket_sessions_active", "WebSocket sessions open now.", multiprocess_mode="livesum"
)
{%- endif %}


class PrometheusObserver(Observer):
    """Records what the services report as Prometheus samples."""

    def __init__(self) -> None:
        self._hits = CACHE_LOOKUPS.labels("hit")
        self._misses = CACHE_LOOKUPS.labels("miss")

    @contextmanager
    def model_call(self, call: ModelCall) -> Iterator[ModelCall]:
        try:
            yield call
        finally:
            if not call.cached:  # answered from the cache: counted by llm_cache_lookups
                record_model_call(call)

    def cache_lookup(self, *, hit: bool) -> None:
        (self._hits if hit else self._misses).inc()

    def rate_limited(self, dimension: str) -> None:
        RATE_LIMITED.labels(dimension).inc()

    def upstream_retry(self, upstream: str, error: str) -> None:
        UPSTREAM_RETRIES.labels(upstream, error).inc()

    def upstream_error(self, upstream: str, error: str) -> None:
        UPSTREAM_ERRORS.labels(upstream, error).inc()

    def breaker_state(self, upstream: str, state: str) -> None:
        BREAKER_STATE.labels(upstream).set(BREAKER_STATES[state])

    def upstream_slots(self, upstream: str, *, in_flight: int, waiting: int) -> None:
        UPSTREAM_IN_FLIGHT.labels(upstream).set(in_flight)
        UPSTREAM_WAITING.labels(upstream).set(waiting)

    def job_queue_depth(self, depth: int) -> None:
        JOB_QUEUE_DEPTH.set(depth)

    def job_finished(self, outcome: str) -> None:
        JOBS_FINISHED.labels(outcome).inc()
{%- if cookiecutter.use_websocket or cookiecutter.use_graphql %}

    def websocket_session(self, *, opened: bool) -> None:
        if opened:
            WEBSOCKET_SESSIONS.inc()
            WEBSOCKET_SESSIONS_ACTIVE.inc()
        else:
            WEBSOCKET_SESSIONS_ACTIVE.dec()
{%- endif %}


def record_model_call(call: ModelCall) -> None:
    ended = time.perf_counter()
    labels = (call.operation, call.model)
    OPERATION_DURATION.labels(*labels, call.error or "").observe(ended - call.started)
    output_tokens = 0
    if call.usage is not None:
        TOKEN_USAGE.labels(*labels, "input").observe(call.usage.prompt_tokens)
        if call.operation == "chat":
            output_tokens = call.usage.completion_tokens
            TOKEN_USAGE.labels(*labels, "output").observe(output_tokens)
    if call.first_token_at is not None:
        TIME_TO_FIRST_TOKEN.labels(*labels).observe(call.first_token_at - call.started)
        if output_tokens > 1:
            per_token = (ended - call.first_token_at) / (output_tokens - 1)
            TIME_PER_OUTPUT_TOKEN.labels(*labels).observe(per_token)


def attach_metrics(services: Services) -> None:
    """Record the services' reports; a worker process leaving takes its live gauges along."""
    services.observer = joined(services.observer, PrometheusObserver())
    if MULTIPROC_DIR in os.environ:
        services.stack.callback(multiprocess.mark_process_dead, os.getpid())


def install_metrics(app: FastAPI) -> None:
    """The HTTP series and GET /metrics; added last, so they count what clients got."""
    app.add_middleware(HTTPMetricsMiddleware)
    app.include_router(router)


router = APIRouter()


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    """The Prometheus text format; open, like the health probes."""
    jobs: JobQueue = request.state.jobs
    with suppress(Exception):  # the queue unreachable: its last depth stays
        JOB_QUEUE_DEPTH.set(await jobs.depth())
    return Response(await run_in_threadpool(exposition), media_type=CONTENT_TYPE_LATEST)


def exposition() -> bytes:
    """Every process's samples with several workers; else this process's."""
    if MULTIPROC_DIR not in os.environ:
        return generate_latest(REGISTRY)
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return generate_latest(registry)
{%- if cookiecutter.use_redis %}


def serve_worker_metrics(settings: Settings) -> None:
    """The worker process's own GET /metrics on HOST:WORKER_METRICS_PORT, from a thread.

    A port already taken (a second worker on one host) costs the metrics, not the jobs.
    """
    port = settings.worker_metrics_port
    if not port:
        return
    try:
        start_http_server(port, addr=settings.host)
    except OSError as exc:
        logger.warning("worker metrics not served", port=port, error=str(exc))
{%- endif %}
