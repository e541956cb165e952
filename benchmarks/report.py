"""The report: figures as tables, each target as a ratio of figures of the same run.

`build(results, setup)` returns Markdown; `write(path, text)` replaces what
BENCHMARKS.md holds above the history marker and keeps everything below it.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MB = 1024 * 1024
HISTORY_MARKER = (
    "<!-- history: `make bench` rewrites everything above this line and keeps the rest -->"
)
Results = dict[str, Any]


@dataclass(frozen=True)
class Figure:
    """A computed target figure, the errors of the measurements it comes from, and how."""

    value: float
    errors: int = 0
    detail: str = ""


@dataclass(frozen=True)
class Target:
    figure: str
    compute: Callable[[Results], Figure | None]
    op: str  # ">=", "<=" or "<"
    limit: float
    unit: str = ""

    def verdict(self, found: Figure | None) -> str:
        if found is None or math.isnan(found.value):
            return "not measured"
        if found.errors:
            return f"missed ({found.errors} errors)"
        compare = {">=": operator.ge, "<=": operator.le, "<": operator.lt}[self.op]
        return "met" if compare(found.value, self.limit) else "missed"

    @property
    def shown_limit(self) -> str:
        return f"{self.op} {self.limit:g}{self.unit}"


# ---- how each figure is computed ----------------------------------------------------------
def line(results: Results, line_id: str) -> dict[str, Any] | None:
    found: dict[str, Any] | None = results.get("lines", {}).get(line_id)
    return found


def throughput_ratio(num: str, den: str) -> Callable[[Results], Figure | None]:
    def compute(results: Results) -> Figure | None:
        a, b = line(results, num), line(results, den)
        if not a or not b or not b["rps"]:
            return None
        note = f"; {a['note']}" if a.get("note") else ""
        return Figure(
            a["rps"] / b["rps"],
            a["errors"] + b["errors"],
            f"{a['rps']:.0f} / {b['rps']:.0f} req/s at c={a['concurrency']}{note}",
        )

    return compute


def cpu_ratio(num: str, den: str) -> Callable[[Results], Figure | None]:
    def compute(results: Results) -> Figure | None:
        a, b = line(results, num), line(results, den)
        if not a or not b or not a["cpu_us_per_request"] or not b["cpu_us_per_request"]:
            return None
        ua, ub = a["cpu_us_per_request"], b["cpu_us_per_request"]
        return Figure(ua / ub, a["errors"] + b["errors"], f"{ua:.0f} / {ub:.0f} us")

    return compute


def ttft_added(target: str, stat: str) -> Callable[[Results], Figure | None]:
    def compute(results: Results) -> Figure | None:
        ttft = results.get("ttft", {})
        if target not in ttft or "upstream" not in ttft:
            return None
        a, b = ttft[target], ttft["upstream"]
        return Figure(
            a[stat] - b[stat], a["errors"] + b["errors"], f"{a[stat]:.2f} - {b[stat]:.2f} ms"
        )

    return compute


def stream_figure(run: str, figure: str) -> Callable[[Results], Figure | None]:
    def compute(results: Results) -> Figure | None:
        found = results.get("streams", {}).get(run)
        if not found:
            return None
        if figure == "completed":
            total = found["streams"]
            return Figure(
                found["completed"] / total if total else 0.0,
                0,  # errors are what this figure counts
                f"{found['completed']} / {total} streams",
            )
        if figure == "gap":
            return Figure(
                found["added_gap_p99_ms"],
                found["errors"],
                f"p99 gap {found['gap_p99_ms']:.2f} ms - 20 ms",
            )
        peak = found["peak_rss"] or 0
        return Figure(peak / MB, found["errors"], "peak of the worker")

    return compute


def cache_ratio(render: str) -> Callable[[Results], Figure | None]:
    def compute(results: Results) -> Figure | None:
        cache = results.get("cache", {})
        hit, miss = cache.get(f"{render}-hit"), cache.get(f"{render}-miss")
        if not hit or not miss or not miss["ok"]:
            return None
        return Figure(
            hit["p50_ms"] / miss["p50_ms"],
            hit["errors"] + miss["errors"],
            f"median {hit['p50_ms']:.2f} / {miss['p50_ms']:.2f} ms",
        )

    return compute


def render_servers(results: Results, render: str) -> dict[str, int]:
    return {k: v for k, v in results.get("idle_rss", {}).items() if k.startswith(f"{render}-")}


def idle_rss(render: str) -> Callable[[Results], Figure | None]:
    def compute(results: Results) -> Figure | None:
        found = render_servers(results, render)
        if not found:
            return None
        name = max(found, key=lambda k: found[k])
        return Figure(found[name] / MB, 0, f"largest: {name}")

    return compute


def load_rss(render: str) -> Callable[[Results], Figure | None]:
    def compute(results: Results) -> Figure | None:
        lines = {
            k: v
            for k, v in results.get("lines", {}).items()
            if v["section"] == render and v.get("rss_peak_worker")
        }
        if not lines:
            return None
        name = max(lines, key=lambda k: lines[k]["rss_peak_worker"])
        errors = sum(v["errors"] for v in lines.values())
        return Figure(lines[name]["rss_peak_worker"] / MB, errors, f"largest: {name}")

    return compute


def render_time(results: Results) -> Figure | None:
    found = results.get("render")
    if not found:
        return None
    runs = found["runs_s"]
    return Figure(found["median_s"], 0, f"median of {len(runs)}, {min(runs):.2f}-{max(runs):.2f} s")


PROXY_PATHS = (
    ("generate", "aiohttp-proxy", "upstream", "/api/v1/generate"),
    ("chat", "aiohttp-proxy", "upstream", "/v1/chat/completions"),
    ("generate-stream", "aiohttp-proxy-stream", "upstream-stream", "/api/v1/generate/stream"),
    ("chat-stream", "aiohttp-proxy-stream", "upstream-stream", "/v1/chat/completions stream"),
)

TARGETS: list[Target] = [
    *(
        Target(f"proxy throughput / upstream, default render, {shown}",
               throughput_ratio(f"default-proxy-{path}", upstream), ">=", 0.8)
        for path, _, upstream, shown in PROXY_PATHS
    ),
    *(
        Target(f"proxy CPU per request / minimal aiohttp proxy's, default render, {shown}",
               cpu_ratio(f"default-proxy-{path}", minimal), "<=", 1.5)
        for path, minimal, _, shown in PROXY_PATHS
    ),
    Target("native throughput / seed app, default render, /api/v1/generate",
           throughput_ratio("default-native-generate", "seed"), ">=", 0.85),
    *(
        Target(f"all-on render proxy throughput / default render's, {shown}",
               throughput_ratio(f"all-on-proxy-{path}", f"default-proxy-{path}"), ">=", 0.85)
        for path, _, _, shown in PROXY_PATHS
    ),
    *(
        Target(f"added time to first token, {stat_name}, default render, {shown}",
               ttft_added(f"default-{path}", stat), "<=", limit, " ms")
        for path, shown in (("native-stream", "/api/v1/generate/stream"),
                            ("chat-stream", "/v1/chat/completions"))
        for stat_name, stat, limit in (("median", "p50_ms", 1.0), ("p99", "p99_ms", 3.0))
    ),
    *(
        target
        for run, shown in (("native", "fake provider"), ("proxy", "proxy"))
        for target in (
            Target(f"concurrent SSE streams, one worker, {shown}: share completed",
                   stream_figure(run, "completed"), ">=", 1.0),
            Target(f"concurrent SSE streams, one worker, {shown}: added p99 inter-token gap",
                   stream_figure(run, "gap"), "<=", 5.0, " ms"),
            Target(f"concurrent SSE streams, one worker, {shown}: RSS",
                   stream_figure(run, "rss"), "<=", 250, " MB"),
        )
    ),
    Target("WORKERS=2 throughput / WORKERS=1 (proxy, /api/v1/generate)",
           throughput_ratio("workers-2", "workers-1"), ">=", 1.7),
    Target("cache hit latency / miss latency (20 ms upstream), default render",
           cache_ratio("default"), "<=", 0.1),
    Target("cache hit latency / miss latency (20 ms upstream), all-on render",
           cache_ratio("all-on"), "<=", 0.1),
    Target("idle RSS per worker, default render", idle_rss("default"), "<=", 100, " MB"),
    Target("idle RSS per worker, all-on render", idle_rss("all-on"), "<=", 100, " MB"),
    Target("RSS per worker under load, default render", load_rss("default"),
           "<=", 150, " MB"),
    Target("RSS per worker under load, all-on render", load_rss("all-on"),
           "<=", 150, " MB"),
    Target("`cookiecutter --no-input` render", render_time, "<", 0.5, " s"),
]  # fmt: skip


# ---- tables ---------------------------------------------------------------------------
def table(header: Iterable[str], rows: Iterable[Iterable[str]]) -> str:
    head = list(header)
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def num(value: float | None, digits: int = 0) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}f}"


def megabytes(value: int | None) -> str:
    return num(value / MB) if value else "-"


def noise(results: Results) -> str:
    """How busy the rest of the machine was during the throughput windows."""
    others = sorted(v["cpu"].get("others", 0.0) for v in results.get("lines", {}).values())
    if not others:
        return ""
    median, top = others[len(others) // 2], others[-1]
    verdict = (
        "a quiet machine"
        if top < 0.25
        else "a busy machine: requests per second and their ratios are not to be quoted; "
        "CPU per request holds up better"
    )
    return (
        f"The rest of the machine used {median:.2f} CPU/s (median over the throughput "
        f"lines, at most {top:.2f}): {verdict}."
    )


def targets_table(results: Results) -> str:
    rows = []
    for target in TARGETS:
        found = target.compute(results)
        value = "-" if found is None else f"**{found.value:.2f}**{target.unit}"
        rows.append(
            [
                target.figure,
                value,
                target.shown_limit,
                target.verdict(found),
                found.detail if found else "",
            ]
        )
    return table(["figure", "value", "target", "result", "from"], rows)


def spread(values: list[float | None], digits: int = 0) -> str:
    known = [v for v in values if v is not None]
    if len(known) < 2:
        return ""
    return f" ({num(min(known), digits)}-{num(max(known), digits)})"


def lines_table(results: Results) -> str:
    rows = []
    for line_id, found in results.get("lines", {}).items():
        cpu = found["cpu"]
        errors = str(found["errors"])
        if found.get("error_kinds"):
            errors += " " + ", ".join(f"{k}: {v}" for k, v in found["error_kinds"].items())
        if found.get("warmup_errors"):
            errors += f" (+{sum(found['warmup_errors'].values())} in the warm-up)"
        if found.get("cache_hits"):
            errors += f" ({found['cache_hits']} cache hits: should be none)"
        rows.append(
            [
                f"{found['label']}" + (f" [{found['note']}]" if found.get("note") else ""),
                str(found["concurrency"]),
                num(found["rps"]) + spread(found["runs_rps"]),
                num(found["p50_ms"], 1),
                num(found["p99_ms"], 1),
                errors,
                "**" + num(found["cpu_us_per_request"]) + "**" + spread(found["runs_cpu_us"]),
                num(cpu.get("server"), 2),
                num(cpu.get("upstream"), 2),
                num(cpu.get("client"), 2),
                num(cpu.get("others"), 2),
                megabytes(found.get("rss_peak_worker")),
            ]
        )
        del line_id
    header = ["line", "c", "req/s", "p50 ms", "p99 ms", "errors", "CPU us/req", "server CPU/s",
              "upstream CPU/s", "client CPU/s", "others CPU/s", "peak RSS MB"]  # fmt: skip
    return table(header, rows)


def ttft_table(results: Results) -> str:
    ttft = results.get("ttft", {})
    base = ttft.get("upstream")
    rows = []
    for name, found in ttft.items():
        added = ["", ""]
        if base and name != "upstream":
            added = [
                f"{found['p50_ms'] - base['p50_ms']:+.2f}",
                f"{found['p99_ms'] - base['p99_ms']:+.2f}",
            ]
        rows.append([name, num(found["p50_ms"], 2), num(found["p99_ms"], 2), *added,
                     str(found["ok"]), str(found["errors"])])  # fmt: skip
    return table(["path", "median ms", "p99 ms", "added median", "added p99", "n", "errors"], rows)


def cache_table(results: Results) -> str:
    rows = []
    for name, found in results.get("cache", {}).items():
        kinds = ", ".join(f"{k}: {v}" for k, v in found["error_kinds"].items())
        rows.append([name, num(found["p50_ms"], 2), num(found["p99_ms"], 2), str(found["ok"]),
                     f"{found['errors']} {kinds}".strip()])  # fmt: skip
    return table(["requests", "median ms", "p99 ms", "n", "errors"], rows)


def streams_table(results: Results) -> str:
    rows = []
    for name, found in results.get("streams", {}).items():
        cpu = found["cpu"]
        kinds = ", ".join(f"{k}: {v}" for k, v in found["error_kinds"].items())
        rows.append(
            [
                f"{name} ({found['server']}, {found['path']})",
                f"{found['completed']} / {found['streams']} (peak {found['peak_open']} open)",
                f"{found['tokens_min']} / {num(found['tokens_median'])}",
                num(found["ttft_p50_ms"], 1),
                num(found["added_gap_p50_ms"], 2),
                "**" + num(found["added_gap_p99_ms"], 2) + "**",
                megabytes(found["peak_rss"]),
                "**" + num(found.get("cpu_us_per_token")) + "**",
                num(cpu.get("server"), 2),
                num(cpu.get("upstream"), 2),
                f"{num(cpu.get('client'), 2)} ({found['clients']})",
                num(cpu.get("others"), 2),
                f"{found['errors']} {kinds}".strip()
                + (f" [{found['note']}]" if found["note"] else ""),
            ]
        )
    header = ["run", "completed", "tokens min / median", "TTFT p50 ms", "added gap p50 ms",
              "added gap p99 ms", "peak RSS MB", "CPU us/token", "server CPU/s", "upstream CPU/s",
              "client CPU/s (processes)", "others CPU/s", "errors"]  # fmt: skip
    return table(header, rows)


def memory_table(results: Results) -> str:
    peaks: dict[str, int] = {}
    for found in results.get("lines", {}).values():
        if found.get("rss_peak_worker"):
            peaks[found["server"]] = max(peaks.get(found["server"], 0), found["rss_peak_worker"])
    for found in results.get("streams", {}).values():
        if found.get("peak_rss"):
            peaks[found["server"]] = max(peaks.get(found["server"], 0), found["peak_rss"])
    rows = [[name, megabytes(idle), megabytes(peaks.get(name))]
            for name, idle in results.get("idle_rss", {}).items()]  # fmt: skip
    return table(
        ["server", "idle RSS MB (per worker)", "peak RSS under load MB (per worker)"], rows
    )


# One bullet per line: the values are filled in, so the generated lines are not wrapped.
METHOD = [
    "**Servers.** Each is its own process with the same settings: uvicorn with uvloop and "
    "httptools, one worker unless a line says otherwise, access log off, log level WARNING. "
    "The *20 ms upstream* is a raw-ASGI OpenAI-compatible server (`benchmarks/apps/"
    "upstream.py`); the *seed app* is the guide's own sample code, served with `uvicorn "
    "main:app`; the *minimal aiohttp proxy* is a pass-through written on aiohttp's server and "
    "client, no framework; the renders run `python -m <slug>`, each installed from its own "
    "pyproject into a fresh venv. `native` lines use the fake provider, `proxy` lines the "
    "openai provider in front of the upstream.",
    "**Renders.** The default render runs with authentication off; the all-on render "
    "({all_on}) with API keys, a throwaway PostgreSQL database and a Redis key prefix of its "
    "own, both removed after the run.",
    "**Load.** A separate process: {concurrency} closed-loop connections, {warmup:g} s of "
    "warm-up discarded, then {duration:g} s measured. Prompts vary and temperature is 0.7, "
    "so no response cache answers. An error is a non-200 answer, a stream without its end "
    "event, or an exception.",
    "**CPU per request.** The server's own CPU time (user + system, its process and its "
    "children, from /proc/PID/stat) over the measured window, divided by the requests "
    "completed in it. It travels between machines far better than requests per second; "
    "every target is a ratio of figures of this one run. The CPU/s columns are CPU seconds "
    "per second of the server, the upstream behind it, the load generator, and the rest of "
    "the machine (*others*: other processes and the kernel's loopback work; a busy machine "
    "shows there).",
    "**Placement** ({pin}): the server under test has a CPU of its own; the load generator, "
    "the upstream and the idle servers share the others. Sequential runs put every server "
    "on the server CPU and the client on the others.",
    "**Time to first token.** {ttft_requests} sequential streams per path, the paths interleaved, "
    "straight from the upstream and through each render.",
    "**Cache.** Sequential requests at temperature 0: unique prompts (misses) interleaved "
    "with one repeated prompt (hits), the X-Cache header checked.",
    "**Streams.** {streams} concurrent SSE streams of {stream_tokens} tokens, {interval:g} ms "
    "apart, on one worker, opened over {stream_ramp_s:g} s and read by a bare asyncio client; "
    "the added gap is the inter-token gap minus the {interval:g} ms pacing. The *direct* run "
    "(the client and the paced upstream alone) shows what the instrument itself adds.",
    "**Memory.** RSS of each worker from /proc/PID/status: idle once started, and its peak "
    "(sampled every 50 ms) during each measured window.",
]


def setup_section(setup: dict[str, Any]) -> str:
    rows = [f"- **{key}**: {value}" for key, value in setup.items()]
    return "\n".join(rows)


def build(results: Results, setup: dict[str, Any], options: dict[str, Any], *, quick: bool) -> str:
    method = "\n".join(f"- {item}".format(**options) for item in METHOD)
    parts = [
        "# Benchmarks",
        "",
        "Written by `make bench` (`python -m benchmarks --help` for the options). Figures, "
        "not assertions: no test fails on them. Re-measure on a quiet machine before "
        "quoting them; compare ratios and CPU per request, not requests per second.",
        "",
        f"## Run{' (quick: short windows, figures less steady)' if quick else ''}",
        "",
        setup_section(setup),
        "",
        "## Method",
        "",
        method,
        "",
        "## Targets",
        "",
        targets_table(results),
    ]
    if noise(results):
        parts += ["", noise(results)]
    sections = [
        ("lines", "## Throughput and CPU per request", lines_table),
        ("ttft", "## Time to first token", ttft_table),
        ("cache", "## Cache hit and miss latency", cache_table),
        ("streams", "## Concurrent streams", streams_table),
        ("idle_rss", "## Memory", memory_table),
    ]
    for key, title, render in sections:
        if results.get(key):
            parts += ["", title, "", render(results)]
    if results.get("render"):
        found = results["render"]
        runs = ", ".join(f"{s:.2f}" for s in found["runs_s"])
        parts += ["", "## Render", "",
                  f"`cookiecutter --no-input`: median **{found['median_s']:.2f} s** over "
                  f"{len(found['runs_s'])} CLI renders ({runs} s)."]  # fmt: skip
    if results.get("server_logs"):
        parts += ["", "Server log lines (last of each):", ""]
        for name, lines in results["server_logs"].items():
            parts += [f"- {name}: `{lines[-1][:200]}`"]
    return "\n".join(parts) + "\n"


def write(path: Path, generated: str) -> None:
    """Replace what is above the history marker; keep the marker and what follows."""
    kept = f"{HISTORY_MARKER}\n\n## History\n"
    if path.exists():
        old = path.read_text(encoding="utf-8")
        if HISTORY_MARKER in old:
            kept = HISTORY_MARKER + old.split(HISTORY_MARKER, 1)[1]
        else:
            kept = f"{HISTORY_MARKER}\n\n## History\n\n{old}"  # nothing is lost
    path.write_text(generated.rstrip("\n") + "\n\n" + kept.rstrip("\n") + "\n", encoding="utf-8")
