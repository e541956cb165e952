"""The database module: migrations, the generation log, durable jobs, and outages.

Every test runs against the run's throwaway database (see `database_for_the_run`).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import pytest
from alembic import command
from fastapi import APIRouter
from fastapi.testclient import TestClient
{%- set counts_rows = cookiecutter.auth != "none" or not cookiecutter.use_redis %}
from sqlalchemy import Executable, {% if counts_rows %}func, {% endif %}insert, select

from {{ cookiecutter.project_slug }}.core.errors import APIError
from {{ cookiecutter.project_slug }}.core.logging import configure_logging
from {{ cookiecutter.project_slug }}.db.deps import SessionDep
{% if cookiecutter.database == "sqlite" -%}
from {{ cookiecutter.project_slug }}.db.engine import Database, async_url, open_database
{% else -%}
from {{ cookiecutter.project_slug }}.db.engine import (
    Database,
    SchemaMissingError,
    async_url,
    open_database,
)
{% endif -%}
from {{ cookiecutter.project_slug }}.db.migrate import alembic_config, upgrade_database
from {{ cookiecutter.project_slug }}.db.models import GenerationLog, JobRecord
from {{ cookiecutter.project_slug }}.db.recorder import SQLGenerationRecorder
from {{ cookiecutter.project_slug }}.jobs.base import Job
from {{ cookiecutter.project_slug }}.jobs.sql_store import SQLJobStore
from {{ cookiecutter.project_slug }}.llm.service import GenerationRecord
from {{ cookiecutter.project_slug }}.main import create_app
from {{ cookiecutter.project_slug }}.settings import Settings

from .callers import Caller
from .conftest import AUTH, callers, make_settings
{%- if cookiecutter.database == "postgresql" %}
from .db_postgresql import DatabaseSwitch, throwaway_database
{%- else %}
from .db_sqlite import DatabaseSwitch, throwaway_database
{%- endif %}


def new_caller(**values: Any) -> tuple[Settings, Caller]:
    """Settings with `values` that admit a caller of the test's own, and that caller."""
    admitted, (caller,) = callers(1)
    return make_settings(**admitted, **values), caller


def wait_for(condition: Callable[[], bool], timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout_s} s: {condition}")
        time.sleep(0.05)


def history(client: TestClient, caller: Caller, **params: Any) -> list[dict[str, Any]]:
    params = {"limit": 100, **params}
    response = client.get("/api/v1/generations", params=params, headers=caller.headers)
    assert response.status_code == 200, response.text
    rows: list[dict[str, Any]] = response.json()["data"]
    return rows


def history_of(client: TestClient, caller: Caller, count: int) -> list[dict[str, Any]]:
    """The caller's history once it holds `count` rows (they are written in batches)."""
    wait_for(lambda: len(history(client, caller)) >= count)
    return history(client, caller)


def query(settings: Settings, statement: Executable) -> list[Any]:
    """Rows read straight from the database, outside any app."""

    async def run() -> list[Any]:
        async with open_database(settings) as database, database.session() as session:
            return list((await session.execute(statement)).all())

    return asyncio.run(run())


@pytest.mark.parametrize(
    ("given", "used"),
    [
        ("postgresql://app:secret@db:5432/app", "postgresql+asyncpg://app:secret@db:5432/app"),
        ("postgres://app:secret@db/app", "postgresql+asyncpg://app:secret@db/app"),
        ("postgresql+asyncpg://db/app", "postgresql+asyncpg://db/app"),
        ("postgresql://db/app?sslmode=require", "postgresql+asyncpg://db/app?ssl=require"),
        ("sqlite:///./data/app.db", "sqlite+aiosqlite:///./data/app.db"),
        ("sqlite+aiosqlite:////var/lib/app.db", "sqlite+aiosqlite:////var/lib/app.db"),
    ],
)
def test_the_async_driver_is_added_to_database_urls(given: str, used: str) -> None:
    assert async_url(given).render_as_string(hide_password=False) == used


def test_migrations_build_an_empty_database_that_matches_the_models(tmp_path: Path) -> None:
    with throwaway_database(tmp_path) as url:
        config = alembic_config(url)
        command.upgrade(config, "head")
        command.check(config)  # raises when the models and the migrations disagree
        command.downgrade(config, "base")
        command.upgrade(config, "head")
{%- if cookiecutter.auth != "none" %}


def test_history_is_the_callers_own_newest_first_and_paginated() -> None:
    admitted, (alice, bob) = callers(2)
    with TestClient(create_app(make_settings(**admitted))) as client:
        request_ids = []
        for n in range(3):
            body = {"prompt": f"native {n}", "max_tokens": 5}
            response = client.post("/api/v1/generate", json=body, headers=alice.headers)
            request_ids.append(response.headers["X-Request-ID"])
        chat: dict[str, Any] = {
            "model": "fake-model",
            "messages": [{"role": "user", "content": "hi"}],
        }
        response = client.post("/v1/chat/completions", json=chat, headers=alice.headers)
        assert response.status_code == 200
        chat["stream"] = True
        streamed = client.post("/v1/chat/completions", json=chat, headers=alice.headers)
        assert streamed.text.endswith("data: [DONE]\n\n")
        client.post("/api/v1/generate", json={"prompt": "bob's"}, headers=bob.headers)

        rows = history_of(client, alice, 5)
        assert len(rows) == 5
        assert [row["streamed"] for row in rows] == [True, False, False, False, False]
        assert [row["request_id"] for row in rows[2:]] == request_ids[::-1]
        assert all(row["status"] == "ok" and row["model"] == "fake-model" for row in rows)
        assert all(row["prompt"] is None and row["completion"] is None for row in rows)
        assert [row["created_at"] for row in rows] == sorted(
            (row["created_at"] for row in rows), reverse=True
        )

        pages, cursor = [], None
        while True:
            params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
            page = client.get("/api/v1/generations", params=params, headers=alice.headers).json()
            pages.append([row["id"] for row in page["data"]])
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert [len(page) for page in pages] == [2, 2, 1]
        assert [row_id for page in pages for row_id in page] == [row["id"] for row in rows]

        assert len(history_of(client, bob, 1)) == 1

    # A caller is stored as its principal's id, never as its credential.
    sent = [caller.headers["Authorization"].removeprefix("Bearer ") for caller in (alice, bob)]
    principals = query(
        make_settings(),
        select(GenerationLog.principal, func.count())
        .where(GenerationLog.principal.in_([*sent, alice.principal, bob.principal]))
        .group_by(GenerationLog.principal),
    )
    assert sorted(principals) == sorted([(alice.principal, 5), (bob.principal, 1)])
{%- endif %}


{% if cookiecutter.use_websocket and cookiecutter.auth != "none" -%}
def test_a_websocket_reply_is_recorded_as_its_callers() -> None:
    """A /ws/chat reply is in the history of the caller who opened the socket: the
    service is given the principal, not left to find it in the logging context."""
    settings, caller = new_caller()
    with TestClient(create_app(settings)) as client:
        with client.websocket_connect("/ws/chat", headers=caller.headers) as ws:
            ws.send_json({"type": "prompt", "prompt": "over the socket", "max_tokens": 5})
            while ws.receive_json()["type"] != "done":
                pass
        (row,) = history_of(client, caller, 1)
    assert (row["status"], row["streamed"]) == ("ok", True)


{% endif -%}
def test_store_prompts_keeps_the_prompt_and_completion_text() -> None:
    settings, caller = new_caller(store_prompts=True)
    with TestClient(create_app(settings)) as client:
        body = {"prompt": "remember me"}
        answer = client.post("/api/v1/generate", json=body, headers=caller.headers)
        (row,) = history_of(client, caller, 1)
    assert row["prompt"] == "remember me"
    assert row["completion"] == answer.json()["text"]


def test_the_log_buffer_holds_no_text_without_store_prompts_and_is_bounded_by_bytes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("INFO", "json")
    record = GenerationRecord(
        principal="key_0",
        request_id=None,
        model="m",
        status="ok",
        prompt_tokens=1,
        completion_tokens=1,
        latency_ms=1.0,
        cached=False,
        streamed=False,
        error_code=None,
        prompt="a private prompt " * 6_000,  # ~100 kB
        completion="a private answer " * 6_000,
        created_at=datetime.now(UTC),
    )
    unused = cast(Database, object())  # the writer is never started: rows stay buffered
    plain = SQLGenerationRecorder(unused, store_prompts=False, max_buffered_bytes=1_000_000)
    for _ in range(100):
        plain.record(record)
    assert len(plain._buffer) == 100  # without text, 100 rows fit easily
    assert all(row.prompt == "" and row.completion == "" for row in plain._buffer)
    assert plain.buffered_bytes < 100_000

    kept = SQLGenerationRecorder(unused, store_prompts=True, max_buffered_bytes=1_000_000)
    for _ in range(100):
        kept.record(record)
    assert 1 <= len(kept._buffer) < 10  # text counts against the bound
    assert kept.buffered_bytes <= 1_000_000
    assert kept._dropped == 100 - len(kept._buffer)
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line]
    full = [line for line in lines if line["event"].startswith("generation log buffer full")]
    assert len(full) == 1  # warned once, not per dropped row


def test_history_needs_a_caller_and_valid_parameters(client: TestClient) -> None:
{%- if cookiecutter.auth != "none" %}
    assert client.get("/api/v1/generations").status_code == 401
{%- endif %}
    for params, param in (
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
        ({"cursor": "not-a-cursor"}, "cursor"),
    ):
        response = client.get("/api/v1/generations", params=params, headers=AUTH)
        assert response.status_code == 422
        assert response.json()["error"]["param"] == param


def test_the_session_commits_on_success_and_rolls_back_on_error(settings: Settings) -> None:
    router = APIRouter()

    @router.post("/test/rows/{principal}")
    async def write_row(principal: str, session: SessionDep, fail: str = "") -> dict[str, str]:
        session.add(
            GenerationLog(
                principal=principal,
                model="m",
                status="ok",
                prompt_tokens=1,
                completion_tokens=1,
                latency_ms=1.0,
                cached=False,
                streamed=False,
                created_at=datetime.now(UTC),
            )
        )
        await session.flush()  # the row is written, inside the request's transaction
        if fail == "refused":
            raise APIError(409, "Refused on purpose.", code="refused")
        if fail == "crash":
            raise RuntimeError("crashed on purpose")
        if fail == "constraint":  # the database refuses the next statement
            await session.execute(insert(JobRecord), [{"id": principal, "owner": None}])
        return {"written": principal}

    app = create_app(settings)
    app.include_router(router)
    outcomes = {"": (200, None), "refused": (409, "refused"), "crash": (500, "internal_error")}
    outcomes["constraint"] = (500, "database_error")
    markers = {fail: f"session-{fail or 'ok'}-{uuid.uuid4().hex[:8]}" for fail in outcomes}
    with TestClient(app) as client:
        for fail, (status, code) in outcomes.items():
            response = client.post(f"/test/rows/{markers[fail]}", params={"fail": fail})
            assert response.status_code == status, response.text
            assert response.json().get("error", {}).get("code") == code
    stored = query(
        settings,
        select(GenerationLog.principal).where(GenerationLog.principal.in_(markers.values())),
    )
    assert [row.principal for row in stored] == [markers[""]]


def test_the_job_store_upserts_resumes_oldest_first_and_forgets_old_jobs() -> None:
    now = time.time()
    older = Job(owner="o", request={"prompt": "older"}, created_at=now - 30)
    newer = Job(owner="o", request={"prompt": "newer"}, created_at=now - 20)
    saved_first = Job(owner="o", request={"prompt": "saved"}, created_at=now - 10)

    async def scenario() -> None:
        async with open_database(make_settings()) as database:
            store = SQLJobStore(database, retention_s=60, purge_interval_s=0)
            await store.add(newer)
            await store.add(older)
            assert [job.id for job in await store.unfinished()] == [older.id, newer.id]

            older.status, older.attempts, older.started_at = "running", 1, now - 125
            await store.save(older)
            older.status, older.finished_at = "succeeded", now - 120
            older.result = {"text": "done", "usage": {"prompt_tokens": 1}}
            await store.save(older)
            stored = await store.get(older.id)
            assert stored is not None
            assert (stored.status, stored.result, stored.attempts) == ("succeeded", older.result, 1)
            assert stored.finished_at == pytest.approx(older.finished_at, abs=1e-3)
            assert stored.created_at == pytest.approx(older.created_at, abs=1e-3)
            assert [job.id for job in await store.unfinished()] == [newer.id]

            await store.save(saved_first)  # an upsert: inserted
            assert await store.get(saved_first.id) is not None
            await store.add(Job(owner="o", request={}))  # adding purges expired jobs
            assert await store.get(older.id) is None
            assert await store.get(newer.id) is not None

    asyncio.run(scenario())
{%- if not cookiecutter.use_redis %}


def test_jobs_survive_a_restart_and_none_runs_twice() -> None:
    settings, caller = new_caller(fake_llm_token_latency_ms=40, job_workers=2)
    with TestClient(create_app(settings)) as client:
        ids = [
            client.post(
                "/api/v1/jobs", json={"prompt": f"job {n}", "max_tokens": 8}, headers=caller.headers
            ).json()["id"]
            for n in range(6)
        ]

        def status(job_id: str) -> str:
            response = client.get(f"/api/v1/jobs/{job_id}", headers=caller.headers)
            job: dict[str, Any] = response.json()
            return str(job["status"])

        wait_for(lambda: "succeeded" in {status(job_id) for job_id in ids})
        client.app_state["jobs"].shutdown_grace_s = 0  # stop now: running jobs are cut off

    stopped: dict[str, JobRecord] = {
        record.id: record
        for (record,) in query(settings, select(JobRecord).where(JobRecord.id.in_(ids)))
    }
    done_before = {job_id for job_id, job in stopped.items() if job.status == "succeeded"}
    assert done_before
    assert len(done_before) < len(ids)
    assert {job.status for job in stopped.values()} <= {"succeeded", "queued", "running"}

    with TestClient(create_app(settings)) as client:

        def finished() -> dict[str, dict[str, Any]]:
            jobs = {i: client.get(f"/api/v1/jobs/{i}", headers=caller.headers).json() for i in ids}
            return {i: job for i, job in jobs.items() if job["status"] == "succeeded"}

        wait_for(lambda: len(finished()) == len(ids))
        final = finished()

    for job_id in done_before:  # finished before the stop: not run again
        finished_at = datetime.fromisoformat(final[job_id]["finished_at"])
        before = stopped[job_id].finished_at
        assert before is not None
        assert abs((finished_at - before).total_seconds()) < 0.001
        assert stopped[job_id].attempts == 1
    successes = query(
        settings,
        select(func.count())
        .select_from(GenerationLog)
        .where(GenerationLog.principal == caller.principal, GenerationLog.status == "ok"),
    )
    assert successes == [(len(ids),)]  # one successful generation per job, no more


def test_two_processes_on_one_database_run_each_job_once() -> None:
    settings, caller = new_caller(fake_llm_token_latency_ms=20, job_workers=1)
    with TestClient(create_app(settings)) as first:
        ids = [
            first.post(
                "/api/v1/jobs",
                json={"prompt": f"shared {n}", "max_tokens": 5},
                headers=caller.headers,
            ).json()["id"]
            for n in range(6)
        ]
        # A second process starts while the first still holds queued jobs: it adopts them
        # too, and the store's claim lets only one of the two run each.
        with TestClient(create_app(settings)) as second:

            def done() -> bool:
                return all(
                    second.get(f"/api/v1/jobs/{i}", headers=caller.headers).json()["status"]
                    == "succeeded"
                    for i in ids
                )

            wait_for(done)
    attempts = query(settings, select(JobRecord.attempts).where(JobRecord.id.in_(ids)))
    assert attempts == [(1,)] * len(ids)
    mine = GenerationLog.principal == caller.principal
    runs = query(settings, select(func.count()).select_from(GenerationLog).where(mine))
    assert runs == [(len(ids),)]
{%- endif %}


def test_an_unreachable_database_is_a_503_and_the_service_recovers_by_itself(
    tmp_path: Path, database_for_the_run: str
) -> None:
    with DatabaseSwitch(database_for_the_run, tmp_path) as database:
        settings, caller = new_caller(
            database_url=database.url,
            db_pool_timeout_s=2,
            db_statement_timeout_s=2,
            readiness_cache_s=0,
        )
        with TestClient(create_app(settings)) as client:
            assert client.get("/health/ready").status_code == 200
            assert history(client, caller) == []

            database.cut()
            started = time.monotonic()
            ready = client.get("/health/ready")
            assert time.monotonic() - started < 2.5
            assert ready.status_code == 503
            assert ready.json()["checks"]["database"] == "unavailable"
            # The reason names the database's host or file: the log has it, not the probe.
            problem = client.app.state.lifecycle.problems["database"]  # type: ignore[attr-defined]
            assert database.symptom in str(problem)
            assert database.symptom not in ready.text
            response = client.get("/api/v1/generations", headers=caller.headers)
            assert response.status_code == 503
            assert response.json()["error"]["code"] == "database_unavailable"
            assert response.headers["Retry-After"]
            job = client.post("/api/v1/jobs", json={"prompt": "later"}, headers=caller.headers)
            assert job.status_code == 503
            assert job.headers["Retry-After"]
            job = client.get("/api/v1/jobs/job-0", headers=caller.headers)
            assert job.status_code == 503
            assert job.json()["error"]["code"] == "database_unavailable"
            # What does not need the database still works; its log row waits.
            started = time.monotonic()
            body = {"prompt": "meanwhile"}
            answer = client.post("/api/v1/generate", json=body, headers=caller.headers)
            assert answer.status_code == 200
            assert time.monotonic() - started < 1

            database.restore()
            wait_for(lambda: client.get("/health/ready").status_code == 200)
            (row,) = history_of(client, caller, 1)
            assert row["request_id"] == answer.headers["X-Request-ID"]


{%- if cookiecutter.database == "postgresql" %}


def test_the_service_starts_while_the_database_is_down_and_recovers(
    tmp_path: Path, database_for_the_run: str
) -> None:
    """A pod whose database is unreachable must start, stay live, report not ready."""
    with DatabaseSwitch(database_for_the_run, tmp_path) as database:
        database.cut()
        settings, caller = new_caller(
            database_url=database.url,
            db_pool_timeout_s=1,
            db_statement_timeout_s=1,
            readiness_cache_s=0,
        )
        with TestClient(create_app(settings)) as client:
            assert client.get("/health/live").status_code == 200
            assert client.get("/health/ready").status_code == 503
            refused = client.get("/api/v1/generations", headers=caller.headers)
            assert refused.status_code == 503
            assert refused.headers["Retry-After"]
            answer = client.post("/api/v1/generate", json={"prompt": "hi"}, headers=caller.headers)
            assert answer.is_success

            database.restore()
            wait_for(lambda: client.get("/health/ready").status_code == 200)
            accepted = client.post("/api/v1/jobs", json={"prompt": "now"}, headers=caller.headers)
            assert accepted.status_code == 202
            wait_for(lambda: len(history(client, caller)) >= 1)  # the waiting row is written
{%- endif %}
{%- if cookiecutter.database == "sqlite" %}


def test_a_new_database_file_is_created_and_migrated_at_startup(tmp_path: Path) -> None:
    with throwaway_database(tmp_path) as url:
        app = create_app(make_settings(database_url=url))
        with TestClient(app) as client:
            assert client.get("/health/ready").json()["checks"]["database"] == "ok"
{%- else %}


def test_the_service_refuses_a_database_that_was_never_migrated(tmp_path: Path) -> None:
    with throwaway_database(tmp_path) as url:
        app = create_app(make_settings(database_url=url))
        with pytest.raises(SchemaMissingError, match="migrate"), TestClient(app):
            pass
{%- endif %}


def test_readiness_names_a_database_that_lost_its_schema(tmp_path: Path) -> None:
    with throwaway_database(tmp_path) as url:
        upgrade_database(url)

        async def readiness() -> str | None:
            async with open_database(make_settings(database_url=url)) as database:
                async with database.engine.begin() as connection:
                    await connection.exec_driver_sql("DROP TABLE alembic_version")
                return await database.readiness()

        assert "alembic_version" in str(asyncio.run(readiness()))
