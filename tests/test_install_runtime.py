"""The default render's own test suite passes in its fresh venv, and it serves over HTTP.

Shares the fresh venv of tests/test_install_static.py (`default_install`).
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.installs import Installed
from tests.support import RecordProperty, describe, timed_with_children

pytestmark = pytest.mark.install

SLUG = "ai_service"
API_KEY = "sk-install-test-0123456789abcdef"


def test_own_test_suite_passes(install: Installed, record_property: RecordProperty) -> None:
    result, figure = timed_with_children(
        lambda: install.run(install.bin / "python", "-m", "pytest", "-q", "-p", "no:cacheprovider")
    )
    record_property(f"timing: install {install.name}: own pytest", figure)
    assert result.returncode == 0, describe(result)
    assert " passed" in result.stdout, describe(result)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def request(
    url: str, body: dict[str, Any] | None = None, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    """One HTTP call with the standard library: (status, decoded JSON body)."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(  # noqa: S310 - http://127.0.0.1 only
        url, data=data, headers={"content-type": "application/json", **(headers or {})}
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as response:  # noqa: S310
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


@pytest.fixture
def server(
    default_install: Installed, tmp_path: Path
) -> Iterator[tuple[str, subprocess.Popen[bytes], Path]]:
    """`python -m <slug>` on a free loopback port, started the way its README says."""
    port = free_port()
    log = tmp_path / "server.log"
    env = {
        **default_install.env,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "API_KEYS": API_KEY,
        "ENVIRONMENT": "test",
    }
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [str(default_install.bin / "python"), "-m", SLUG],
            cwd=default_install.project,  # its .env is there; the variables above win
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if request(f"{base}/health/live")[0] == 200:
                break
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            process.wait()
            pytest.fail(f"`python -m {SLUG}` did not start:\n{log.read_text(errors='replace')}")
        time.sleep(0.1)
    yield base, process, log
    if process.poll() is None:
        process.kill()
        process.wait()


def test_serves_over_real_http_with_its_own_command(
    server: tuple[str, subprocess.Popen[bytes], Path],
) -> None:
    base, process, log = server

    status, body = request(f"{base}/health/ready")
    assert status == 200, body

    status, body = request(
        f"{base}/api/v1/generate", {"prompt": "hi"}, {"Authorization": f"Bearer {API_KEY}"}
    )
    assert status == 200, body
    assert isinstance(body["text"], str)
    assert body["text"]
    assert isinstance(body["tokens_used"], int)

    status, body = request(f"{base}/api/v1/generate", {"prompt": "hi"})
    assert status == 401, body
    assert set(body) == {"error"}, body
    assert {"message", "type", "param", "code"} <= set(body["error"]), body

    process.send_signal(signal.SIGTERM)
    try:
        returncode = process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        pytest.fail(f"still running 30 s after SIGTERM:\n{log.read_text(errors='replace')}")
    # uvicorn re-raises SIGTERM after a graceful shutdown.
    assert returncode in {0, -signal.SIGTERM}, log.read_text(errors="replace")
