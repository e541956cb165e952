"""Redis: the shared response cache, jobs run by real worker processes, Redis faults.

Against the Redis at REDIS_URL (under this run's key prefix, deleted after) and, for
the faults, a `redis-server` started here on a spare port, stopped and started again.
The workers are real processes, given the app's settings through their environment:
`python -m {{ cookiecutter.project_slug }} worker`.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
import redis
import saq
from fastapi.testclient import TestClient

from {{ cookiecutter.project_slug }}.core.redis import open_redis
from {{ cookiecutter.project_slug }}.jobs.redis_queue import saq_queue
from {{ cookiecutter.project_slug }}.main import create_app
from {{ cookiecutter.project_slug }}.settings import Settings

from .conftest import AUTH, AUTH_ENV, make_settings
from .servers import free_port, serve
from .upstream import Behaviour, Upstream

# Workers report every 2/3 s and a job silent for 2 s is taken for dead: tests wait
# seconds for a killed worker's job, not the minutes of the defaults.
FAST_JOBS: dict[str, Any] = {"job_heartbeat_s": 2, "job_shutdown_grace_s": 1}
StartWorker = Callable[[dict[str, str]], subprocess.Popen[bytes]]
HTTP = httpx.Client | TestClient


def deployment(**values: Any) -> tuple[Settings, dict[str, str]]:
    """Settings for the app under test, and the environment that gives a worker the same."""
    values = {**FAST_JOBS, **values}
    settings = make_settings(**values)
    env = {
        **os.environ,
        "ENVIRONMENT": "test",
        "LOG_FORMAT": "json",
        **AUTH_ENV,
        "REDIS_URL": settings.redis_url,
        "REDIS_KEY_PREFIX": settings.redis_key_prefix,
        **{name.upper(): str(value) for name, value in values.items()},
    }
    return settings, env


def upstream_values(upstream_url: str) -> dict[str, Any]:
    return {
        "llm_provider": "openai",
        "llm_base_url": f"{upstream_url}/v1",
        "llm_api_key": "sk-upstream",
        "llm_model": "upstream-model",
    }


@pytest.fixture
def start_worker(tmp_path: Path) -> Iterator[StartWorker]:
    """Starts worker processes (logs in tmp_path); those still running stop at the end."""
    processes: list[subprocess.Popen[bytes]] = []

    def start(env: dict[str, str]) -> subprocess.Popen[bytes]:
        with (tmp_path / f"worker-{len(processes)}.log").open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "{{ cookiecutter.project_slug }}", "worker"],
                cwd=tmp_path,  # no .env there: only `env` applies
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        processes.append(process)
        return process

    yield start
    for process in processes:
        if process.poll() is None:
            process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_until(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {timeout_s:g} s")
        time.sleep(0.05)


def submit(http: HTTP, prompt: str, **body: Any) -> str:
    response = http.post("/api/v1/jobs", json={"prompt": prompt, **body}, headers=AUTH)
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def job(http: HTTP, job_id: str) -> dict[str, Any]:
    response = http.get(f"/api/v1/jobs/{job_id}", headers=AUTH)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def wait_for_job(
    http: HTTP, job_id: str, *, statuses: frozenset[str], timeout_s: float = 20
) -> dict[str, Any]:
    wait_until(lambda: job(http, job_id)["status"] in statuses, timeout_s, f"{job_id} {statuses}")
    return job(http, job_id)


FINISHED = frozenset({"succeeded", "failed"})


# -- cache ------------------------------------------------------------------------------
def test_cached_answers_live_in_redis_with_a_ttl_and_are_shared(
    redis_for_the_run: redis.Redis,
) -> None:
    settings = make_settings(cache_ttl_s=60)
    body = {"prompt": "cache me in redis", "temperature": 0}
    with TestClient(create_app(settings)) as client:
        first = client.post("/api/v1/generate", json=body, headers=AUTH)
        second = client.post("/api/v1/generate", json=body, headers=AUTH)
    assert first.headers["X-Cache"] == "MISS"
    assert second.headers["X-Cache"] == "HIT"
    assert second.json()["text"] == first.json()["text"]
    keys = list(redis_for_the_run.scan_iter(match=f"{settings.redis_key_prefix}cache:*"))
    assert len(keys) == 1
    assert 0 < cast(int, redis_for_the_run.pttl(keys[0])) <= 60_000
    with TestClient(create_app(settings)) as another_process:
        assert another_process.post("/api/v1/generate", json=body, headers=AUTH).json()["cached"]


# -- jobs in worker processes -----------------------------------------------------------
def test_worker_runs_each_job_once_including_those_queued_before_it_started(
    upstream: Upstream, upstream_url: str, start_worker: StartWorker
) -> None:
    settings, env = deployment(**upstream_values(upstream_url))
    early = [f"queued before any worker {n}" for n in range(5)]
    with serve(create_app(settings)) as base_url, httpx.Client(base_url=base_url) as http:
        ids = [submit(http, prompt) for prompt in early]
        time.sleep(0.5)
        assert {job(http, job_id)["status"] for job_id in ids} == {"queued"}
        start_worker(env)
        done = [wait_for_job(http, job_id, statuses=FINISHED) for job_id in ids]
        late = submit(http, "submitted to a running worker")
        done.append(wait_for_job(http, late, statuses=FINISHED))
    assert [result["status"] for result in done] == ["succeeded"] * 6
    assert all(result["result"]["text"] for result in done)
    seen = sorted(request["messages"][0]["content"] for request in upstream.requests)
    assert seen == sorted([*early, "submitted to a running worker"])  # none ran twice


def test_jobs_survive_an_api_restart(start_worker: StartWorker) -> None:
    settings, env = deployment()
    with TestClient(create_app(settings)) as first_api:
        job_id = submit(first_api, "outlive the api", max_tokens=5)
    with TestClient(create_app(settings)) as second_api:
        assert job(second_api, job_id)["status"] == "queued"
        start_worker(env)
        done = wait_for_job(second_api, job_id, statuses=FINISHED)
    assert done["status"] == "succeeded"
    assert done["result"]["tokens_used"] == 5


@pytest.mark.parametrize(
    ("max_attempts", "outcome"),
    [pytest.param(2, "succeeded", id="run-again"), pytest.param(1, "failed", id="give-up")],
)
def test_a_job_whose_worker_is_killed_is_never_left_running(
    start_worker: StartWorker, max_attempts: int, outcome: str
) -> None:
    settings, env = deployment(fake_llm_token_latency_ms=100, job_max_attempts=max_attempts)
    with TestClient(create_app(settings)) as client:
        job_id = submit(client, "slow enough to kill its worker", max_tokens=40)
        doomed = start_worker(env)
        wait_for_job(client, job_id, statuses=frozenset({"running"}), timeout_s=15)
        doomed.send_signal(signal.SIGKILL)
        doomed.wait(timeout=5)
        killed_at = time.time()
        assert job(client, job_id)["status"] == "running"
        start_worker(env)
        done = wait_for_job(client, job_id, statuses=FINISHED, timeout_s=40)
    assert done["status"] == outcome
    if outcome == "succeeded":
        assert datetime.fromisoformat(done["started_at"]).timestamp() > killed_at  # run again
        assert done["result"]["text"]
    else:
        assert done["error"]["code"] == "job_interrupted"


def test_a_job_delivered_again_while_it_runs_runs_once(
    upstream: Upstream, upstream_url: str, start_worker: StartWorker
) -> None:
    upstream.then(Behaviour(delay_s=4))
    settings, env = deployment(**upstream_values(upstream_url))
    with TestClient(create_app(settings)) as client:
        job_id = submit(client, "delivered twice")
        start_worker(env)
        wait_for_job(client, job_id, statuses=frozenset({"running"}), timeout_s=15)
        asyncio.run(deliver_again(settings, job_id))
        done = wait_for_job(client, job_id, statuses=FINISHED)
        wait_until(
            lambda: asyncio.run(deliveries_done(settings, job_id)) == 2, 10, "the second delivery"
        )
    assert done["status"] == "succeeded"
    assert [request["messages"][0]["content"] for request in upstream.requests] == [
        "delivered twice"
    ]


async def deliver_again(settings: Settings, job_id: str) -> None:
    """What saq's sweep does when it takes a job that is just starting for a stuck one."""
    async with open_redis(settings) as client:
        queue = saq_queue(client, settings)
        entry = await queue.job(job_id)
        assert entry is not None
        await queue.retry(entry, error="delivered again by the test")


async def deliveries_done(settings: Settings, job_id: str) -> int:
    async with open_redis(settings) as client:
        entry = await saq_queue(client, settings).job(job_id)
        return entry.attempts if entry is not None and entry.status is saq.Status.COMPLETE else 0


# -- faults: a Redis that goes away and comes back ----------------------------------------
class RedisServer:
    """A throwaway `redis-server` on a spare loopback port, without persistence."""

    def __init__(self, binary: str, directory: Path) -> None:
        self.binary = binary
        self.directory = directory
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                self.binary,
                *("--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.directory)),
                *("--save", "", "--appendonly", "no", "--daemonize", "no"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(self.answers, 10, f"redis-server on port {self.port}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)

    def answers(self) -> bool:
        with redis.Redis(port=self.port, socket_connect_timeout=0.5, socket_timeout=0.5) as r:
            try:
                return bool(r.ping())
            except redis.RedisError:
                return False


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    binary = shutil.which("redis-server")
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("redis-server is not installed")
        pytest.skip("redis-server is not installed")
    server = RedisServer(binary, tmp_path)
    server.start()
    yield server
    server.stop()


def test_redis_outage_degrades_the_service_which_recovers_by_itself(
    redis_server: RedisServer, start_worker: StartWorker
) -> None:
    settings, env = deployment(redis_url=redis_server.url, redis_timeout_s=0.5)
    cacheable = {"prompt": "cache me through an outage", "temperature": 0}
    start_worker(env)
    with TestClient(create_app(settings)) as client:
        assert client.get("/health/ready").status_code == 200
        before = submit(client, "before the outage", max_tokens=3)
        assert wait_for_job(client, before, statuses=FINISHED)["status"] == "succeeded"

        redis_server.stop()
        for _ in range(2):
            started = time.monotonic()
            response = client.post("/api/v1/generate", json=cacheable, headers=AUTH)
            assert response.status_code == 200
            assert response.headers["X-Cache"] == "MISS"
            assert time.monotonic() - started < 2.0
        ready = client.get("/health/ready")
        assert ready.status_code == 503
        assert ready.json()["checks"]["redis"] != "ok"
        refused = client.post("/api/v1/jobs", json={"prompt": "during the outage"}, headers=AUTH)
        assert refused.status_code == 503
        assert int(refused.headers["Retry-After"]) > 0
        assert refused.json()["error"]["code"] == "queue_full"

        redis_server.start()
        wait_until(
            lambda: client.get("/health/ready").status_code == 200, 15, "readiness after Redis"
        )
        after = submit(client, "after the outage", max_tokens=3)
        assert wait_for_job(client, after, statuses=FINISHED)["status"] == "succeeded"
        wait_until(
            lambda: client.post("/api/v1/generate", json=cacheable, headers=AUTH).json()["cached"],
            5,
            "a cache hit after Redis returned",
        )
