"""The load generator: a separate process that drives one measurement and reports it.

Run by the harness with the renders' Python (aiohttp and uvloop are there):

    python load.py SPEC_JSON

It prints JSON lines on stdout: `{"event": "ready"}` once set up, then waits for a
line on stdin (so that several clients start together), then `window-start` and
`window-end` around the measured window (the harness reads the servers' CPU
counters at those two marks) and finally `{"event": "result", ...}`.

Modes:
- throughput: a closed loop of `concurrency` workers on one pooled aiohttp session;
  a warm-up that is discarded, then a measured window; an error is a non-200
  answer, a stream without its end event, or an exception;
- sequential: requests one at a time, several targets interleaved (A, B, C, A, ...)
  so that drift on a busy machine hits them alike: time to the first token of a
  stream, or to the whole answer (with its X-Cache header checked);
- streams: many concurrent Server-Sent-Event streams, one connection each, read
  with a bare asyncio protocol (aiohttp's per-chunk cost would make the client the
  bottleneck at tens of thousands of events a second): token arrival times give
  the inter-token gaps.

Only the standard library is imported at the top: the harness's tests import this
module without aiohttp.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import math
import os
import re
import sys
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, cast
from urllib.parse import urlsplit

clock = time.perf_counter

# How each API spells a token, the end of a stream and a failure inside one.
TOKEN_MARKERS = {
    "native": re.compile(rb"^event: delta", re.M),
    "chat": re.compile(rb'"content":"[^"]'),
}
DONE_MARKERS = {"native": b"event: done", "chat": b"data: [DONE]"}
ERROR_MARKERS = {
    "native": re.compile(rb"^event: error", re.M),
    "chat": re.compile(rb'^data: \{"error"', re.M),
}


def emit(event: str, **data: Any) -> None:
    # A streams result is a few hundred kB. One bench run saw it cut at 240 kB (a
    # partial write: stdout had become non-blocking), which left the harness waiting.
    os.set_blocking(sys.stdout.fileno(), True)
    print(json.dumps({"event": event, **data}), flush=True)


def make_body(request: dict[str, Any], n: int) -> bytes:
    """A request body; `{n}` in the prompt makes each one unique (no cache can answer)."""
    prompt = str(request["prompt"]).replace("{n}", str(n))
    fields: dict[str, Any] = {"max_tokens": request["max_tokens"]}
    if "temperature" in request:
        fields["temperature"] = request["temperature"]
    if request["api"] == "native":
        return json.dumps({"prompt": prompt, **fields}).encode()
    messages = [{"role": "user", "content": prompt}]
    chat = {"model": request["model"], "messages": messages, **fields, "stream": request["stream"]}
    return json.dumps(chat).encode()


def percentile(values: list[float], q: float) -> float:
    """The q-quantile by the nearest-rank method (nan for no values)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = math.ceil(q * len(ordered) - 1e-9)  # 0.99 * 100 is 99.00000000000001
    return ordered[max(1, min(len(ordered), rank)) - 1]


def summary_ms(values: list[float]) -> dict[str, float]:
    """Median, tail and extremes of durations in seconds, as milliseconds."""
    return {
        "p50_ms": percentile(values, 0.50) * 1000,
        "p90_ms": percentile(values, 0.90) * 1000,
        "p99_ms": percentile(values, 0.99) * 1000,
        "min_ms": min(values) * 1000 if values else float("nan"),
        "max_ms": max(values) * 1000 if values else float("nan"),
    }


def check_stream(api: str, body: bytes) -> str | None:
    """Why a whole streamed answer is not a success, or None."""
    if ERROR_MARKERS[api].search(body):
        return "error event"
    if DONE_MARKERS[api] not in body:
        return "no end event"
    return None


def count(table: dict[str, int], key: str) -> None:
    table[key] = table.get(key, 0) + 1


# --------------------------------------------------------------------------------------
# throughput
# --------------------------------------------------------------------------------------
async def throughput(spec: dict[str, Any]) -> dict[str, Any]:
    import aiohttp

    request, concurrency = spec["request"], spec["concurrency"]
    warmup, duration = spec["warmup"], spec["duration"]
    headers = {"Content-Type": "application/json", **request.get("headers", {})}
    latencies: list[float] = []
    errors: dict[str, int] = {}
    warmup_errors: dict[str, int] = {}
    cache_hits = 0
    stop = False
    loop = asyncio.get_running_loop()
    start = clock()
    window_start, window_end = start + warmup, start + warmup + duration
    loop.call_later(warmup, emit, "window-start")
    loop.call_later(warmup + duration, emit, "window-end")

    connector = aiohttp.TCPConnector(limit=concurrency, limit_per_host=concurrency)
    timeout = aiohttp.ClientTimeout(total=spec.get("timeout", 10.0))
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def worker(index: int) -> None:
            nonlocal cache_hits
            n = index
            while not stop:
                body = make_body(request, n)
                n += concurrency
                began = clock()
                error = None
                try:
                    async with session.post(request["url"], data=body, headers=headers) as answer:
                        payload = await answer.read()
                        if answer.status != 200:
                            error = f"HTTP {answer.status}"
                        elif request["stream"]:
                            error = check_stream(request["api"], payload)
                        if answer.headers.get("X-Cache") == "HIT":
                            cache_hits += 1
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    error = type(exc).__name__
                ended = clock()
                if ended < window_start:
                    if error is not None:
                        count(warmup_errors, error)
                elif ended <= window_end:
                    if error is None:
                        latencies.append(ended - began)
                    else:
                        count(errors, error)
                if error is not None:
                    await asyncio.sleep(0.01)  # do not spin on a refused connection

        tasks = [asyncio.ensure_future(worker(i)) for i in range(concurrency)]
        await asyncio.sleep(max(0.0, window_end - clock()) + 0.01)
        stop = True
        # Requests still in flight end outside the window; give them a moment, then stop.
        _, pending = await asyncio.wait(tasks, timeout=2.0)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    return {
        "ok": len(latencies),
        "errors": sum(errors.values()),
        "error_kinds": errors,
        "warmup_errors": warmup_errors,
        "cache_hits": cache_hits,
        "rps": len(latencies) / duration,
        **summary_ms(latencies),
    }


# --------------------------------------------------------------------------------------
# sequential
# --------------------------------------------------------------------------------------
def first_token(api: str, line: bytes) -> bool:
    return bool(TOKEN_MARKERS[api].search(line))


async def sequential(spec: dict[str, Any]) -> dict[str, Any]:
    import aiohttp

    targets = spec["targets"]
    samples: dict[str, list[float]] = {t["name"]: [] for t in targets}
    errors: dict[str, dict[str, int]] = {t["name"]: {} for t in targets}
    warmup_errors: dict[str, dict[str, int]] = {t["name"]: {} for t in targets}

    async def one(session: aiohttp.ClientSession, target: dict[str, Any], n: int) -> float:
        request = target["request"]
        headers = {"Content-Type": "application/json", **request.get("headers", {})}
        began = clock()
        seen = None
        async with session.post(request["url"], data=make_body(request, n), headers=headers) as r:
            if r.status != 200:
                await r.read()
                raise RuntimeError(f"HTTP {r.status}")
            if target["measure"] == "first-token":
                async for line in r.content:  # to the end: the next request reuses the connection
                    if seen is None and first_token(request["api"], line):
                        seen = clock() - began
                if seen is None:
                    raise RuntimeError("no token in the stream")
                return seen
            await r.read()
            seen = clock() - began
            expected = target.get("expect_cache")
            if expected and r.headers.get("X-Cache") != expected:
                raise RuntimeError(f"X-Cache {r.headers.get('X-Cache')} (expected {expected})")
            return seen

    timeout = aiohttp.ClientTimeout(total=spec.get("timeout", 10.0))
    # One keep-alive connection per target.
    sessions = [
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1), timeout=timeout)
        for _ in targets
    ]
    emit("window-start")
    try:
        for n in range(spec["warmup_requests"] + spec["requests"]):
            for target, session in zip(targets, sessions, strict=True):
                name = target["name"]
                try:
                    took = await one(session, target, n)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    key = str(exc) if isinstance(exc, RuntimeError) else type(exc).__name__
                    # A warm-up miss is expected where hits are: it fills the cache.
                    count((errors if n >= spec["warmup_requests"] else warmup_errors)[name], key)
                    continue
                if n >= spec["warmup_requests"]:
                    samples[name].append(took)
    finally:
        emit("window-end")
        for session in sessions:
            await session.close()
    return {
        name: {
            "ok": len(values),
            "errors": sum(errors[name].values()),
            "error_kinds": errors[name],
            "warmup_errors": warmup_errors[name],
            **summary_ms(values),
        }
        for name, values in samples.items()
    }


# --------------------------------------------------------------------------------------
# streams
# --------------------------------------------------------------------------------------
def http_request(url: str, body: bytes, headers: dict[str, str]) -> bytes:
    """A whole HTTP/1.1 POST; the server closes the connection after the answer."""
    parts = urlsplit(url)
    lines = [
        f"POST {parts.path or '/'} HTTP/1.1",
        f"Host: {parts.netloc}",
        "Content-Type: application/json",
        "Accept: text/event-stream",
        f"Content-Length: {len(body)}",
        *(f"{name}: {value}" for name, value in headers.items()),
        "Connection: close",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


@dataclass
class StreamOutcome:
    sent: float = 0.0
    tokens: list[float] = field(default_factory=list)
    done: bool = False
    error: str | None = None

    def gaps(self) -> list[float]:
        return [b - a for a, b in zip(self.tokens, self.tokens[1:], strict=False)]


class SSEClient(asyncio.Protocol):
    """Reads one event stream, timestamping each token event as it arrives.

    Events end with a blank line; the chunked-transfer framing between them holds
    no marker, so scanning each complete event for the markers is enough.
    """

    def __init__(self, request: bytes, api: str, finished: asyncio.Future[None]) -> None:
        self.request, self.finished = request, finished
        self.token, self.done = TOKEN_MARKERS[api], DONE_MARKERS[api]
        self.failed = ERROR_MARKERS[api]
        self.outcome = StreamOutcome()
        self.buffer = b""
        self.status_checked = False
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.outcome.sent = clock()
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        now = clock()
        if not self.status_checked:
            self.status_checked = True
            status = data[9:12]
            if status != b"200":
                self.finish(f"HTTP {status.decode(errors='replace')}")
                return
        *events, self.buffer = (self.buffer + data).split(b"\n\n")
        for event in events:
            if self.token.search(event):
                self.outcome.tokens.append(now)
            elif self.done in event:
                self.outcome.done = True
                self.finish(None)
                return
            elif self.failed.search(event):
                self.finish("error event")
                return

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.finished.done():
            self.finish(type(exc).__name__ if exc else "closed before the end event")

    def finish(self, error: str | None) -> None:
        self.outcome.error = error
        if not self.finished.done():
            self.finished.set_result(None)
        if self.transport is not None:
            self.transport.close()


def fake_prompts(spec: dict[str, Any], count: int, offset: int) -> tuple[list[str], str]:
    """Prompts for which the render's fake model answers at least `min_tokens` tokens.

    The fake provider picks each reply's natural length from the prompt, and
    `max_tokens` only caps it; asking the render's own code which prompts run long
    gives every stream the same number of tokens. Without that code: plain prompts.
    """
    wanted = spec["min_tokens"]
    try:
        base = importlib.import_module(f"{spec['slug']}.llm.base")
        fake = importlib.import_module(f"{spec['slug']}.llm.fake")
        prompts: list[str] = []
        n = 0
        while len(prompts) < count and n < count * 400:
            prompt = f"stream {offset}-{n}"
            request = base.GenerationRequest.from_prompt(
                prompt, max_tokens=wanted, temperature=0.7, model=spec["model"]
            )
            if len(fake.answer(request, 0).pieces) >= wanted:
                prompts.append(prompt)
            n += 1
    except (ImportError, AttributeError, TypeError) as exc:
        return [f"stream {offset}-{i}" for i in range(count)], f"prompts not chosen: {exc}"
    if len(prompts) < count:
        return [f"stream {offset}-{i}" for i in range(count)], "prompts not chosen: too few"
    return prompts, f"prompts chosen for >= {wanted} fake tokens"


async def streams(spec: dict[str, Any], prompts: list[str]) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    request = spec["request"]
    parts = urlsplit(request["url"])
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    total, ramp_s = len(prompts), spec["ramp_s"]
    outcomes: list[StreamOutcome] = []
    active = peak = 0

    async def one(index: int, prompt: str) -> None:
        nonlocal active, peak
        await asyncio.sleep(ramp_s * index / max(1, total))
        body = make_body({**request, "prompt": prompt}, index)
        finished: asyncio.Future[None] = loop.create_future()
        client = SSEClient(
            http_request(request["url"], body, request.get("headers", {})), request["api"], finished
        )
        outcomes.append(client.outcome)
        try:
            await loop.create_connection(lambda: client, host, port)
        except OSError as exc:
            client.finish(type(exc).__name__)
            return
        active += 1
        peak = max(peak, active)
        try:
            await asyncio.wait_for(finished, spec["timeout"])
        except TimeoutError:
            client.finish("TimeoutError")
        finally:
            active -= 1

    emit("window-start")
    began = clock()
    await asyncio.gather(*(one(i, prompt) for i, prompt in enumerate(prompts)))
    took = clock() - began
    emit("window-end")
    errors: dict[str, int] = {}
    for outcome in outcomes:
        if outcome.error:
            count(errors, outcome.error)
    return {
        "streams": total,
        "completed": sum(1 for o in outcomes if o.done and o.error is None),
        "errors": sum(errors.values()),
        "error_kinds": errors,
        "peak_open": peak,
        "seconds": took,
        "tokens": [len(o.tokens) for o in outcomes],
        "gaps_ms": [round(g * 1000, 3) for o in outcomes for g in o.gaps()],
        "ttft_ms": [round((o.tokens[0] - o.sent) * 1000, 3) for o in outcomes if o.tokens],
    }


# --------------------------------------------------------------------------------------
def run(coroutine: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine())
    return uvloop.run(coroutine())


def main(argv: list[str]) -> int:
    spec = json.loads(argv[0])
    mode = spec["mode"]
    if mode == "throughput":
        import aiohttp

        job: Callable[[], Coroutine[Any, Any, Any]] = lambda: throughput(spec)  # noqa: E731
    elif mode == "sequential":
        import aiohttp  # noqa: F401

        job = lambda: sequential(spec)  # noqa: E731
    elif mode == "streams":
        offset, n = spec["first"], spec["count"]
        if spec.get("fake"):
            prompts, note = fake_prompts(spec["fake"], n, offset)
        else:
            prompts, note = [f"stream {offset}-{i}" for i in range(n)], ""
        spec["note"] = note
        job = lambda: streams(spec, prompts)  # noqa: E731
    else:
        raise SystemExit(f"load: unknown mode {mode!r}")
    emit("ready")
    sys.stdin.readline()  # "go"
    result = run(job)
    emit("result", result=result, note=spec.get("note", ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
