"""The benchmark harness (benchmarks/): its pure parts, so that it cannot rot unnoticed.

No load runs here: /proc parsing on this very process, CPU placement plans, the load
generator's bodies and stream parsing, the upstream app, target ratios and the
BENCHMARKS.md writer.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from benchmarks import backends, load, measure, placement, renders, report, suite
from benchmarks.apps import upstream


def burn(seconds: float) -> None:
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


# ---- measure ------------------------------------------------------------------------------
def test_parse_stat_counts_fields_after_the_last_parenthesis() -> None:
    fields = " ".join(str(n) for n in range(3, 53))  # fields 3.. after the name
    text = f"4242 (odd) name (x)) {fields}\n"
    assert measure.parse_stat(text) == (14, 15)  # utime and stime are fields 14 and 15


def test_parse_status_and_machine_busy() -> None:
    status = "Name:\tpython\nVmHWM:\t  2048 kB\nVmRSS:\t  1024 kB\nThreads:\t3\n"
    assert measure.parse_status(status) == {"VmHWM": 2048 * 1024, "VmRSS": 1024 * 1024}
    ticks = measure.CLOCK_TICKS
    stat = f"cpu  {ticks} 0 {ticks} {5 * ticks} {ticks} 0 0 0 0 0\ncpu0 1 2 3 4 5 6 7 8 9 10\n"
    assert measure.parse_machine_busy(stat) == pytest.approx(2.0)


def test_this_process_counters() -> None:
    before = measure.Snapshot.take({"me": [os.getpid()]})
    burn(0.05)
    after = measure.Snapshot.take({"me": [os.getpid()]})
    used = measure.cpu_used(before, after)
    assert used["me"] >= 0.03
    assert used["others"] >= 0
    assert measure.rss_bytes(os.getpid()) > 1024 * 1024
    assert measure.memory(os.getpid())["VmHWM"] >= measure.rss_bytes(os.getpid())
    assert measure.cpu_seconds(2**22 + 12345) == 0.0  # no such process: 0, not an error


def test_process_tree_and_rss_sampler_see_a_child() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        deadline = time.monotonic() + 10
        while child.pid not in measure.process_tree(os.getpid()):
            assert time.monotonic() < deadline, "the child never appeared"
            time.sleep(0.01)
        sampler = measure.RssSampler({"me": os.getpid()}, interval_s=0.01)
        sampler.start()
        time.sleep(0.05)
        sampler.stop()
        assert child.pid in sampler.peaks["me"]
        assert sampler.peak_process("me") >= sampler.peaks["me"][child.pid] > 0
        assert sampler.peak_tree("me") > sampler.peak_process("me")
    finally:
        child.kill()
        child.wait()


# ---- placement --------------------------------------------------------------------------
def test_placement_plans() -> None:
    two = placement.plan([0, 1], "isolate")
    assert (two.server, two.rest) == (frozenset({1}), frozenset({0}))
    four = placement.plan([0, 1, 2, 3], "split", server_cpus=2)
    assert (four.server, four.rest) == (frozenset({2, 3}), frozenset({0, 1}))
    crowded = placement.plan([0, 1], "isolate", server_cpus=2)
    assert not crowded.pinned
    assert "need 3, this machine gives 2" in crowded.note
    assert not placement.plan([0, 1], "none").pinned
    with pytest.raises(ValueError, match="unknown placement"):
        placement.plan([0, 1], "scatter")


# ---- the load generator -----------------------------------------------------------------
def test_bodies_differ_per_request_and_follow_the_api() -> None:
    request = {"api": "chat", "stream": True, "model": "m", "max_tokens": 5, "prompt": "hi {n}"}
    chat = json.loads(load.make_body({**request, "temperature": 0.7}, 3))
    assert chat["messages"] == [{"role": "user", "content": "hi 3"}]
    assert chat["stream"] is True
    assert chat["temperature"] == 0.7
    native = json.loads(load.make_body({**request, "api": "native"}, 4))
    assert native == {"prompt": "hi 4", "max_tokens": 5}


def test_percentile_is_nearest_rank() -> None:
    values = [float(n) for n in range(1, 101)]
    assert load.percentile(values, 0.5) == 50
    assert load.percentile(values, 0.99) == 99
    assert load.percentile([7.0], 0.99) == 7
    assert load.percentile([], 0.5) != load.percentile([], 0.5)  # nan
    assert load.summary_ms([0.001, 0.002])["max_ms"] == pytest.approx(2.0)


def test_check_stream() -> None:
    assert load.check_stream("chat", b'data: {"x":1}\n\ndata: [DONE]\n\n') is None
    assert load.check_stream("chat", b'data: {"x":1}\n\n') == "no end event"
    assert load.check_stream("native", b"event: error\ndata: {}\n\n") == "error event"


class FakeTransport:
    def __init__(self) -> None:
        self.written = b""
        self.closed = False

    def write(self, data: bytes) -> None:
        self.written += data

    def close(self) -> None:
        self.closed = True


def read_stream(api: str, pieces: list[bytes]) -> load.StreamOutcome:
    async def go() -> load.StreamOutcome:
        finished: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        request = load.http_request("http://127.0.0.1:9/v1/x", b"{}", {"Authorization": "k"})
        client = load.SSEClient(request, api, finished)
        transport = FakeTransport()
        client.connection_made(transport)  # type: ignore[arg-type]
        assert transport.written.startswith(b"POST /v1/x HTTP/1.1\r\nHost: 127.0.0.1:9\r\n")
        assert b"Authorization: k\r\n" in transport.written
        for piece in pieces:
            client.data_received(piece)
        assert finished.done() == transport.closed
        return client.outcome

    return asyncio.run(go())


def test_sse_client_counts_tokens_split_across_reads() -> None:
    head = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
    role = b'4a\r\ndata: {"choices":[{"delta":{"role":"assistant","content":""}}]}\n\n\r\n'
    token = b'30\r\ndata: {"choices":[{"delta":{"content":"Hi"}}]}\n\n\r\n'
    done = b"e\r\ndata: [DONE]\n\n\r\n"
    stream = head + role + token + token + done
    outcome = read_stream("chat", [stream[:60], stream[60:130], stream[130:]])
    assert len(outcome.tokens) == 2
    assert outcome.done
    assert outcome.error is None
    native = b"event: delta\ndata: {}\n\nevent: delta\ndata: {}\n\nevent: done\ndata: {}\n\n"
    assert len(read_stream("native", [head + native]).tokens) == 2


def test_sse_client_reports_a_failed_status() -> None:
    outcome = read_stream("chat", [b"HTTP/1.1 503 Service Unavailable\r\n\r\n"])
    assert outcome.error == "HTTP 503"
    assert not outcome.done


# ---- the upstream app -------------------------------------------------------------------
def call_app(body: dict[str, Any]) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": json.dumps(body).encode(), "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/v1/chat/completions"}
    asyncio.run(upstream.app(scope, receive, send))
    return sent


def test_upstream_streams_max_tokens_then_done() -> None:
    sent = call_app({"stream": True, "max_tokens": 3, "stream_options": {"include_usage": True}})
    events = [m["body"] for m in sent[1:]]
    assert b'"role":"assistant"' in events[0]
    assert sum(1 for e in events if load.TOKEN_MARKERS["chat"].search(e)) == 3
    assert b'"completion_tokens":3' in events[-2]
    assert events[-1] == b"data: [DONE]\n\n"


def test_upstream_answers_json() -> None:
    start, body = call_app({"max_tokens": 2})
    assert start["status"] == 200
    answer = json.loads(body["body"])
    assert answer["choices"][0]["message"]["content"] == "Hello from"
    assert answer["usage"]["completion_tokens"] == 2


# ---- renders ----------------------------------------------------------------------------
def test_all_on_answers_follow_cookiecutter_json() -> None:
    options = renders.template_options()
    answers = renders.all_on_answers(options)
    assert answers["database"] == "postgresql"
    assert set(answers) <= set(options)
    later = {**options, "auth": ["none", "api_key", "jwt"], "use_prometheus": False}
    assert renders.all_on_answers(later)["auth"] == "api_key"
    assert renders.all_on_answers(later)["use_prometheus"] == "yes"
    with pytest.raises(SystemExit, match="update ALL_ON"):
        renders.all_on_answers({**options, "auth": ["none", "jwt"]})


# ---- the report -------------------------------------------------------------------------
def line_result(rps: float, cpu_us: float, section: str = "baselines") -> dict[str, Any]:
    return {
        "rps": rps, "ok": int(rps * 10), "errors": 0, "error_kinds": {}, "p50_ms": 20.0,
        "p99_ms": 30.0, "cpu_us_per_request": cpu_us, "runs_rps": [rps], "runs_cpu_us": [cpu_us],
        "cpu": {"server": 0.5, "client": 0.3, "others": 0.0}, "rss_peak_worker": 90 * report.MB,
        "label": "a line", "server": "s", "path": "/p", "stream": False, "concurrency": 64,
        "section": section, "note": "",
    }  # fmt: skip


def full_results() -> dict[str, Any]:
    """A result of every kind the suite produces, with every line of suite.LINES."""
    lines = {line.id: line_result(2000.0, 300.0, line.section) for line in suite.LINES}
    lines["upstream"] = line_result(3000.0, 60.0)
    timing = {"ok": 100, "errors": 0, "error_kinds": {}, "p50_ms": 21.0, "p99_ms": 24.0}
    stream = {
        "server": "s", "path": "/p", "streams": 1000, "completed": 1000, "errors": 0,
        "error_kinds": {}, "peak_open": 1000, "clients": 1, "seconds": 2.0, "tokens_min": 50,
        "tokens_median": 50, "gap_p50_ms": 20.5, "gap_p99_ms": 23.0, "added_gap_p50_ms": 0.5,
        "added_gap_p99_ms": 3.0, "ttft_p50_ms": 21.0, "peak_rss": 120 * report.MB,
        "cpu": {"server": 0.5}, "note": "",
    }  # fmt: skip
    return {
        "lines": lines,
        "ttft": {
            name: dict(timing)
            for name in ("upstream", "default-native-stream", "default-chat-stream")
        },
        "cache": {
            "default-miss": dict(timing),
            "default-hit": {**timing, "p50_ms": 1.0},
            "all-on-miss": dict(timing),
            "all-on-hit": {**timing, "p50_ms": 1.0, "errors": 2},
        },
        "streams": {"direct": stream, "native": stream, "proxy": stream},
        "idle_rss": {"default-native": 80 * report.MB, "all-on-proxy": 120 * report.MB},
        "render": {"runs_s": [0.3, 0.4, 0.35], "median_s": 0.35},
    }


def test_every_target_is_computed_from_a_full_run() -> None:
    results = full_results()
    verdicts = {t.figure: t.verdict(t.compute(results)) for t in report.TARGETS}
    assert "not measured" not in verdicts.values()
    assert verdicts["native throughput / seed app, default render, /api/v1/generate"] == "met"
    proxy = "proxy throughput / upstream, default render, /api/v1/generate"
    assert verdicts[proxy] == "missed"  # 2000 / 3000 req/s
    assert verdicts["cache hit latency / miss latency (20 ms upstream), all-on render"] == (
        "missed (2 errors)"
    )
    assert verdicts["idle RSS per worker, all-on render"] == "missed"


def test_ratios_and_verdicts() -> None:
    results = full_results()
    ratio = report.throughput_ratio("default-proxy-generate", "upstream")(results)
    assert ratio is not None
    assert ratio.value == pytest.approx(2000 / 3000)
    target = report.Target("t", report.throughput_ratio("default-proxy-generate", "upstream"),
                           ">=", 0.8)  # fmt: skip
    assert target.verdict(ratio) == "missed"
    assert target.verdict(None) == "not measured"
    assert report.Target("u", report.render_time, "<", 0.5, " s").shown_limit == "< 0.5 s"


def test_report_and_writer_keep_the_history(tmp_path: Path) -> None:
    text = report.build(full_results(), {"commit": "abc1234"}, {
        **suite.Options().__dict__, "all_on": "database=postgresql", "interval": 20.0,
    }, quick=False)  # fmt: skip
    assert "| WORKERS=2 throughput / WORKERS=1" in text
    assert "- **commit**: abc1234" in text
    assert "{" not in text.split("## Method")[1].split("## Targets")[0]  # every value filled in
    target = tmp_path / "BENCHMARKS.md"
    target.write_text(f"old figures\n{report.HISTORY_MARKER}\n\n## History\n\nby hand\n")
    report.write(target, text)
    written = target.read_text()
    assert written.startswith("# Benchmarks\n")
    assert "old figures" not in written
    assert written.endswith(f"{report.HISTORY_MARKER}\n\n## History\n\nby hand\n")
    unmarked = tmp_path / "OLD.md"
    unmarked.write_text("notes written before the marker existed\n")
    report.write(unmarked, text)
    assert unmarked.read_text().endswith("notes written before the marker existed\n")


def test_backend_urls() -> None:
    admin = "postgresql://postgres:s3cret@127.0.0.1:5432/postgres"
    assert backends.database_url(admin, "bench_1") == (
        "postgresql://postgres:s3cret@127.0.0.1:5432/bench_1"
    )
    assert "s3cret" not in backends.without_password(admin)
    assert backends.without_password("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"


def test_a_cut_load_generator_line_is_reported_not_fatal_to_the_reader() -> None:
    whole = json.dumps({"event": "result", "result": {"gaps_ms": [1.5] * 1000}})
    assert suite.parse_event(whole + "\n")["event"] == "result"
    cut = suite.parse_event(whole[:2000] + "\n")
    assert cut["event"] == "unreadable"
    assert "2001 characters" in cut["line"]
