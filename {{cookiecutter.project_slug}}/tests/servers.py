"""Real HTTP servers for tests: uvicorn on a free loopback port, in a background thread,
or the service itself started with its own command in a process of its own."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.types import ASGIApp


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serve(app: ASGIApp, *, lifespan: str = "on") -> Iterator[str]:
    """Serve `app` until the block ends; yields its base URL."""
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=free_port(),
        lifespan=lifespan,  # type: ignore[arg-type]
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=5,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("test server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{config.port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


@contextmanager
def service_process(folder: Path, **variables: str) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """`python -m <slug>` on a free port with these variables (the tests' credentials among
    them: conftest.AUTH_ENV); killed, with its worker processes, if still running."""
    port = free_port()
    env = {
        **os.environ,
        "ENVIRONMENT": "test",
        "LOG_FORMAT": "json",
        "PORT": str(port),
        "DRAIN_DELAY_S": "0.2",
        **variables,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "{{ cookiecutter.project_slug }}"],
        cwd=folder,  # no .env there: only the variables above apply
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its group: uvicorn's worker processes with it
    )
    base_url = f"http://127.0.0.1:{port}"
    # Worker processes (WORKERS) each import the service, at once, on the same cores.
    if not wait_until_up(f"{base_url}/health/live", process, 20 * int(env.get("WORKERS", "1"))):
        kill_group(process)
        pytest.fail(f"server did not start:\n{process.communicate()[0]}")
    try:
        yield base_url, process
    finally:
        if process.poll() is None:
            kill_group(process)
            process.wait()
        if process.stdout:
            process.stdout.close()


def wait_until_up(url: str, process: subprocess.Popen[Any], seconds: float) -> bool:
    """Poll `url` until it answers 2xx (True), or `process` exits or time runs out (False).

    One client for every poll: a new client builds a TLS context each time (tens of ms
    of CPU), taken from the process that is starting on the same cores.
    """
    deadline = time.monotonic() + seconds
    with httpx.Client(timeout=1) as client:
        while True:
            try:
                client.get(url).raise_for_status()
                return True
            except httpx.HTTPError:
                if process.poll() is not None or time.monotonic() > deadline:
                    return False
                time.sleep(0.1)


def kill_group(process: subprocess.Popen[str]) -> None:
    with suppress(ProcessLookupError):  # all gone already
        os.killpg(process.pid, signal.SIGKILL)
