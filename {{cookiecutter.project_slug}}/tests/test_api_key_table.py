"""The api_keys table: `create-api-key`, `list-api-keys`, `revoke-api-key`, and keys from it."""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from {{ cookiecutter.project_slug }}.auth import key_table
from {{ cookiecutter.project_slug }}.auth.api_keys import key_id
from {{ cookiecutter.project_slug }}.db.api_keys import APIKeyRecord
from {{ cookiecutter.project_slug }}.db.engine import open_database
from {{ cookiecutter.project_slug }}.main import create_app
from {{ cookiecutter.project_slug }}.settings import Settings

from .commands import command, one_line_error
from .conftest import AUTH, make_settings
{%- if cookiecutter.database == "postgresql" %}
from .db_postgresql import DatabaseSwitch
{%- else %}
from .db_sqlite import DatabaseSwitch
{%- endif %}

PROMPT = {"prompt": "hi", "max_tokens": 3}


def rows(settings: Settings) -> list[tuple[Any, ...]]:
    """Every row of api_keys, every column, read outside any app."""

    async def read() -> list[tuple[Any, ...]]:
        async with open_database(settings) as database, database.session() as session:
            found = await session.scalars(select(APIKeyRecord).order_by(APIKeyRecord.id))
            return [
                (r.id, r.name, r.digest, r.created_at, r.last_used_at, r.revoked_at) for r in found
            ]

    return asyncio.run(read())


def row_named(settings: Settings, name: str) -> tuple[Any, ...]:
    (row,) = [row for row in rows(settings) if row[1] == name]
    return row


def create(settings: Settings, name: str) -> str:
    async def run() -> str:
        async with open_database(settings) as database:
            return await key_table.create_key(database, name)

    return asyncio.run(run())


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def new_name() -> str:
    return f"team-{uuid.uuid4().hex[:8]}"


def test_create_api_key_prints_the_key_once_and_stores_only_its_digest(tmp_path: Path) -> None:
    name = new_name()
    created = command("create-api-key", name, tmp_path=tmp_path)
    assert created.returncode == 0, created.stderr
    (key,) = created.stdout.splitlines()
    assert key.startswith("sk-")
    assert len(key) >= 40
    assert "only time" in created.stderr
    assert key not in created.stderr

    settings = make_settings()
    stored = row_named(settings, name)
    assert stored[2] == hashlib.sha256(key.encode()).hexdigest()
    assert key not in repr(rows(settings))
    with TestClient(create_app(settings)) as client:
        assert client.post("/api/v1/generate", json=PROMPT, headers=bearer(key)).status_code == 200
        assert client.get("/v1/models", headers={"X-API-Key": key}).status_code == 200

    listed = command("list-api-keys", tmp_path=tmp_path)
    assert listed.returncode == 0, listed.stderr
    (line,) = [line for line in listed.stdout.splitlines() if line.startswith(name + " ")]
    assert key_id(key) in line
    assert key not in listed.stdout
    columns = re.split(r"\s{2,}", listed.stdout.splitlines()[0])
    assert columns == ["NAME", "ID", "CREATED", "LAST USED", "REVOKED"]


def test_a_duplicate_or_malformed_name_is_refused_in_one_line(tmp_path: Path) -> None:
    name = new_name()
    assert command("create-api-key", name, tmp_path=tmp_path).returncode == 0
    before = rows(make_settings())
    again = command("create-api-key", name, tmp_path=tmp_path)
    assert "already exists" in one_line_error(again)
    assert again.stdout == ""
    odd = command("create-api-key", "two words", tmp_path=tmp_path)
    assert "not a key name" in one_line_error(odd)
    assert rows(make_settings()) == before


def test_a_revoked_key_is_refused_naming_the_reason_and_nothing_changes(tmp_path: Path) -> None:
    settings = make_settings()
    name = new_name()
    key = create(settings, name)
    revoked = command("revoke-api-key", name, tmp_path=tmp_path)
    assert revoked.returncode == 0, revoked.stderr
    assert "Revoked" in revoked.stdout
    before = rows(settings)
    assert row_named(settings, name)[5] is not None

    with TestClient(create_app(settings)) as client:
        for _ in range(3):
            response = client.post("/api/v1/generate", json=PROMPT, headers=bearer(key))
            assert response.status_code == 401
            error = response.json()["error"]
            assert (error["code"], error["type"]) == ("revoked_api_key", "authentication_error")
            assert "revoked" in error["message"]
    assert rows(settings) == before  # not even last_used_at

    again = command("revoke-api-key", name, tmp_path=tmp_path)
    assert again.returncode == 0
    assert "already revoked" in again.stdout
    assert "no API key is named" in one_line_error(
        command("revoke-api-key", new_name(), tmp_path=tmp_path)
    )


def test_last_used_is_written_at_most_once_a_minute_per_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = make_settings()
    name = new_name()
    key = create(settings, name)
    assert row_named(settings, name)[4] is None

    def last_used() -> datetime | None:
        value: datetime | None = row_named(settings, name)[4]
        return value

    with TestClient(create_app(settings)) as client:
        for _ in range(5):
            assert client.get("/v1/models", headers=bearer(key)).status_code == 200
    first = last_used()
    assert first is not None
    with TestClient(create_app(settings)) as client:
        # A new process writes once too; the same process waits a minute.
        monkeypatch.setattr(key_table, "LAST_USED_EVERY_S", 0.2)
        assert client.get("/v1/models", headers=bearer(key)).status_code == 200
        time.sleep(0.3)
        assert client.get("/v1/models", headers=bearer(key)).status_code == 200
        assert client.get("/v1/models", headers=bearer(key)).status_code == 200
    assert last_used() is not None
    assert last_used() != first


def test_keys_of_api_keys_and_of_the_table_both_work_and_the_env_ones_without_the_database(
    tmp_path: Path, database_for_the_run: str
) -> None:
    with DatabaseSwitch(database_for_the_run, tmp_path) as database:
        settings = make_settings(database_url=database.url, db_pool_timeout_s=2)
        with TestClient(create_app(settings)) as client:
            key = create(settings, new_name())
            for headers in (AUTH, bearer(key)):
                response = client.post("/api/v1/generate", json=PROMPT, headers=headers)
                assert response.status_code == 200
            database.cut()
            assert client.post("/api/v1/generate", json=PROMPT, headers=AUTH).status_code == 200
            down = client.post("/api/v1/generate", json=PROMPT, headers=bearer(key))
            assert down.status_code == 503
            assert down.json()["error"]["code"] == "database_unavailable"
            database.restore()


def test_commands_report_bad_settings_in_one_line(tmp_path: Path) -> None:
    production = {"ENVIRONMENT": "production", "ALLOW_ANONYMOUS": "true"}
    refused = command("list-api-keys", tmp_path=tmp_path, **production)
    assert "ALLOW_ANONYMOUS" in one_line_error(refused)
