"""The measurements of one run: which lines, on which servers, measured how.

What a run measures is data here (LINES, the server definitions), executed by
`Suite` against a pool of servers; the results are a plain JSON-able dict that
report.py turns into tables and target ratios.
"""

from __future__ import annotations

import json
import queue
import secrets
import statistics
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from . import backends, placement, servers
from .load import percentile
from .measure import RssSampler, Snapshot, cpu_used
from .renders import Render, log, time_cli_renders
from .servers import MODEL, Server, ServerPool

LOAD_PY = Path(__file__).resolve().parent / "load.py"
SECTIONS = ("baselines", "default", "all-on", "ttft", "cache", "streams", "workers", "render")
TOKEN_INTERVAL_MS = 20.0


@dataclass(frozen=True)
class Options:
    """How long and how hard each measurement runs (the CLI fills these in)."""

    warmup: float = 3.0
    duration: float = 10.0
    concurrency: int = 64
    workers_concurrency: int = 128
    repeat: int = 1
    max_tokens: int = 16
    ttft_requests: int = 300
    cache_requests: int = 200
    streams: int = 1000
    stream_tokens: int = 50
    stream_clients: int = 0  # 0: one per CPU the load gets
    stream_ramp_s: float = 0.5
    render_runs: int = 5
    pin: str = "isolate"
    profile: Path | None = None
    py_spy: str | None = None


@dataclass(frozen=True)
class Line:
    """One throughput figure: a closed loop of requests on one path of one server."""

    id: str
    section: str
    server: str
    path: str
    api: str  # "native" (the /api/v1 body) or "chat" (an OpenAI chat-completions body)
    stream: bool
    label: str
    concurrency: int | None = None  # None: Options.concurrency
    server_cpus: int = 1


def render_lines(render: str) -> list[Line]:
    """The eight lines of a render: native and proxy, two APIs, streamed and not."""
    lines = []
    for mode in ("native", "proxy"):
        for endpoint, path, api in (
            ("generate", "/api/v1/generate", "native"),
            ("chat", "/v1/chat/completions", "chat"),
        ):
            for stream in (False, True):
                shown = path + "/stream" if stream and api == "native" else path
                label = f"{render} render, {mode}, {shown}"
                if stream and api == "chat":
                    label += " (stream)"
                suffix = "-stream" if stream else ""
                line_id = f"{render}-{mode}-{endpoint}{suffix}"
                lines.append(Line(line_id, render, f"{render}-{mode}", shown, api, stream, label))
    return lines


CHAT = "/v1/chat/completions"
LINES: list[Line] = [
    Line("upstream", "baselines", "upstream", CHAT, "chat", False, "20 ms upstream, direct"),
    Line("upstream-stream", "baselines", "upstream", CHAT, "chat", True,
         "20 ms upstream, direct (stream)"),
    Line("aiohttp-proxy", "baselines", "aiohttp-proxy", CHAT, "chat", False,
         "minimal aiohttp proxy"),
    Line("aiohttp-proxy-stream", "baselines", "aiohttp-proxy", CHAT, "chat", True,
         "minimal aiohttp proxy (stream)"),
    Line("seed", "baselines", "seed", "/api/v1/generate", "native", False, "seed app"),
    *render_lines("default"),
    *render_lines("all-on"),
    # concurrency -1: Options.workers_concurrency (64 clients would cap two workers).
    Line("workers-1", "workers", "default-proxy", "/api/v1/generate", "native", False,
         "default render, proxy, WORKERS=1", concurrency=-1, server_cpus=1),
    Line("workers-2", "workers", "default-proxy-w2", "/api/v1/generate", "native", False,
         "default render, proxy, WORKERS=2", concurrency=-1, server_cpus=2),
]  # fmt: skip


def request_for(
    line: Line, base: str, headers: Mapping[str, str], max_tokens: int
) -> dict[str, Any]:
    """What the load generator sends for a line (see load.make_body)."""
    return {
        "url": base + line.path,
        "api": line.api,
        "stream": line.stream,
        "headers": dict(headers),
        "model": MODEL,
        "max_tokens": max_tokens,
        "temperature": 0.7,  # the response cache stays out of it (X-Cache proves it)
        "prompt": "hi {n}",
    }


def parse_event(line: str) -> dict[str, Any]:
    """A load generator's JSON line; one that does not parse becomes an `unreadable`
    event (the harness stops and says so, instead of waiting for the rest)."""
    try:
        event = json.loads(line)
    except ValueError as exc:
        return {
            "event": "unreadable",
            "line": f"an unreadable line ({len(line)} characters, {exc})",
        }
    return cast(dict[str, Any], event)


@dataclass
class LoadRun:
    """Each load generator's result, and the counters of the window they measured."""

    results: list[dict[str, Any]]
    notes: list[str]
    cpu: dict[str, float]  # CPU seconds in the window, per watched name (+ "others")
    window_s: float
    rss: RssSampler | None


@dataclass
class Suite:
    options: Options
    pool: ServerPool
    renders: dict[str, Render]
    python: Path  # the interpreter of the load generator and of the helper apps
    work: Path
    cpus: list[int]
    keys: dict[str, str] = field(default_factory=dict)  # render name -> its API key
    results: dict[str, Any] = field(default_factory=dict)

    # ---- the servers ------------------------------------------------------------------
    def define_servers(self, backing: Mapping[str, Mapping[str, str]]) -> None:
        """Register every server a run may need; each starts on first use."""
        add = self.pool.add
        add(servers.upstream(self.python))
        add(
            servers.upstream(
                self.python, name="upstream-paced", token_interval_ms=TOKEN_INTERVAL_MS
            )
        )
        add(servers.seed(self.python))
        add(servers.aiohttp_proxy(self.python, self.pool.specs["upstream"].base, "upstream"))
        for name, render in self.renders.items():
            extra = dict(backing.get(name, {}))
            if "API_KEYS" in extra:
                self.keys[name] = extra["API_KEYS"]
            self.add_render(f"{name}-native", render, None, extra)
            self.add_render(f"{name}-proxy", render, "upstream", extra)
        if "default" in self.renders:
            default = self.renders["default"]
            self.add_render("default-proxy-w2", default, "upstream", {}, workers=2)
            paced = {"FAKE_LLM_TOKEN_LATENCY_MS": f"{TOKEN_INTERVAL_MS:g}"}
            self.add_render("stream-native", default, None, paced)
            self.add_render("stream-proxy", default, "upstream-paced", {})

    def add_render(
        self,
        name: str,
        render: Render,
        upstream: str | None,
        extra: Mapping[str, str],
        workers: int = 1,
    ) -> None:
        """A render server: the fake provider, or the openai provider before `upstream`."""
        env = servers.render_env(
            provider="openai" if upstream else "fake",
            upstream_url=self.pool.specs[upstream or "upstream"].base + "/v1",
            workers=workers,
            extra=extra,
        )
        self.pool.add(
            servers.render(
                name, render.python, render.project, render.slug, self.work, env,
                workers=workers, upstream=upstream,
            )
        )  # fmt: skip

    def ensure(self, names: set[str]) -> None:
        """Start these servers and the upstreams behind them, all at once."""
        names = names | {up for name in names if (up := self.pool.specs[name].upstream)}
        self.pool.start_all(sorted(names))

    def headers_for(self, server: str) -> dict[str, str]:
        for render, key in self.keys.items():
            if server.startswith(f"{render}-"):
                return {"Authorization": f"Bearer {key}"}
        return {}

    def watched_for(self, server: Server) -> dict[str, list[int]]:
        watched = {"server": [server.pid]}
        if server.spec.upstream:
            watched["upstream"] = [self.pool.running[server.spec.upstream].pid]
        return watched

    def place(
        self, under_test: str | None, server_cpus: int = 1, mode: str | None = None
    ) -> placement.Layout:
        """Pin every running server for one measurement (see placement.py)."""
        layout = placement.plan(self.cpus, mode or self.options.pin, server_cpus)
        split = self.options.pin == "split"
        for name, server in self.pool.running.items():
            if not layout.pinned:
                cpus = None
            elif under_test is None or split or name == under_test:
                cpus = layout.server
            else:
                cpus = layout.rest
            placement.pin([server.pid], cpus, self.cpus)
        return layout

    # ---- one load run -----------------------------------------------------------------
    def run_load(
        self,
        specs: list[dict[str, Any]],
        *,
        watched: dict[str, list[int]],
        load_cpus: frozenset[int] | None,
        rss_of: int | None = None,
        timeout_s: float = 120.0,
        on_window_start: Callable[[], None] | None = None,
    ) -> LoadRun:
        """Run one load generator per spec, together; read the counters at their marks.

        The window opens at the first generator's `window-start` and closes at the
        last one's `window-end`.
        """
        procs = [
            subprocess.Popen(  # noqa: S603 - our own load generator
                [str(self.python), str(LOAD_PY), json.dumps(spec)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for spec in specs
        ]
        placement.pin([p.pid for p in procs], load_cpus, self.cpus)
        watched = {**watched, "client": [p.pid for p in procs]}
        events: queue.Queue[tuple[int, dict[str, Any] | None]] = queue.Queue()
        stderr = ["" for _ in procs]

        def read(index: int, proc: subprocess.Popen[str]) -> None:
            assert proc.stdout is not None  # noqa: S101 - a pipe
            for text in proc.stdout:
                if text.startswith("{"):
                    events.put((index, parse_event(text)))
            events.put((index, None))

        def drain(index: int, proc: subprocess.Popen[str]) -> None:
            assert proc.stderr is not None  # noqa: S101 - a pipe
            stderr[index] = proc.stderr.read()[-3000:]

        threads = [
            threading.Thread(target=job, args=(i, p), daemon=True)
            for job in (read, drain)
            for i, p in enumerate(procs)
        ]
        for thread in threads:
            thread.start()
        results: list[dict[str, Any]] = [{} for _ in procs]
        notes = ["" for _ in procs]
        counts = {"ready": 0, "window-start": 0, "window-end": 0, "eof": 0}
        before = after = None
        sampler = RssSampler({"server": rss_of}) if rss_of else None
        deadline = time.monotonic() + timeout_s
        try:
            while counts["eof"] < len(procs):
                try:
                    index, event = events.get(timeout=max(0.1, deadline - time.monotonic()))
                except queue.Empty:
                    raise SystemExit(
                        f"bench: a load generator timed out ({timeout_s:g} s)"
                    ) from None
                if event is None:
                    counts["eof"] += 1
                    continue
                kind = event["event"]
                if kind == "unreadable":
                    raise SystemExit(f"bench: a load generator wrote {event['line']}")
                if kind == "result":
                    results[index], notes[index] = event["result"], event.get("note", "")
                    continue
                counts[kind] += 1
                if kind == "ready" and counts[kind] == len(procs):
                    for proc in procs:
                        assert proc.stdin is not None  # noqa: S101 - a pipe
                        proc.stdin.write("go\n")
                        proc.stdin.flush()
                elif kind == "window-start" and counts[kind] == 1:
                    before = Snapshot.take(watched)
                    if sampler:
                        sampler.start()
                    if on_window_start:
                        on_window_start()
                elif kind == "window-end" and counts[kind] == len(procs):
                    after = Snapshot.take(watched)
                    if sampler:
                        sampler.stop()
        finally:
            for proc in procs:
                if proc.poll() is None and counts["eof"] < len(procs):
                    proc.kill()
                proc.wait(timeout=30)
            for thread in threads:
                thread.join(timeout=5)
        for proc, error in zip(procs, stderr, strict=True):
            if proc.returncode != 0:
                raise SystemExit(f"bench: a load generator failed:\n{error}")
        if before is None or after is None:
            raise SystemExit("bench: a load generator reported no measured window")
        return LoadRun(results, notes, cpu_used(before, after), after.at - before.at, sampler)

    # ---- throughput -------------------------------------------------------------------
    def throughput(self, line: Line, *, mode: str | None = None, note: str = "") -> dict[str, Any]:
        options = self.options
        self.ensure({line.server})
        server = self.pool.running[line.server]
        concurrency = line.concurrency or options.concurrency
        if concurrency == -1:
            concurrency = options.workers_concurrency
        spec = {
            "mode": "throughput",
            "request": request_for(
                line, server.base, self.headers_for(line.server), options.max_tokens
            ),
            "concurrency": concurrency,
            "warmup": options.warmup,
            "duration": options.duration,
        }
        runs = []
        spies: list[subprocess.Popen[bytes]] = []

        def profile() -> None:
            spies.append(self.profiler(line, server))

        for attempt in range(options.repeat):
            times = f" run {attempt + 1}/{options.repeat}" if options.repeat > 1 else ""
            log(f"{line.id}: c={concurrency}, {options.warmup:g}+{options.duration:g} s{times}")
            layout = self.place(line.server, line.server_cpus, mode)
            run = self.run_load(
                [spec],
                watched=self.watched_for(server),
                load_cpus=layout.rest,
                rss_of=server.pid,
                timeout_s=options.warmup + options.duration + 60,
                on_window_start=profile if options.profile else None,
            )
            while spies:
                spies.pop().wait(timeout=options.duration + 30)
            result = run.results[0]
            ok = result["ok"]
            result.update(
                cpu={name: used / run.window_s for name, used in run.cpu.items()},
                cpu_us_per_request=run.cpu["server"] / ok * 1e6 if ok else None,
                client_cpu_us_per_request=run.cpu["client"] / ok * 1e6 if ok else None,
                rss_peak_worker=run.rss.peak_process("server") if run.rss else None,
                window_s=run.window_s,
                note=note or layout.note,
            )
            runs.append(result)
        chosen = dict(sorted(runs, key=lambda r: r["rps"])[len(runs) // 2])  # the median run
        chosen.update(
            runs_rps=[r["rps"] for r in runs],
            runs_cpu_us=[r["cpu_us_per_request"] for r in runs],
            label=line.label,
            server=line.server,
            path=line.path,
            stream=line.stream,
            concurrency=concurrency,
            section=line.section,
        )
        return chosen

    def profiler(self, line: Line, server: Server) -> subprocess.Popen[bytes]:
        """py-spy on the server under test for the measured window (raw, flamegraph-ready)."""
        options = self.options
        assert options.profile is not None  # noqa: S101 - the CLI checked both
        assert options.py_spy is not None  # noqa: S101
        options.profile.mkdir(parents=True, exist_ok=True)
        target = options.profile / f"{line.id}.txt"
        command = [
            options.py_spy, "record", "--nonblocking", "--format", "raw", "--rate", "250",
            "--subprocesses", "--duration", str(max(1, int(options.duration - 1))),
            "--pid", str(server.pid), "--output", str(target),
        ]  # fmt: skip
        log(f"profiling {server.name} -> {target}")
        return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603

    def lines(self, sections: set[str]) -> None:
        """Every throughput line of the chosen sections (but the workers pair)."""
        out = self.results.setdefault("lines", {})
        wanted = [line for line in LINES if line.section in sections - {"workers"}]
        self.ensure({line.server for line in wanted})  # they import in parallel
        for line in wanted:
            out[line.id] = self.throughput(line)

    def workers(self) -> None:
        """WORKERS=2 against WORKERS=1, both under the same placement."""
        out = self.results.setdefault("lines", {})
        pinned = placement.plan(self.cpus, self.options.pin, 2).pinned
        mode, note = (None, "") if pinned else (
            "none",
            f"unpinned: 2 workers, the upstream and the load share {len(self.cpus)} CPUs",
        )  # fmt: skip
        for line in LINES:
            if line.section == "workers":
                out[line.id] = self.throughput(line, mode=mode, note=note)
        self.pool.stop("default-proxy-w2")

    # ---- sequential: time to first token, cache --------------------------------------
    def sequential(self, targets: list[dict[str, Any]], count: int, warmup: int) -> dict[str, Any]:
        layout = self.place(None)
        run = self.run_load(
            [
                {
                    "mode": "sequential",
                    "targets": targets,
                    "requests": count,
                    "warmup_requests": warmup,
                }
            ],
            watched={},
            load_cpus=layout.rest,
            timeout_s=60 + (count + warmup) * len(targets) * 0.5,
        )
        return run.results[0]

    def target(
        self, name: str, server: str, path: str, api: str, stream: bool, **extra: Any
    ) -> dict[str, Any]:
        base = self.pool.running[server].base
        line = Line(name, "", server, path, api, stream, name)
        request = request_for(line, base, self.headers_for(server), self.options.max_tokens)
        request.update(extra.pop("request", {}))
        return {"name": name, "request": request, **extra}

    def ttft(self) -> None:
        """Time to the first token: straight from the upstream, and through each render."""
        proxies = {f"{render}-proxy" for render in self.renders}
        self.ensure({"upstream", *proxies})
        targets = [self.target("upstream", "upstream", CHAT, "chat", True, measure="first-token")]
        for render in self.renders:
            server = f"{render}-proxy"
            targets += [
                self.target(f"{render}-native-stream", server, "/api/v1/generate/stream", "native",
                            True, measure="first-token"),
                self.target(f"{render}-chat-stream", server, CHAT, "chat", True,
                            measure="first-token"),
            ]  # fmt: skip
        count = self.options.ttft_requests
        log(f"time to first token: {count} sequential streams per path, {len(targets)} interleaved")
        self.results["ttft"] = self.sequential(targets, count, max(10, count // 10))

    def cache(self) -> None:
        """Latency of a cache hit and of a miss (temperature 0: cacheable)."""
        proxies = {f"{render}-proxy" for render in self.renders}
        self.ensure(proxies)
        targets = []
        for render in self.renders:
            server = f"{render}-proxy"
            for kind, prompt, expected in (
                ("miss", "cache miss {n}", "MISS"),
                ("hit", "cache hit", "HIT"),
            ):
                targets.append(
                    self.target(f"{render}-{kind}", server, "/api/v1/generate", "native", False,
                                measure="response", expect_cache=expected,
                                request={"prompt": prompt, "temperature": 0})
                )  # fmt: skip
        count = self.options.cache_requests
        log(f"cache: {count} sequential requests per path, misses and hits interleaved")
        self.results["cache"] = self.sequential(targets, count, 5)

    # ---- 1,000 concurrent streams -----------------------------------------------------
    def streams(self) -> None:
        """Many concurrent paced streams on one worker: direct, fake provider, proxy."""
        out = self.results.setdefault("streams", {})
        fake = {
            "slug": self.renders["default"].slug,
            "model": MODEL,
            "min_tokens": self.options.stream_tokens,
        }
        runs = [
            ("direct", "upstream-paced", CHAT, "chat", None),
            ("native", "stream-native", "/api/v1/generate/stream", "native", fake),
            ("proxy", "stream-proxy", CHAT, "chat", None),
        ]
        for name, server_name, path, api, chosen in runs:
            self.ensure({server_name})
            out[name] = self.stream_run(name, self.pool.running[server_name], path, api, chosen)
            if server_name != "upstream-paced":
                self.pool.stop(server_name)  # a fresh process per run: its own peak memory
        self.pool.stop("upstream-paced")

    def stream_run(
        self, name: str, server: Server, path: str, api: str, fake: dict[str, Any] | None
    ) -> dict[str, Any]:
        options = self.options
        layout = self.place(server.name)
        clients = options.stream_clients or len(layout.rest or self.cpus)
        log(
            f"streams ({name}): {options.streams} at once via {server.name} {path}, "
            f"{options.stream_tokens} tokens {TOKEN_INTERVAL_MS:g} ms apart, {clients} client(s)"
        )
        line = Line(name, "streams", server.name, path, api, True, name)
        request = request_for(
            line, server.base, self.headers_for(server.name), options.stream_tokens
        )
        share = [
            options.streams // clients + (i < options.streams % clients) for i in range(clients)
        ]
        specs = [
            {"mode": "streams", "request": request, "first": sum(share[:i]), "count": n,
             "ramp_s": options.stream_ramp_s, "timeout": 60.0, "fake": fake}
            for i, n in enumerate(share)
        ]  # fmt: skip
        run = self.run_load(
            specs,
            watched=self.watched_for(server),
            load_cpus=layout.rest,
            rss_of=server.pid,
            timeout_s=180,
        )
        results = run.results
        gaps = [gap for r in results for gap in r["gaps_ms"]]
        tokens = [n for r in results for n in r["tokens"]]
        errors: dict[str, int] = {}
        for r in results:
            for kind, n in r["error_kinds"].items():
                errors[kind] = errors.get(kind, 0) + n
        notes = {note for note in [*run.notes, layout.note] if note}
        return {
            "server": server.name,
            "path": path,
            "streams": sum(r["streams"] for r in results),
            "completed": sum(r["completed"] for r in results),
            "errors": sum(errors.values()),
            "error_kinds": errors,
            "peak_open": sum(r["peak_open"] for r in results),
            "clients": clients,
            "seconds": max(r["seconds"] for r in results),
            "tokens_min": min(tokens, default=0),
            "tokens_median": statistics.median(tokens) if tokens else 0,
            "gap_p50_ms": percentile(gaps, 0.50),
            "gap_p99_ms": percentile(gaps, 0.99),
            "added_gap_p50_ms": percentile(gaps, 0.50) - TOKEN_INTERVAL_MS,
            "added_gap_p99_ms": percentile(gaps, 0.99) - TOKEN_INTERVAL_MS,
            "ttft_p50_ms": percentile([t for r in results for t in r["ttft_ms"]], 0.50),
            "peak_rss": run.rss.peak_process("server") if run.rss else None,
            "cpu": {key: used / run.window_s for key, used in run.cpu.items()},
            "cpu_us_per_token": run.cpu["server"] / sum(tokens) * 1e6 if sum(tokens) else None,
            "note": "; ".join(sorted(notes)),
        }

    # ---- the rest -----------------------------------------------------------------------
    def render_time(self) -> None:
        log(f"timing {self.options.render_runs} `cookiecutter --no-input` CLI renders")
        runs = time_cli_renders(self.options.render_runs)
        self.results["render"] = {"runs_s": runs, "median_s": statistics.median(runs)}

    def finish(self) -> None:
        """Stop every server; keep the idle memory and anything unusual they logged."""
        self.pool.stop_all()
        self.results["idle_rss"] = dict(self.pool.idle_rss)
        self.results["server_logs"] = dict(self.pool.complaints)


@contextmanager
def backing_services(
    renders: Mapping[str, Render], postgres_url: str, redis_url: str, versions: dict[str, str]
) -> Iterator[dict[str, dict[str, str]]]:
    """Per render, the settings of its services: a fresh database, a key prefix, a key."""
    with ExitStack() as stack:
        env: dict[str, dict[str, str]] = {}
        for name, render in renders.items():
            extra: dict[str, str] = {}
            if render.uses_postgres:
                extra["DATABASE_URL"] = stack.enter_context(
                    backends.postgres_database(render.python, postgres_url, versions)
                )
            if render.uses_redis:
                extra["REDIS_URL"] = redis_url
                extra["REDIS_KEY_PREFIX"] = stack.enter_context(
                    backends.redis_prefix(render.python, redis_url, versions)
                )
            if render.auth:
                extra["API_KEYS"] = secrets.token_urlsafe(24)
                extra["ALLOW_ANONYMOUS"] = "false"
            env[name] = extra
        yield env


def migrate(render: Render, work: Path, extra: Mapping[str, str]) -> None:
    """`python -m <slug> migrate` against the render's fresh database."""
    env = servers.render_env(provider="fake", upstream_url="http://127.0.0.1:9", extra=extra)
    spec = servers.render(
        f"migrate-{render.name}", render.python, render.project, render.slug, work, env
    )
    log(f"{render.name}: {render.slug} migrate")
    done = subprocess.run(  # noqa: S603 - the render's own command
        [*spec.command, "migrate"],
        cwd=spec.cwd,
        env={k: v.replace("{port}", "8000") for k, v in spec.env.items()},
        capture_output=True,
        text=True,
        timeout=120,
    )
    if done.returncode != 0:
        raise SystemExit(f"bench: migrate failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
