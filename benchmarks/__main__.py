"""`python -m benchmarks`: render, install, measure, report (`make bench` runs it).

The exit status is 0 whenever the benchmark ran: a missed target is a figure, not a
failure.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.metadata
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

from . import placement, renders, report, servers
from .backends import POSTGRES_ADMIN_URL, REDIS_URL
from .renders import REPO, Render, log
from .suite import SECTIONS, TOKEN_INTERVAL_MS, Options, Suite, backing_services, migrate

QUICK = {
    "warmup": 1.0,
    "duration": 3.0,
    "ttft_requests": 60,
    "cache_requests": 40,
    "render_runs": 3,
}
PACKAGES = ("fastapi", "starlette", "pydantic", "uvicorn", "uvloop", "httptools", "aiohttp",
            "structlog", "sqlalchemy", "aiosqlite", "asyncpg", "redis")  # fmt: skip


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Benchmark the template's renders against baselines; write BENCHMARKS.md.",
    )
    add = parser.add_argument
    add("--quick", action="store_true", help="short windows and fewer samples (a trial run)")
    add("--only", help=f"comma-separated sections: {','.join(SECTIONS)} (default: all)")
    add("--repeat", type=int, default=1, help="runs per throughput line; the median run counts")
    add("--json", type=Path, help="also write the raw results to this file")
    add("--output", type=Path, default=REPO / "BENCHMARKS.md", help="the report (BENCHMARKS.md)")
    add("--no-write", action="store_true", help="print the report only")
    add("--project", type=Path, help="reuse this default render (installed in PROJECT/.venv)")
    add("--all-on-project", type=Path, help="reuse this all-on render (in PROJECT/.venv)")
    add(
        "--workdir",
        type=Path,
        help="work folder, kept; its renders are reused while the template is unchanged",
    )
    add("--keep", action="store_true", help="keep the temporary work folder")
    add("--pin", choices=placement.MODES, default="isolate", help="CPU placement (isolate)")
    add("--profile", type=Path, help="record py-spy profiles of the servers under test here")
    add(
        "--py-spy",
        help="py-spy executable (default: on PATH, else installed into the render's venv)",
    )
    add("--warmup", type=float, help="discarded seconds per line (3)")
    add("--duration", type=float, help="measured seconds per line (10)")
    add("--concurrency", type=int, default=64, help="closed-loop connections (64)")
    add("--ttft-requests", type=int, help="sequential streams per path (300)")
    add("--streams", type=int, default=1000, help="concurrent streams (1000)")
    add("--stream-ramp", type=float, default=0.5, help="seconds over which the streams open (0.5)")
    add(
        "--stream-clients",
        type=int,
        default=0,
        help="client processes for the streams (one per load CPU)",
    )
    add(
        "--postgres-url",
        default=POSTGRES_ADMIN_URL,
        help="PostgreSQL to make the throwaway database in",
    )
    add("--redis-url", default=REDIS_URL, help="Redis for the all-on render")
    args = parser.parse_args(argv)
    chosen = set(args.only.split(",")) if args.only else set(SECTIONS)
    unknown = chosen - set(SECTIONS)
    if unknown:
        parser.error(
            f"unknown section(s) {', '.join(sorted(unknown))}; choose from {', '.join(SECTIONS)}"
        )
    args.sections = chosen
    return args


def options_from(args: argparse.Namespace) -> Options:
    values: dict[str, Any] = dict(QUICK) if args.quick else {}
    for name in ("warmup", "duration", "ttft_requests"):
        if getattr(args, name) is not None:
            values[name] = getattr(args, name)
    return Options(
        **values,
        concurrency=args.concurrency,
        repeat=args.repeat,
        streams=args.streams,
        stream_clients=args.stream_clients,
        stream_ramp_s=args.stream_ramp,
        pin=args.pin,
        profile=args.profile,
        py_spy=args.py_spy,
    )


@contextmanager
def workdir(args: argparse.Namespace) -> Iterator[Path]:
    if args.workdir:
        args.workdir.mkdir(parents=True, exist_ok=True)
        yield args.workdir.resolve()
        return
    path = Path(tempfile.mkdtemp(prefix="bench-"))
    try:
        yield path
    finally:
        if args.keep:
            log(f"kept {path}")
        else:
            shutil.rmtree(path, ignore_errors=True)


def raise_open_files(needed: int) -> str:
    """Lift the soft limit on open files (servers and clients inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        wanted = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
        soft = wanted
    return f"{soft} open files"


def build_renders(args: argparse.Namespace, work: Path) -> dict[str, Render]:
    needed = set(args.sections) - {"render"}
    if not needed:
        return {}
    options = renders.template_options()
    interpreter, version = renders.choose_interpreter(options)
    pinned = {"python_version": version} if version else {}
    found: dict[str, Render] = {}
    if args.project:
        found["default"] = renders.existing("default", pinned, args.project)
    else:
        found["default"] = renders.render_and_install("default", pinned, interpreter, work)
    if "all-on" in needed:
        answers = {**renders.all_on_answers(options), **pinned}
        if args.all_on_project:
            found["all-on"] = renders.existing("all-on", answers, args.all_on_project, auth=True)
        else:
            found["all-on"] = renders.render_and_install(
                "all-on", answers, interpreter, work, auth=True
            )
    return found


def git(*command: str) -> str:
    found = shutil.which("git")
    if not found:
        return ""
    try:
        done = subprocess.run(  # noqa: S603 - git of this machine
            [found, *command],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return ""
    return done.stdout.strip()


def commit() -> str:
    head = git("rev-parse", "--short", "HEAD") or "unknown"
    changed = [
        line for line in git("status", "--porcelain").splitlines() if "BENCHMARKS.md" not in line
    ]
    return f"{head} (with uncommitted changes)" if changed else head


def machine() -> dict[str, str]:
    cpuinfo = (
        Path("/proc/cpuinfo").read_text(errors="replace") if Path("/proc/cpuinfo").exists() else ""
    )
    model = next(
        (ln.split(":", 1)[1].strip() for ln in cpuinfo.splitlines() if ln.startswith("model name")),
        "?",
    )
    meminfo = Path("/proc/meminfo").read_text() if Path("/proc/meminfo").exists() else ""
    total = next(
        (int(ln.split()[1]) for ln in meminfo.splitlines() if ln.startswith("MemTotal")), 0
    )
    os_name = platform.platform()
    release = Path("/etc/os-release")
    if release.exists():
        for text in release.read_text().splitlines():
            if text.startswith("PRETTY_NAME="):
                os_name = text.split("=", 1)[1].strip('"')
    return {
        "CPU": f"{model}, {os.cpu_count()} logical CPUs ({len(placement.usable_cpus())} usable)",
        "memory": f"{total / 1024 / 1024:.1f} GiB",
        "system": f"{os_name}, Linux {platform.release()}",
    }


def setup_info(
    found: dict[str, Render],
    versions: dict[str, str],
    load: tuple[float, float],
) -> dict[str, str]:
    info = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": commit(),
        **machine(),
    }
    for name, render in found.items():
        got = renders.versions(render, PACKAGES)
        python = got.pop("python")
        answers = ", ".join(f"{k}={v}" for k, v in render.answers.items()) or "the defaults"
        packages = ", ".join(f"{k} {v}" for k, v in got.items())
        info[f"{name} render"] = f"{render.slug} ({answers}), Python {python}; {packages}"
    info["cookiecutter"] = importlib.metadata.version("cookiecutter")
    info.update(versions)
    info["load average"] = f"{load[0]:.2f} before the run, {load[1]:.2f} after"
    return info


def run_sections(
    args: argparse.Namespace, options: Options, work: Path
) -> tuple[dict[str, Any], dict[str, Render], dict[str, str]]:
    """Install the renders, give them their services, run the chosen sections."""
    found = build_renders(args, work)
    if args.profile and not options.py_spy and found:
        spy = shutil.which("py-spy") or str(renders.install_tool(found["default"], "py-spy"))
        options = Options(**{**asdict(options), "py_spy": spy})
    versions: dict[str, str] = {}
    logs = work / "logs"
    logs.mkdir(exist_ok=True)
    with backing_services(found, args.postgres_url, args.redis_url, versions) as backing:
        for name, render in found.items():
            if render.uses_postgres:
                migrate(render, work, backing[name])
        with servers.pool(logs) as pool:
            helper = found["default"].python if found else Path(sys.executable)
            suite = Suite(options, pool, found, helper, work, placement.usable_cpus())
            try:
                if "render" in args.sections:
                    suite.render_time()  # first, while no server runs
                if found:
                    suite.define_servers(backing)
                    suite.lines(args.sections)
                    for section in ("ttft", "cache", "workers", "streams"):
                        if section in args.sections:
                            getattr(suite, section)()
            finally:
                suite.finish()
    return suite.results, found, versions


def why_not_written(args: argparse.Namespace) -> str | None:
    if args.no_write:
        return "--no-write"
    if args.sections != set(SECTIONS):
        return "a partial run (--only)"
    if args.profile:
        return "a profiled run (sampling slows the servers)"
    return None


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    options = options_from(args)
    began = time.monotonic()
    load_before = os.getloadavg()[0]
    limits = raise_open_files(4 * options.streams + 1024)
    with workdir(args) as work:
        try:
            results, found, versions = run_sections(args, options, work)
        except servers.ServerError as exc:
            raise SystemExit(f"bench: {exc}") from None
        took = time.monotonic() - began
        setup = setup_info(found, versions, (load_before, os.getloadavg()[0]))
    setup["settings"] = (
        f"c={options.concurrency} (WORKERS pair c={options.workers_concurrency}), "
        f"{options.warmup:g} s warm-up + {options.duration:g} s measured, repeat "
        f"{options.repeat}, pin {options.pin}, {options.max_tokens} tokens per answer; "
        f"{limits}; sections {', '.join(s for s in SECTIONS if s in args.sections)}"
    )
    setup["run time"] = f"{took / 60:.1f} min"
    all_on = renders.all_on_answers(renders.template_options())
    values = {
        **asdict(options),
        "all_on": ", ".join(f"{k}={v}" for k, v in all_on.items()),
        "interval": TOKEN_INTERVAL_MS,
    }
    text = report.build(results, setup, values, quick=args.quick)
    print(text)
    if args.json:
        payload = json.dumps({"setup": setup, "results": results}, indent=2)
        args.json.write_text(payload, encoding="utf-8")
    reason = why_not_written(args)
    if reason:
        log(f"not writing {args.output}: {reason}")
    else:
        report.write(args.output, text)
        log(f"wrote {args.output}")
    log(f"done in {took:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
