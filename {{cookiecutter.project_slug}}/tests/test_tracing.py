"""Tracing: the span tree of a proxied request (in-memory exporter), the request id on
every span and the trace id in the logs; and a served process that traces only when
OTEL_* names an exporter.

The in-process tests install this process's tracer provider once, as the service would
from OTEL_*; the tests after them in the run are traced too (they do not notice).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from opentelemetry import trace
{%- if cookiecutter.database != "none" %}
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
{%- endif %}
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, format_span_id, format_trace_id

from {{ cookiecutter.project_slug }}.core.tracing import REQUEST_ID_ATTRIBUTE, start_tracing
from {{ cookiecutter.project_slug }}.main import create_app

from .conftest import AUTH, AUTH_ENV, job_worker, make_settings, upstream_settings
from .servers import service_process
from .upstream import Upstream

CHAT = {
    "model": "upstream-model",
    "messages": [{"role": "user", "content": "Say hi"}],
    "max_tokens": 7,
    "temperature": 0.2,
}


@pytest.fixture(scope="module")
def exporter() -> InMemorySpanExporter:
    """Spans of this process, batched as the service batches them for OTLP."""
    exporter = InMemorySpanExporter()
    current = trace.get_tracer_provider()
    if isinstance(current, TracerProvider):  # started already in this run
        current.add_span_processor(BatchSpanProcessor(exporter))
    else:
        start_tracing([exporter])
    return exporter


def finished(exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    provider = trace.get_tracer_provider()
    assert isinstance(provider, TracerProvider)
    provider.force_flush()
    return list(exporter.get_finished_spans())


def trace_of(spans: list[ReadableSpan], root: ReadableSpan) -> list[ReadableSpan]:
    assert root.context is not None
    return [
        span for span in spans if span.context and span.context.trace_id == root.context.trace_id
    ]


def server_span(spans: list[ReadableSpan], name: str) -> ReadableSpan:
    found = [span for span in spans if span.kind is SpanKind.SERVER and span.name == name]
    assert len(found) == 1, [span.name for span in spans]
    return found[0]


def children(spans: list[ReadableSpan], parent: ReadableSpan) -> list[ReadableSpan]:
    assert parent.context is not None
    return [span for span in spans if span.parent and span.parent.span_id == parent.context.span_id]


def attributes(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def db_system(span: ReadableSpan) -> Any:
    """The database a client span talks to (older or newer semantic conventions)."""
    return attributes(span).get("db.system.name", attributes(span).get("db.system"))


def logged(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def model_call_tree(spans: list[ReadableSpan], route: str) -> tuple[ReadableSpan, ...]:
    """server -> model call -> upstream HTTP, as one trace; (server, model call, HTTP)."""
    server = server_span(spans, f"POST {route}")
    traced = trace_of(spans, server)
    calls = [span for span in children(traced, server) if span.name == "chat upstream-model"]
    assert len(calls) == 1, [span.name for span in traced]
    model = calls[0]
    upstream_calls = [span for span in children(traced, model) if span.kind is SpanKind.CLIENT]
    assert len(upstream_calls) == 1, [span.name for span in traced]
    return server, model, upstream_calls[0]


def test_proxied_chat_completion_is_one_trace_with_gen_ai_attributes(
    exporter: InMemorySpanExporter,
    upstream: Upstream,
    upstream_url: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with TestClient(create_app(upstream_settings(upstream_url))) as client:
        exporter.clear()
        capsys.readouterr()
        headers = {**AUTH, "X-Request-ID": "trace-1"}
        response = client.post("/v1/chat/completions", json=CHAT, headers=headers)
        assert response.status_code == 200
    spans = finished(exporter)
    server, model, http = model_call_tree(spans, "/v1/chat/completions")

    assert attributes(server)["http.route"] == "/v1/chat/completions"
    assert attributes(server)["http.response.status_code"] == 200
    assert model.kind is SpanKind.CLIENT
    gen_ai = {key: value for key, value in attributes(model).items() if key.startswith("gen_ai.")}
    assert gen_ai == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.system": "openai",
        "gen_ai.request.model": "upstream-model",
        "gen_ai.request.max_tokens": 7,
        "gen_ai.request.temperature": 0.2,
        "gen_ai.response.model": "upstream-model",
        "gen_ai.usage.input_tokens": 3,
        "gen_ai.usage.output_tokens": 5,
        "gen_ai.response.finish_reasons": ("stop",),
    }
    url = attributes(http).get("url.full") or attributes(http)["http.url"]
    assert url == f"{upstream_url}/v1/chat/completions"
    # The trace goes on upstream: the model server gets the upstream call's context.
    assert server.context is not None
    assert http.context is not None
    traceparent = upstream.headers[-1]["traceparent"]
    assert traceparent.split("-")[1:3] == [
        format_trace_id(server.context.trace_id),
        format_span_id(http.context.span_id),
    ]
    traced = trace_of(spans, server)
    assert {attributes(span).get(REQUEST_ID_ATTRIBUTE) for span in traced} == {"trace-1"}
{%- if cookiecutter.use_redis %}
    # The rate limits are settled in Redis, within the request.
    assert "redis" in {db_system(span) for span in traced}
{%- endif %}

    access = [line for line in logged(capsys.readouterr().out) if line.get("event") == "request"]
    assert len(access) == 1
    assert access[0]["request_id"] == "trace-1"
    assert access[0]["trace_id"] == format_trace_id(server.context.trace_id)
    assert access[0]["span_id"] == format_span_id(server.context.span_id)
    print(f"{len(traced)} spans in the trace: {sorted(span.name for span in traced)}")


def test_streamed_completion_is_the_same_tree(
    exporter: InMemorySpanExporter,
    upstream: Upstream,
    upstream_url: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with TestClient(create_app(upstream_settings(upstream_url))) as client:
        exporter.clear()
        capsys.readouterr()
        headers = {**AUTH, "X-Request-ID": "trace-stream"}
        response = client.post(
            "/v1/chat/completions", json={**CHAT, "stream": True}, headers=headers
        )
        assert response.status_code == 200
        assert response.text.rstrip().endswith("data: [DONE]")
    _, model, _ = model_call_tree(finished(exporter), "/v1/chat/completions")
    assert attributes(model)["gen_ai.usage.output_tokens"] == 5
    assert attributes(model)[REQUEST_ID_ATTRIBUTE] == "trace-stream"
    # The stream is read in two tasks: the span's context must not leak or fail to reset.
    problems = [line for line in logged(capsys.readouterr().out) if line["level"] != "info"]
    assert problems == []


def test_failed_model_call_is_an_error_span(
    exporter: InMemorySpanExporter, upstream: Upstream, upstream_url: str
) -> None:
    upstream.default.status = 500
    with TestClient(create_app(upstream_settings(upstream_url, llm_max_retries=0))) as client:
        exporter.clear()
        response = client.post("/v1/chat/completions", json=CHAT, headers=AUTH)
        assert response.status_code >= 500
    spans = finished(exporter)
    server = server_span(spans, "POST /v1/chat/completions")
    model = next(span for span in children(spans, server) if span.name == "chat upstream-model")
    assert model.status.status_code is trace.StatusCode.ERROR
    assert attributes(model)["error.type"]
    assert "gen_ai.usage.output_tokens" not in attributes(model)


def test_job_run_is_a_span_with_the_request_id(exporter: InMemorySpanExporter) -> None:
    settings = make_settings()
    with TestClient(create_app(settings)) as client, job_worker(settings):
        exporter.clear()
        headers = {**AUTH, "X-Request-ID": "trace-job"}
        response = client.post("/api/v1/jobs", json={"prompt": "later"}, headers=headers)
        assert response.status_code == 202
        job_id = response.json()["id"]
        for _ in range(500):
            if client.get(f"/api/v1/jobs/{job_id}", headers=AUTH).json()["status"] == "succeeded":
                break
        else:
            pytest.fail("the job did not finish")
    spans = finished(exporter)
    runs = [span for span in spans if attributes(span).get("messaging.message.id") == job_id]
    assert len(runs) == 1
    run = runs[0]
    assert run.kind is SpanKind.CONSUMER
    assert run.parent is None  # its own trace: the request that queued it has ended
    assert attributes(run)[REQUEST_ID_ATTRIBUTE] == "trace-job"
    assert attributes(run)["job.outcome"] == "succeeded"
    calls = children(spans, run)
    assert [span.name for span in calls if span.name.startswith("chat ")] == [
        f"chat {settings.llm_model}"
    ]
    assert {attributes(span)[REQUEST_ID_ATTRIBUTE] for span in calls} == {"trace-job"}
{%- if cookiecutter.database != "none" %}


def trace_the_next_engine() -> None:
    """The SQLAlchemy instrumentation traces the first engine of a process (a served
    process has one); the tests make many, and want the next one traced."""
    instrumentor = SQLAlchemyInstrumentor()
    if instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.uninstrument()


def test_request_that_uses_the_database_has_sql_spans(exporter: InMemorySpanExporter) -> None:
    trace_the_next_engine()
    with TestClient(create_app(make_settings())) as client:
        exporter.clear()
        headers = {**AUTH, "X-Request-ID": "trace-sql"}
        assert client.post("/api/v1/jobs", json={"prompt": "x"}, headers=headers).status_code == 202
    spans = finished(exporter)
    traced = trace_of(spans, server_span(spans, "POST /api/v1/jobs"))
    sql = [span for span in traced if db_system(span) == "{{ cookiecutter.database }}"]
    assert any(span.name.startswith("INSERT") for span in sql), [span.name for span in traced]
    assert {attributes(span)[REQUEST_ID_ATTRIBUTE] for span in sql} == {"trace-sql"}
{%- endif %}


def test_probes_make_no_spans(exporter: InMemorySpanExporter) -> None:
    """Not traced: the probes, nor the client calls their checks make (in no request)."""
{%- if cookiecutter.database != "none" %}
    trace_the_next_engine()
{%- endif %}
    with TestClient(create_app(make_settings(readiness_cache_s=0))) as client:
        exporter.clear()
        for path in ("/health/live", "/health/ready", "/health/ready"):
            assert client.get(path).status_code == 200
    assert finished(exporter) == []


@pytest.fixture
def no_otel_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    """The served processes see only the OTEL_* variables a test gives them."""
    for name in list(os.environ):
        if name.startswith("OTEL_"):
            monkeypatch.delenv(name)


Records = list[dict[str, Any]]
Served = Callable[..., tuple[Records, Records, dict[str, str]]]


def json_records(output: str) -> Records:
    """Every JSON object in the output: log lines, and the console exporter's spans
    (indented over several lines)."""
    decoder = json.JSONDecoder()
    records, position = [], 0
    while (start := output.find("{", position)) != -1:
        try:
            record, position = decoder.raw_decode(output, start)
        except json.JSONDecodeError:
            position = start + 1
            continue
        records.append(record)
    return records


@pytest.fixture
def proxied_process(
    tmp_path: Path, upstream: Upstream, upstream_url: str, no_otel_variables: None
) -> Served:
    """Runs `python -m {{ cookiecutter.project_slug }}` with OTEL_* variables, sends one
    proxied request, and returns (its spans, its log lines, the upstream's headers)."""

    def run(**otel: str) -> tuple[Records, Records, dict[str, str]]:
        variables = {
            **AUTH_ENV,
            "LLM_PROVIDER": "openai",
            "LLM_BASE_URL": f"{upstream_url}/v1",
            "LLM_API_KEY": "sk-upstream",
            "LLM_MODEL": "upstream-model",
            **otel,
        }
        process: subprocess.Popen[str]
        with service_process(tmp_path, **variables) as (base_url, process):
            response = httpx.post(
                f"{base_url}/v1/chat/completions",
                json=CHAT,
                headers={**AUTH, "X-Request-ID": "served-1"},
                timeout=10,
            )
            assert response.status_code == 200
            process.send_signal(signal.SIGTERM)
            output, _ = process.communicate(timeout=20)
        records = json_records(output)
        spans = [record for record in records if "context" in record and "kind" in record]
        logs = [record for record in records if "event" in record]
        return spans, logs, upstream.headers[-1]

    return run


def test_served_process_exports_what_otel_variables_ask_for(proxied_process: Served) -> None:
    spans, logs, upstream_headers = proxied_process(
        OTEL_TRACES_EXPORTER="console", OTEL_SERVICE_NAME="traced-service"
    )
    names = {span["name"] for span in spans}
    assert {"POST /v1/chat/completions", "chat upstream-model"} <= names, names
    assert {span["resource"]["attributes"]["service.name"] for span in spans} == {"traced-service"}
    assert "traceparent" in upstream_headers
    server = next(span for span in spans if span["name"] == "POST /v1/chat/completions")
    access = next(line for line in logs if line.get("request_id") == "served-1")
    assert access["trace_id"] == server["context"]["trace_id"].removeprefix("0x")
    assert server["attributes"][REQUEST_ID_ATTRIBUTE] == "served-1"


@pytest.mark.parametrize(
    "otel",
    [
        pytest.param(
            {"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "console"}, id="sdk-disabled"
        ),
        pytest.param({}, id="no-exporter-named"),
        pytest.param({"OTEL_TRACES_EXPORTER": "none"}, id="exporter-none"),
    ],
)
def test_served_process_without_an_exporter_makes_no_spans(
    proxied_process: Served, otel: dict[str, str]
) -> None:
    spans, logs, upstream_headers = proxied_process(**otel)
    assert spans == []
    assert "traceparent" not in upstream_headers  # the upstream client is not instrumented
    assert not any("trace_id" in line for line in logs)
    assert any(line.get("event") == "request" for line in logs)
