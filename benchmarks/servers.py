"""The servers under test: what each one runs, and starting, probing and stopping it.

Every server is its own process (its own session, so that its process group is it
and its children) with the same settings: one worker unless a line says otherwise,
uvloop and httptools, access log off, log level warning.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

from .measure import children, rss_bytes

APPS = Path(__file__).resolve().parent / "apps"
MODEL = "bench-model"
UPSTREAM_DELAY_MS = 20.0
# Upstream calls a proxy may have in flight: above the 1,000 concurrent streams.
MAX_CONCURRENCY = 1024

# uvicorn's flags for the helper apps, matching what the render's own command
# (`python -m <slug>`: uvicorn.run with loop and http "auto", which resolve to uvloop
# and httptools, access_log=False, server_header=False, proxy_headers=True) applies.
UVICORN_FLAGS = [
    "--host", "127.0.0.1",
    "--loop", "uvloop",
    "--http", "httptools",
    "--no-access-log",
    "--log-level", "warning",
    "--no-server-header",
    "--proxy-headers",
]  # fmt: skip

# Variables a server inherits from this process; everything else it is given explicitly.
INHERITED = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "TZ")


def base_env() -> dict[str, str]:
    env = {key: os.environ[key] for key in INHERITED if key in os.environ}
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # the helper apps run from the repository
    return env


class ServerError(RuntimeError):
    pass


_CHOSEN: set[int] = set()


def ephemeral_start() -> int:
    """The first port the kernel hands out to outgoing connections."""
    with suppress(OSError, ValueError, IndexError):
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    return 32768


def free_port() -> int:
    """A free port below the ephemeral range.

    The port is chosen before its server starts: one the kernel may hand to a client
    connection meanwhile (thousands of them, in the streams test) could be taken.
    """
    high = ephemeral_start()
    for _ in range(200):
        port = random.randrange(max(1024, high - 12000), high)  # noqa: S311 - not crypto
        if port in _CHOSEN:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _CHOSEN.add(port)
        return port
    raise ServerError("no free port below the ephemeral range")


@dataclass(frozen=True)
class ServerSpec:
    """How to run one server; `{port}` in the command or env is filled in at start.

    The port is chosen when the spec is made, so that a proxy's settings can name its
    upstream's address before either runs.
    """

    name: str
    command: tuple[str, ...]
    cwd: Path
    env: Mapping[str, str]
    port: int = field(default_factory=free_port)
    probe: str = "/"
    workers: int = 1
    upstream: str | None = None  # the server this one forwards to, if any

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class Server:
    spec: ServerSpec
    proc: subprocess.Popen[bytes]
    log_path: Path

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def port(self) -> int:
        return self.spec.port

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def base(self) -> str:
        return self.spec.base

    def log_tail(self, lines: int = 20) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def start(spec: ServerSpec, logs: Path) -> Server:
    fill = {"port": str(spec.port)}
    command = [part.format_map(fill) for part in spec.command]
    env = {key: value.format_map(fill) for key, value in spec.env.items()}
    log_path = logs / f"{spec.name}.log"
    with log_path.open("wb") as out:
        proc = subprocess.Popen(  # noqa: S603 - our own servers
            command,
            cwd=spec.cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Server(spec, proc, log_path)


def wait_ready(server: Server, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    url = server.base + server.spec.probe
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise ServerError(
                f"{server.name} exited with {server.proc.returncode}:\n{server.log_tail(40)}"
            )
        try:
            with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 - loopback
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    raise ServerError(f"{server.name} did not answer {url} in {timeout_s:g} s")


def stop(server: Server, timeout_s: float = 15.0) -> None:
    """SIGTERM to the server's process group, SIGKILL if it lingers."""
    if server.proc.poll() is None:
        with suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGTERM)
    try:
        server.proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        with suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGKILL)
        server.proc.wait(timeout=5)


@dataclass
class ServerPool:
    """Servers started on first use and kept for the run; all stopped at the end."""

    logs: Path
    specs: dict[str, ServerSpec] = field(default_factory=dict)
    running: dict[str, Server] = field(default_factory=dict)
    # What servers logged beyond their expected warnings, kept for the run's record.
    complaints: dict[str, list[str]] = field(default_factory=dict)
    # Each server's resident set once started and settled, before any load (bytes).
    idle_rss: dict[str, int] = field(default_factory=dict)
    settle_s: float = 1.0

    def add(self, spec: ServerSpec) -> None:
        self.specs[spec.name] = spec

    def get(self, name: str) -> Server:
        """The running server `name`, started (and its idle RSS taken) if need be."""
        if name not in self.running:
            self.start_all([name])
        return self.running[name]

    def start_all(self, names: list[str]) -> None:
        """Start several servers at once (they import in parallel), then wait for each."""
        fresh = [start(self.specs[name], self.logs) for name in names if name not in self.running]
        for server in fresh:
            self.running[server.name] = server
        for server in fresh:
            wait_ready(server)
        if fresh:
            time.sleep(self.settle_s)  # let start-up work (lazy imports, first GC) finish
            for server in fresh:
                self.idle_rss[server.name] = max(rss_bytes(pid) for pid in worker_pids(server))

    def stop(self, name: str) -> None:
        server = self.running.pop(name, None)
        if server is not None:
            stop(server)
            self.report_log(server)

    def stop_all(self) -> None:
        for name in list(self.running):
            self.stop(name)

    def report_log(self, server: Server) -> None:
        noisy = [
            line
            for line in server.log_tail(200).splitlines()
            if "authentication is off" not in line and line.strip()
        ]
        if noisy:
            self.complaints[server.name] = noisy[-5:]


def worker_pids(server: Server) -> list[int]:
    """The processes that serve requests: the server itself, or its workers."""
    if server.spec.workers > 1:
        return children(server.pid) or [server.pid]
    return [server.pid]


@contextmanager
def pool(logs: Path) -> Iterator[ServerPool]:
    servers = ServerPool(logs)
    try:
        yield servers
    finally:
        servers.stop_all()


# --------------------------------------------------------------------------------------
# What each server runs
# --------------------------------------------------------------------------------------
def upstream(python: Path, *, name: str = "upstream", token_interval_ms: float = 0.0) -> ServerSpec:
    """The 20 ms OpenAI-compatible model server (raw ASGI on uvicorn)."""
    env = {
        **base_env(),
        "BENCH_UPSTREAM_DELAY_MS": f"{UPSTREAM_DELAY_MS:g}",
        "BENCH_UPSTREAM_TOKEN_INTERVAL_MS": f"{token_interval_ms:g}",
    }
    command = (str(python), "-m", "uvicorn", "upstream:app", "--port", "{port}", *UVICORN_FLAGS)
    return ServerSpec(name, (*command, "--workers", "1"), APPS, env)


def seed(python: Path) -> ServerSpec:
    """The seed guide's sample app, `uvicorn main:app`."""
    command = (str(python), "-m", "uvicorn", "main:app", "--port", "{port}", *UVICORN_FLAGS)
    return ServerSpec("seed", (*command, "--workers", "1"), APPS / "seed", base_env())


def aiohttp_proxy(python: Path, upstream_url: str, upstream_name: str) -> ServerSpec:
    """The minimal pass-through proxy on aiohttp."""
    env = {
        **base_env(),
        "PORT": "{port}",
        "BENCH_UPSTREAM_URL": upstream_url,
        "BENCH_MAX_CONNECTIONS": str(MAX_CONCURRENCY),
    }
    command = (str(python), "aiohttp_proxy.py")
    return ServerSpec("aiohttp-proxy", command, APPS, env, upstream=upstream_name)


def render_env(
    *,
    provider: str,
    upstream_url: str,
    workers: int = 1,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The render's settings: the same for every render server but what `extra` adds."""
    return {
        **base_env(),
        "ENVIRONMENT": "development",
        "HOST": "127.0.0.1",
        "PORT": "{port}",
        "WORKERS": str(workers),
        "LOG_LEVEL": "WARNING",
        "LOG_FORMAT": "json",
        "LLM_PROVIDER": provider,
        "LLM_BASE_URL": upstream_url,
        "LLM_MODEL": MODEL,
        "LLM_API_KEY": "bench-upstream-key",
        "LLM_MAX_CONCURRENCY": str(MAX_CONCURRENCY),
        # Every request passes the rate limiter (its cost is measured) but none is refused:
        # the whole load comes from one caller.
        "RATE_LIMIT_RPM": "1000000000",
        "RATE_LIMIT_TPM": "1000000000000",
        # Authentication is off unless `extra` sets keys (the all-on render).
        "API_KEYS": "",
        "ALLOW_ANONYMOUS": "true",
        **(extra or {}),
    }


def render(
    name: str,
    python: Path,
    project: Path,
    slug: str,
    work: Path,
    env: Mapping[str, str],
    *,
    workers: int = 1,
    upstream: str | None = None,
) -> ServerSpec:
    """`python -m <slug>` from its own copy of the project folder.

    The copy holds alembic.ini, the migrations and its own ./data (a SQLite file per
    server), but not a .env (`make install` writes one): only `env` counts.
    """
    cwd = work / f"cwd-{name}"
    shutil.rmtree(cwd, ignore_errors=True)
    shutil.copytree(
        project, cwd, ignore=shutil.ignore_patterns(".env", ".venv", "data", ".git", "__pycache__")
    )
    command = (str(python), "-m", slug)
    return ServerSpec(
        name, command, cwd, env, probe="/health/live", workers=workers, upstream=upstream
    )
