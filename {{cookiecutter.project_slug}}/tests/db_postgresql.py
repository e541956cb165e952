"""PostgreSQL for the tests: throwaway databases, and an outage made with a TCP proxy.

The server is the one DATABASE_URL names (CI sets it), else 127.0.0.1:5432 as user
postgres. Without a server the tests that need it are skipped, or failed when CI is set.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from {{ cookiecutter.project_slug }}.db.engine import async_url

DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"


def server_url() -> URL:
    """The server to make databases on, connected to its `postgres` database."""
    url = async_url(os.environ.get("DATABASE_URL") or DEFAULT_SERVER)
    if url.get_backend_name() != "postgresql":
        url = async_url(DEFAULT_SERVER)
    return url.set(database="postgres")


async def administer(statement: str, url: URL | None = None) -> None:
    engine = create_async_engine(
        url or server_url(),
        poolclass=NullPool,
        isolation_level="AUTOCOMMIT",
        connect_args={"timeout": 5},
    )
    try:
        async with engine.connect() as connection:
            await connection.execute(text(statement))
    finally:
        await engine.dispose()


@contextmanager
def throwaway_database(folder: Path) -> Iterator[str]:
    """A new, empty database on the server (`folder` is unused), dropped afterwards."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    try:
        asyncio.run(administer(f'CREATE DATABASE "{name}"'))
    except (OSError, SQLAlchemyError) as exc:
        where = server_url().render_as_string(hide_password=True)
        message = f"PostgreSQL at {where} does not answer ({exc}); start it or set DATABASE_URL"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    try:
        yield server_url().set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(administer(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def delete_rows(url: str) -> None:
    """Empty the jobs and the generation log."""
    asyncio.run(administer("DELETE FROM jobs", async_url(url)))
    asyncio.run(administer("DELETE FROM generation_log", async_url(url)))


class DatabaseSwitch:
    """The database at `url`, reached through a loopback TCP proxy that the test controls.

    `cut()` closes the proxy and every connection through it (the server is gone, as
    in a network failure or a restart); `restore()` listens again on the same port.
    """

    def __init__(self, url: str, folder: Path) -> None:
        target = make_url(url)
        self.target = (target.host or "127.0.0.1", target.port or 5432)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self.url = target.set(host="127.0.0.1", port=self.port).render_as_string(
            hide_password=False
        )
        self.symptom = "Connect call failed"  # the reason readiness gives
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._accepting = threading.Event()
        self._start_accepting()

    def __enter__(self) -> DatabaseSwitch:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.cut()

    def cut(self) -> None:
        with self._lock:
            self._accepting.clear()
            sockets, self._sockets = self._sockets, set()
        for sock in sockets:
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def restore(self) -> None:
        if not self._accepting.is_set():
            self._listener = socket.create_server(("127.0.0.1", self.port))
            self._start_accepting()

    def _start_accepting(self) -> None:
        self._listener.settimeout(0.05)
        with self._lock:
            self._sockets.add(self._listener)
        self._accepting.set()
        threading.Thread(target=self._accept, args=(self._listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while self._accepting.is_set():
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                server = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            client.settimeout(None)
            server.settimeout(None)
            with self._lock:
                if not self._accepting.is_set():  # cut meanwhile
                    client.close()
                    server.close()
                    return
                self._sockets.update((client, server))
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        with suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        for sock in (source, sink):
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
