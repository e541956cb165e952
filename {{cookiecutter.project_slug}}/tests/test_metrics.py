"""GET /metrics of the served service, with two uvicorn workers{% if cookiecutter.use_redis %} and the job worker process{% endif %}.

Real traffic of every kind goes through `python -m {{ cookiecutter.project_slug }}` (native, /v1,
streams, a failing upstream, refused calls, a job{% if cookiecutter.use_websocket %}, a WebSocket session{% endif %}), counted by the test
as it goes; each series then reads back the value the traffic gives it, summed over the
worker processes. Every metric name the dashboard and the alert rules query is in the scrape.
The route templates of the HTTP series are checked in-process, against the registry.
"""

from __future__ import annotations

import json
{%- if cookiecutter.use_redis %}
import os
{%- endif %}
import re
import signal
{%- if cookiecutter.use_redis %}
import subprocess
import sys
{%- endif %}
import time
{%- if cookiecutter.use_redis %}
import uuid
{%- endif %}
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
{%- if cookiecutter.use_websocket %}
from websockets.sync.client import connect
{%- endif %}

from {{ cookiecutter.project_slug }}.main import create_app

from .conftest import AUTH, AUTH_ENV, make_settings, parse_sse
from .servers import {% if cookiecutter.use_redis %}free_port, {% endif %}service_process{% if cookiecutter.use_redis %}, wait_until_up{% endif %}
from .upstream import Behaviour, Upstream

PROJECT = Path(__file__).resolve().parents[1]
DASHBOARD = PROJECT / "observability" / "grafana" / "dashboards" / "llm.json"
RULES = PROJECT / "observability" / "prometheus" / "rules.yml"
METRIC_NAME = re.compile(r"\b(?:gen_ai|llm|http)_[a-z0-9_]+\b")
# What in PromQL names labels, not series: selectors' matchers and grouping clauses.
NOT_SERIES = re.compile(r"\{[^}]*\}|\b(?:by|without|on|ignoring)\s*\([^)]*\)")
SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>.*)\})? (?P<value>\S+)$")
LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')
FLAKY = "flaky-model"  # served by the test upstream, which fails it
CHAT = {"model": "fake-model", "max_tokens": 16}
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
Headers = dict[str, str]


def parse(text: str) -> Samples:
    samples: Samples = {}
    for line in text.splitlines():
        match = SAMPLE.match(line)
        if match and not line.startswith("#"):
            labels = frozenset(LABEL.findall(match["labels"] or ""))
            samples[match["name"], labels] = float(match["value"])
    return samples


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of the samples of `name` whose labels include `labels`."""
    wanted = set(labels.items())
    return sum(value for (found, got), value in samples.items() if found == name and wanted <= got)


def scrape(url: str) -> tuple[str, Samples]:
    response = httpx.get(f"{url}/metrics", timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return response.text, parse(response.text)


class Traffic:
    """Calls the service on a new connection each (so both worker processes take some)
    and counts what came back by (route, status)."""

    def __init__(self, http: httpx.Client) -> None:
        self.http = http
        self.statuses: Counter[tuple[str, int]] = Counter()
        self.cache_hits = 0
        self.model_calls = 0  # answered by a model call (not from the cache)

    def post(self, path: str, body: dict[str, Any], headers: Headers = AUTH) -> httpx.Response:
        response = self.http.post(path, json=body, headers=headers)
        self.statuses[path, response.status_code] += 1
        if response.status_code == 200:
            if response.headers.get("X-Cache") == "HIT":
                self.cache_hits += 1
            else:
                self.model_calls += 1
        return response

    def wait_for_job(self, job_id: str) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            response = self.http.get(f"/api/v1/jobs/{job_id}", headers=AUTH)
            self.statuses["/api/v1/jobs/{job_id}", response.status_code] += 1
            if response.json()["status"] in {"succeeded", "failed"}:
                assert response.json()["status"] == "succeeded"
                return
            time.sleep(0.1)
        pytest.fail("the job did not finish")


def http_requests() -> Counter[tuple[str, str, str]]:
    """http_requests_total of this process's registry by (handler, method, status)."""
    counts: Counter[tuple[str, str, str]] = Counter()
    for metric in REGISTRY.collect():
        for sample in metric.samples:
            if sample.name == "http_requests_total":
                labels = sample.labels
                counts[labels["handler"], labels["method"], labels["status"]] += int(sample.value)
    return counts


def test_http_series_are_labelled_by_route_template_routed_or_refused_before() -> None:
    before = http_requests()
    with TestClient(create_app(make_settings(max_body_bytes=1024))) as client:
        assert client.get("/v1/models/fake-model", headers=AUTH).status_code == 200
        assert client.get("/api/v1/jobs/no-such-job", headers=AUTH).status_code == 404
        assert client.delete("/v1/models", headers=AUTH).status_code == 405
        too_large = client.post("/api/v1/generate", content=b"x" * 2048, headers=AUTH)
        assert too_large.status_code == 413  # answered before any route ran
        assert client.get("/no/such/route").status_code == 404  # a series per path: none
        assert client.get("/health/live").status_code == 200  # probes are not traffic
    counted = http_requests() - before
    assert counted == {
        ("/v1/models/{model_id:path}", "GET", "200"): 1,
        ("/api/v1/jobs/{job_id}", "GET", "404"): 1,
        ("/v1/models", "DELETE", "405"): 1,
        ("/api/v1/generate", "POST", "413"): 1,
    }
    assert REGISTRY.get_sample_value("http_requests_inprogress") == 0


@pytest.fixture
def metrics_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "prometheus"
    folder.mkdir()
    (folder / "counter_1.db").write_bytes(b"left by an earlier run")  # unreadable if kept
    return folder


def test_every_series_adds_up_over_two_workers(
    tmp_path: Path, metrics_dir: Path, upstream: Upstream, upstream_url: str
) -> None:
    upstream.default = Behaviour(status=500)  # every call to the flaky model fails
    models = [
        {"name": "fake-model"},
        {"name": FLAKY, "provider": "openai", "base_url": f"{upstream_url}/v1", "api_key": "sk-x"},
    ]
    env = {
        **AUTH_ENV,
        "WORKERS": "2",
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        "LLM_MODELS": json.dumps(models),
        "LLM_MAX_RETRIES": "1",
        "LLM_BREAKER_MIN_CALLS": "1",
        "FAKE_LLM_TOKEN_LATENCY_MS": "20",
        "RATE_LIMIT_RPM": "10000",
        "RATE_LIMIT_TPM": "1000",  # per process: concurrent calls of 600 tokens overflow it
{%- if cookiecutter.use_redis %}
        "REDIS_KEY_PREFIX": f"test-metrics-{uuid.uuid4().hex[:8]}:",
{%- endif %}
    }
{%- if cookiecutter.use_redis %}
    worker_port = free_port()
{%- endif %}
    no_reuse = httpx.Limits(max_keepalive_connections=0)  # a new connection per call
    with (
        service_process(tmp_path, **env) as (base_url, process),
        httpx.Client(base_url=base_url, timeout=30, limits=no_reuse) as http,
    ):
        assert not (metrics_dir / "counter_1.db").exists(), "the folder was not emptied"
        traffic = Traffic(http)
        started = time.perf_counter()
        prompts = [{"prompt": f"native {n}", "max_tokens": 16} for n in range(6)]
        with ThreadPoolExecutor(6) as pool:
            answers = list(pool.map(lambda body: traffic.post("/api/v1/generate", body), prompts))
        assert {answer.status_code for answer in answers} == {200}
        for _ in range(2):  # temperature 0: cached (each process keeps its own cache)
            traffic.post("/api/v1/generate", {"prompt": "same", "max_tokens": 16, "temperature": 0})
        for n in range(3):
            chat = {**CHAT, "messages": [{"role": "user", "content": f"chat {n}"}]}
            assert traffic.post("/v1/chat/completions", chat).status_code == 200
        native = traffic.post("/api/v1/generate/stream", {"prompt": "stream", "max_tokens": 16})
        assert native.status_code == 200
        assert parse_sse(native.text)[-1]
        streamed = traffic.post(
            "/v1/chat/completions",
            {**CHAT, "messages": [{"role": "user", "content": "s"}], "stream": True},
        )
        assert streamed.text.rstrip().endswith("data: [DONE]")
        failed = traffic.post("/v1/chat/completions", {**chat, "model": FLAKY})
        assert failed.status_code >= 500
{%- if cookiecutter.auth != "none" %}
        assert traffic.post("/api/v1/generate", {"prompt": "x"}, headers={}).status_code == 401
{%- endif %}
        job = traffic.post("/api/v1/jobs", {"prompt": "a job", "max_tokens": 16})
        assert job.status_code == 202
{%- if cookiecutter.use_redis %}
        worker = start_worker(tmp_path, env, worker_port)
{%- endif %}
        traffic.wait_for_job(job.json()["id"])
{%- if cookiecutter.use_websocket %}
        ws_url = base_url.replace("http://", "ws://") + "/ws/chat"
        with connect(ws_url, additional_headers=AUTH) as ws:
            ws.send(json.dumps({"type": "prompt", "prompt": "over ws", "max_tokens": 8}))
            while json.loads(ws.recv(timeout=10))["type"] not in {"done", "error"}:
                pass
{%- endif %}
        with ThreadPoolExecutor(8) as pool:  # last: the token budget is spent for a minute
            greedy = {"prompt": "greedy", "max_tokens": 600}
            refused = list(pool.map(lambda _: traffic.post("/api/v1/generate", greedy), range(8)))
        assert 429 in {r.status_code for r in refused}, "no call was rate limited"
        print(f"traffic: {time.perf_counter() - started:.2f} s, {dict(traffic.statuses)}")

        text, samples = wait_for_scrape(base_url, "llm_websocket_sessions_active")
{%- if cookiecutter.use_redis %}
        worker_text, worker_samples = scrape(f"http://127.0.0.1:{worker_port}")
{%- endif %}
        pids = {path.stem.rsplit("_", 1)[-1] for path in metrics_dir.glob("*.db")}
        print(f"metrics files of processes {sorted(pids)}")
        assert len(pids) == 2, "the two workers do not share the metrics folder"

        # HTTP series: every (route, status) the test saw, no more.
        for (path, status), count in traffic.statuses.items():
            served = total(samples, "http_requests_total", handler=path, status=str(status))
            assert served == count, (path, status)
        requests = sum(traffic.statuses.values())
        assert total(samples, "http_requests_total") == requests
        assert total(samples, "http_request_duration_seconds_count") == requests
        assert total(samples, "http_requests_inprogress") == 0
        assert total(samples, "http_requests_total", handler="/metrics") == 0

        # Model calls: the successful ones by token type, streams with their timings.
        ws_calls = {{ 1 if cookiecutter.use_websocket else 0 }}
        job_calls = {{ 0 if cookiecutter.use_redis else 1 }}  # {% if cookiecutter.use_redis %}run by the worker process{% else %}run inside the API{% endif %}
        calls = traffic.model_calls + ws_calls + job_calls
        ok = {"gen_ai_request_model": "fake-model", "error_type": ""}
        assert total(samples, "gen_ai_client_operation_duration_seconds_count", **ok) == calls
        for kind in ("input", "output"):
            usage = total(samples, "gen_ai_client_token_usage_count", gen_ai_token_type=kind)
            assert usage == calls, kind
        assert total(samples, "gen_ai_client_token_usage_sum", gen_ai_token_type="output") >= calls
        assert total(samples, "gen_ai_server_time_to_first_token_seconds_count") == 2 + ws_calls
        assert total(samples, "gen_ai_server_time_per_output_token_seconds_count") == 2 + ws_calls
        assert total(samples, "gen_ai_server_time_to_first_token_seconds_sum") > 0

        # The failing upstream: two attempts (one retry), one failed call, its breaker open.
        flaky = upstream_label(upstream_url)
        duration = "gen_ai_client_operation_duration_seconds_count"
        assert total(samples, duration, gen_ai_request_model=FLAKY) == 1
        assert total(samples, duration, gen_ai_request_model=FLAKY, error_type="") == 0
        assert total(samples, "llm_upstream_errors_total", upstream=flaky) == 2
        assert total(samples, "llm_upstream_retries_total", upstream=flaky) == 1
        assert total(samples, "llm_upstream_breaker_state", upstream=flaky) == 2  # open
        assert total(samples, "llm_upstream_breaker_state", upstream="fake") == 0  # closed
        assert total(samples, "llm_upstream_in_flight", upstream="fake") == 0
        assert total(samples, "llm_upstream_waiting", upstream="fake") == 0

        # The cache, the rate limit, the job queue{% if cookiecutter.use_websocket %}, the WebSocket session{% endif %}.
        assert total(samples, "llm_cache_lookups_total", result="hit") == traffic.cache_hits
        assert total(samples, "llm_cache_lookups_total", result="miss") == 2 - traffic.cache_hits
        rejected = sum(count for (_, status), count in traffic.statuses.items() if status == 429)
        assert total(samples, "llm_rate_limited_total", dimension="tokens") == rejected
        assert total(samples, "llm_rate_limited_total", dimension="requests") == 0
        assert total(samples, "llm_job_queue_depth") == 0
{%- if cookiecutter.use_redis %}
        assert total(samples, "llm_jobs_finished_total") == 0  # not run here
        assert total(worker_samples, "llm_jobs_finished_total", outcome="succeeded") == 1
        assert total(worker_samples, "gen_ai_client_operation_duration_seconds_count", **ok) == 1
        assert total(worker_samples, "gen_ai_client_token_usage_count") == 2  # input, output
{%- else %}
        assert total(samples, "llm_jobs_finished_total", outcome="succeeded") == 1
{%- endif %}
{%- if cookiecutter.use_websocket %}
        assert total(samples, "llm_websocket_sessions_total") == 1
{%- endif %}

        # What the dashboard and the alert rules query, the scrape{% if cookiecutter.use_redis %}s{% endif %} hold{% if not cookiecutter.use_redis %}s{% endif %}.
        exposed = {name for name, _ in samples}{% if cookiecutter.use_redis %} | {name for name, _ in worker_samples}{% endif %}
        for source, expressions in (
            (DASHBOARD.name, dashboard_expressions()),
            (RULES.name, rule_expressions()),
        ):
            queried = {name for expr in expressions for name in series_in(expr)}
            assert queried, f"{source} queries no metric"
            missing = sorted(queried - exposed)
            assert not missing, f"{source} queries series no scrape has: {missing}"
        assert text.count("# TYPE") > 10
{%- if cookiecutter.use_redis %}
        assert worker_text.count("# TYPE") > 10
{%- endif %}
{%- if cookiecutter.use_redis %}
        worker.terminate()
        worker.wait(timeout=30)
{%- endif %}

        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)
    live = sorted(path.name for path in metrics_dir.glob("gauge_live*.db"))
    assert not live, f"live gauges of stopped workers were kept: {live}"


{% if cookiecutter.use_redis -%}
def start_worker(folder: Path, env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    """The job worker process, its metrics on `port` and in no folder of the API's: it is
    scraped apart, not counted with the API's workers."""
    variables = {name: value for name, value in env.items() if name != "PROMETHEUS_MULTIPROC_DIR"}
    variables |= {"ENVIRONMENT": "test", "WORKER_METRICS_PORT": str(port)}
    with (folder / "worker.log").open("wb") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "{{ cookiecutter.project_slug }}", "worker"],
            cwd=folder,
            env={**os.environ, **variables},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    if not wait_until_up(f"http://127.0.0.1:{port}/metrics", worker, 20):
        worker.kill()
        pytest.fail(f"the worker did not start:\n{(folder / 'worker.log').read_text()}")
    return worker


{% endif -%}
def series_in(expression: str) -> set[str]:
    return set(METRIC_NAME.findall(NOT_SERIES.sub(" ", expression)))


def dashboard_expressions() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


def rule_expressions() -> list[str]:
    """The `expr:` of each rule (one line, or a `|` block below it)."""
    expressions: list[str] = []
    block_indent: int | None = None
    for line in RULES.read_text(encoding="utf-8").splitlines():
        indent = len(line) - len(line.lstrip())
        if block_indent is not None and line.strip() and indent > block_indent:
            expressions[-1] += f" {line.strip()}"
            continue
        block_indent = None
        key, _, value = line.strip().partition(":")
        if key in {"expr", "- expr"}:
            expressions.append("" if value.strip() == "|" else value.strip())
            block_indent = indent if value.strip() == "|" else None
    return expressions


def upstream_label(upstream_url: str) -> str:
    return upstream_url.removeprefix("http://")


def wait_for_scrape(base_url: str, gauge: str) -> tuple[str, Samples]:
    """A scrape once `gauge` is back to 0 (a WebSocket closes just after the client's close)."""
    deadline = time.monotonic() + 10
    while True:
        text, samples = scrape(base_url)
        if total(samples, gauge) == 0 or time.monotonic() > deadline:
            return text, samples
        time.sleep(0.1)
