"""Redis: the shared cache and rate limits, jobs run by real worker processes, Redis faults.

Against the Redis at REDIS_URL (under this run's key prefix, deleted after) and, for
the faults, a `redis-server` started here on a spare port, stopped and started again.
The workers are real processes, given the app's settings through their environment:
`python -m {{ cookiecutter.project_slug }} worker`, and so is the service with two worker processes.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from datetime import datetime
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
import redis
import saq
from fastapi.testclient import TestClient

from {{ cookiecutter.project_slug }}.core.lifecycle import Lifecycle
from {{ cookiecutter.project_slug }}.core.ratelimit import Decision, Limit, MemoryRateLimiter
from {{ cookiecutter.project_slug }}.core.ratelimit_redis import MAX_BATCH, RedisRateLimiter
from {{ cookiecutter.project_slug }}.core.redis import open_redis
from {{ cookiecutter.project_slug }}.jobs.base import Job
from {{ cookiecutter.project_slug }}.jobs.redis_queue import queue_entry, saq_queue
from {{ cookiecutter.project_slug }}.jobs.worker import held_by, requeue_unfinished
from {{ cookiecutter.project_slug }}.main import create_app
from {{ cookiecutter.project_slug }}.services import open_services
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
    # Their logs, which pytest shows beside the report of a test that failed.
    for number in range(len(processes)):
        log = (tmp_path / f"worker-{number}.log").read_text(errors="replace")
        print(f"--- worker {number}:\n{log[-6000:]}")


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


def test_a_job_the_queue_lost_while_it_ran_is_found_and_run_again(
    start_worker: StartWorker, tmp_path: Path
) -> None:
    """saq's sweep takes a job it finds starting from the queue's lists, to queue it
    again once aborted; when that worker is killed first, the job is left running in the
    store and in no list of the queue, where no sweep looks. A running worker finds it."""
    settings, env = deployment()
    with TestClient(create_app(settings)) as client:
        start_worker(env)
        # Once a first job ran, the worker is past its start, when it also looks for lost jobs.
        first = wait_for_job(client, submit(client, "a first job"), statuses=FINISHED)
        assert first["status"] == "succeeded"
        job_id = asyncio.run(lose_a_running_job(settings, like=first["id"]))
        lost = job(client, job_id)
        assert lost["status"] == "running"
        done = wait_for_job(client, job_id, statuses=FINISHED)
    assert done["status"] == "succeeded"
    ran_again_at = datetime.fromisoformat(done["started_at"])
    assert ran_again_at > datetime.fromisoformat(lost["started_at"])  # not just marked finished
    assert done["result"]["text"]
    assert "unfinished jobs queued again" in (tmp_path / "worker-0.log").read_text()


async def lose_a_running_job(settings: Settings, *, like: str) -> str:
    """A job asked as `like` was, in the state the race above leaves: claimed by a
    worker now dead (its lease expired), its queue entry active but in none of the
    queue's lists."""
    async with open_services(settings, Lifecycle()) as services:
        model = await services.job_store.get(like)
        assert model is not None
        lost = Job(owner=model.owner, request=model.request)
        await services.job_store.add(lost)
        assert await services.job_store.claim(lost)
        queue = saq_queue(services.redis, settings)
        entry = queue_entry(lost, settings)
        entry.queue, entry.status, entry.attempts = queue, saq.Status.ACTIVE, 1
        await services.redis.set(entry.id, queue.serialize(entry))
        return lost.id


def test_a_look_for_lost_jobs_queues_only_those_the_queue_lost() -> None:
    """Not a job the queue holds, nor one just submitted (its submission may still
    withdraw it), but an older one the queue does not hold."""
    assert asyncio.run(look_for_lost_jobs(deployment()[0])) == {
        "held": True,  # and queued once: counted below
        "lost": True,
        "just submitted": False,
        "queued": 2,
    }


async def look_for_lost_jobs(settings: Settings) -> dict[str, bool | int]:
    async with open_services(settings, Lifecycle()) as services:
        store, queue = services.job_store, saq_queue(services.redis, settings)
        minute_ago = time.time() - 60
        jobs = {
            "held": Job(owner="o", request={}, created_at=minute_ago),
            "lost": Job(owner="o", request={}, created_at=minute_ago),
            "just submitted": Job(owner="o", request={}),
        }
        for job in jobs.values():
            await store.add(job)
        await queue.enqueue(queue_entry(jobs["held"], settings))
        await requeue_unfinished(store, queue, settings)
        found: dict[str, bool | int] = {
            name: (await held_by(queue, [job.id]))[0] for name, job in jobs.items()
        }
        queued = await cast(
            Awaitable[list[bytes]], services.redis.lrange(queue.namespace("queued"), 0, -1)
        )
        mine = {queue.job_id(job.id).encode() for job in jobs.values()}
        found["queued"] = sum(entry in mine for entry in queued)
        return found


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
        # The worker picks the second delivery up when it polls: give a loaded machine time.
        wait_until(
            lambda: asyncio.run(deliveries_done(settings, job_id)) == 2, 30, "the second delivery"
        )
    assert done["status"] == "succeeded"
    assert [request["messages"][0]["content"] for request in upstream.requests] == [
        "delivered twice"
    ]


def test_a_run_that_loses_its_lease_stops_and_writes_nothing(
    upstream: Upstream, upstream_url: str, start_worker: StartWorker, tmp_path: Path
) -> None:
    upstream.then(Behaviour(delay_s=8))
    settings, env = deployment(**upstream_values(upstream_url))
    with TestClient(create_app(settings)) as client:
        job_id = submit(client, "its lease goes to another run")
        start_worker(env)
        wait_for_job(client, job_id, statuses=frozenset({"running"}), timeout_s=15)
        running = job(client, job_id)
        lease = f"{settings.redis_key_prefix}jobs:running:{job_id}"
        with redis.Redis.from_url(settings.redis_url) as direct:
            wait_until(lambda: bool(direct.exists(lease)), 10, "the run's lease")
            direct.set(lease, "another-run", px=60_000)  # what an expired, re-taken lease is
        wait_until(lambda: upstream.disconnects == 1, 10, "the run to stop its upstream call")
        assert job(client, job_id) == running  # the run it lost to owns the record now
    log = (tmp_path / "worker-0.log").read_text()
    assert "job run stopped: its lease was lost" in log


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
    settings, env = deployment(redis_url=redis_server.url, redis_timeout_s=0.5, readiness_cache_s=0)
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
        assert ready.json()["checks"]["redis"] == "unavailable"
        assert client.app.state.lifecycle.problems["redis"]  # type: ignore[attr-defined]
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


# -- rate limits ------------------------------------------------------------------------
def test_the_redis_buckets_do_what_the_memory_ones_do(redis_for_the_run: redis.Redis) -> None:
    settings = make_settings()
    tokens = Limit("caller:tokens", 600, 250)
    both = [Limit("caller:requests", 6, 1), tokens]
    steps: list[tuple[str, list[Limit]]] = [
        ("acquire", both),
        ("acquire", both),
        ("acquire", both),  # 100 tokens left: refused, nothing taken
        ("adjust", [Limit("caller:tokens", 600, -200)]),  # a reservation 200 too high
        ("acquire", both),
        ("adjust", [Limit("caller:tokens", 600, 900)]),  # one that used 900 more
        ("acquire", [Limit("caller:tokens", 600, 1)]),  # in debt: refused
        ("acquire", [Limit("caller:requests", 6, 0)]),
    ]

    async def play(limiter: RedisRateLimiter | MemoryRateLimiter) -> list[Decision]:
        decisions = []
        for step, limits in steps:
            if step == "acquire":
                decisions.append(await limiter.acquire(limits))
            else:
                await limiter.adjust(limits[0])
        return decisions

    async def compare() -> tuple[list[Decision], list[Decision]]:
        async with open_redis(settings) as client:
            prefix = f"{settings.redis_key_prefix}ratelimit:"
            shared = RedisRateLimiter(client, prefix=prefix, fail_open=False)
            return await play(MemoryRateLimiter()), await play(shared)

    # Both refill at most 0.01 tokens a millisecond: too little to change a whole count.
    memory, shared = asyncio.run(compare())
    assert [d.allowed for d in shared] == [True, True, False, True, False, True]
    for mine, theirs in zip(memory, shared, strict=True):
        assert theirs.allowed == mine.allowed
        assert [level.remaining for level in theirs.levels] == [
            level.remaining for level in mine.levels
        ]
        assert theirs.retry_after_s == pytest.approx(mine.retry_after_s, abs=0.05)
        for level, expected in zip(theirs.levels, mine.levels, strict=True):
            assert level.reset_s == pytest.approx(expected.reset_s, abs=0.05)
    # A key lives until its bucket is full again; a full bucket has none.
    prefix = f"{settings.redis_key_prefix}ratelimit:caller"
    debt_ms = cast(int, redis_for_the_run.pttl(f"{prefix}:tokens"))
    assert debt_ms == pytest.approx(shared[4].levels[0].reset_s * 1000, abs=100)
    assert debt_ms > 60_000  # in debt: longer than a minute
    assert cast(int, redis_for_the_run.pttl(f"{prefix}:requests")) <= 3 * 10_000


def test_concurrent_checks_share_script_calls_and_are_decided_in_arrival_order(
    redis_server: RedisServer,
) -> None:
    """Checks made at once go to Redis together, at most MAX_BATCH to a call; a caller
    that goes away while its check is queued holds up no one."""
    settings = make_settings(redis_url=redis_server.url)
    bucket = Limit("crowd:requests", 150, 1)
    callers = MAX_BATCH + 72

    async def crowd() -> tuple[list[Decision], int]:
        async with open_redis(settings) as client:
            limiter = RedisRateLimiter(client, prefix="ratelimit:", fail_open=False)
            await limiter.adjust(Limit("warm-up:tokens", 10, 0))  # Redis learns the script
            await cast("Awaitable[bool]", client.config_resetstat())
            tasks = [asyncio.create_task(limiter.acquire([bucket])) for _ in range(callers)]
            await asyncio.sleep(0)  # every task has queued its check
            tasks[0].cancel()  # already queued: it is taken, and its answer is dropped
            decisions = await asyncio.gather(*tasks[1:])
            stats = await cast("Awaitable[dict[str, Any]]", client.info("commandstats"))
            return decisions, stats["cmdstat_evalsha"]["calls"]

    decisions, script_calls = asyncio.run(crowd())
    assert script_calls == 2  # MAX_BATCH checks, then the other 72
    # The cancelled caller's check came first; then each in turn, until the bucket is empty.
    assert [d.allowed for d in decisions] == [True] * 149 + [False] * (callers - 150)
    assert [d.levels[0].remaining for d in decisions[:149]] == list(range(148, -1, -1))
    assert all(d.levels[0].remaining == 0 and d.retry_after_s > 0 for d in decisions[149:])


def worker_processes(parent: int) -> list[int]:
    """The pids of `parent`'s children (Linux /proc)."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with suppress(OSError):
            fields = stat.read_text().rpartition(")")[2].split()
            if int(fields[1]) == parent:
                children.append(int(stat.parent.name))
    return children


def connection_owners(pids: list[int], port: int) -> dict[int, int]:
    """Client port -> pid of the process holding that connection to `port` (Linux /proc)."""
    inodes = {}
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with suppress(OSError):
                target = str(fd.readlink())
                if target.startswith("socket:["):
                    inodes[target[8:-1]] = pid
    owners = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, remote, state, inode = (line.split()[i] for i in (1, 2, 3, 9))
            established = state == "01"
            if established and int(local.rsplit(":", 1)[1], 16) == port and inode in inodes:
                owners[int(remote.rsplit(":", 1)[1], 16)] = inodes[inode]
    return owners


def events(log: Path) -> list[str]:
    """The `event` of each whole JSON line the service has written to `log` so far."""
    lines = log.read_text(encoding="utf-8").split("\n")[:-1]  # the last may be half written
    return [json.loads(line).get("event") for line in lines if line.startswith("{")]


def test_the_rate_limit_holds_across_worker_processes(tmp_path: Path) -> None:
    """Two uvicorn workers, each sent twice the limit: together they admit the limit once."""
    if not Path("/proc/net/tcp").exists():
        pytest.skip("telling the workers' connections apart needs Linux /proc")
    rpm = 20
    _, env = deployment(rate_limit_rpm=rpm, rate_limit_tpm=0)
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as output:
        server = subprocess.Popen(
            [sys.executable, "-m", "{{ cookiecutter.project_slug }}", "serve", "--workers", "2"],
            cwd=tmp_path,
            env={**env, "HOST": "127.0.0.1", "PORT": str(port)},
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    connections: dict[int, list[http.client.HTTPConnection]] = {}
    try:
        wait_until(lambda: events(log).count("started") == 2, 30, "two workers")
        workers = worker_processes(server.pid)
        connections = {pid: [] for pid in workers}
        deadline = time.monotonic() + 15
        while sorted(len(held) for held in connections.values())[-2:] != [2, 2]:
            assert time.monotonic() < deadline, "the workers did not both take connections"
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            connection.request("GET", "/health/live")
            connection.getresponse().read()
            owner = connection_owners(workers, port).get(connection.sock.getsockname()[1])
            if owner in connections and len(connections[owner]) < 2:
                connections[owner].append(connection)
            else:
                connection.close()

        def send(connection: http.client.HTTPConnection) -> list[int]:
            statuses = []
            body = json.dumps({"prompt": "one of many", "max_tokens": 1})
            headers = {**AUTH, "Content-Type": "application/json"}
            for _ in range(rpm):
                connection.request("POST", "/api/v1/generate", body=body, headers=headers)
                response = connection.getresponse()
                response.read()
                statuses.append(response.status)
            return statuses

        held = [c for pid in workers for c in connections[pid]]
        started = time.monotonic()
        with ThreadPoolExecutor(len(held)) as pool:
            statuses = list(pool.map(send, held))
        elapsed = time.monotonic() - started
    finally:
        for held_connections in connections.values():
            for connection in held_connections:
                connection.close()
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    assert elapsed < 60 / rpm, "too slow to tell: a request refilled meanwhile"
    assert sorted({status for per_connection in statuses for status in per_connection}) == [
        200,
        429,
    ]
    # Each worker alone was sent 2 * rpm requests: limits per worker would admit 2 * rpm.
    assert sum(per_connection.count(200) for per_connection in statuses) == rpm


@pytest.mark.parametrize("fail_open", [True, False], ids=["fail-open", "fail-closed"])
def test_rate_limits_follow_the_fail_policy_while_redis_is_down(
    redis_server: RedisServer, capsys: pytest.CaptureFixture[str], fail_open: bool
) -> None:
    # Refused connections fail at once; the timeout only bounds calls to the Redis that
    # answers, before and after the outage, where a stall must not count as a second one.
    settings = make_settings(
        redis_url=redis_server.url,
        redis_timeout_s=2,
        rate_limit_rpm=2,
        rate_limit_fail_open=fail_open,
    )
    body = {"prompt": "limited through an outage", "max_tokens": 3}
    with TestClient(create_app(settings)) as client:

        def post() -> Any:
            return client.post("/api/v1/generate", json=body, headers=AUTH)

        assert [post().status_code for _ in range(3)] == [200, 200, 429]  # in Redis
        redis_server.stop()
        capsys.readouterr()
        during = []
        for _ in range(4):
            started = time.monotonic()
            during.append(post())
            assert time.monotonic() - started < 1.0
        redis_server.start()  # empty again: every bucket is full
        wait_until(lambda: "x-ratelimit-remaining-requests" in post().headers, 10, "limits back")
        back = post()  # the second of the fresh minute: the first was the one seen above
    logged = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line[:1] == "{"]
    events = [record["event"] for record in logged]
    outages = [record for record in logged if record["event"].startswith("rate limiter")]
    assert events.count("rate limiter unavailable") == 1, outages  # once per outage
    assert events.count("rate limiter recovered") == 1, outages
    if fail_open:
        assert [response.status_code for response in during] == [200] * 4  # over the limit
        assert "x-ratelimit-limit-requests" not in during[0].headers
    else:
        assert [response.status_code for response in during] == [503] * 4
        assert during[0].headers["Retry-After"] == "1"
        assert during[0].json()["error"]["code"] == "rate_limiter_unavailable"
    assert back.status_code == 200
    assert back.headers["x-ratelimit-remaining-requests"] == "0"
