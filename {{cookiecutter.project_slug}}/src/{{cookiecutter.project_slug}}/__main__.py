{%- set commands = ["serve", "openapi"] %}
{%- if cookiecutter.database != "none" %}{% set commands = commands + ["migrate"] %}{% endif %}
{%- if cookiecutter.use_redis %}{% set commands = commands + ["worker"] %}{% endif %}
{%- set key_table = cookiecutter.auth == "api_key" and cookiecutter.database != "none" %}
{%- if key_table %}{% set commands = commands + ["create-api-key", "list-api-keys", "revoke-api-key"] %}{% endif %}
{%- if cookiecutter.auth == "jwt" %}{% set commands = commands + ["create-user"] %}{% endif -%}
"""Command line: `python -m {{ cookiecutter.project_slug }} [COMMAND]`, serving by default.

Commands: {{ commands | join(", ") }}.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import uvicorn
{% if key_table %}
from .auth.key_table import add_commands as add_api_key_commands
{%- elif cookiecutter.auth == "jwt" %}
from .auth.passwords import add_commands as add_user_commands
{%- endif %}
from .core.logging import configure_logging
{%- if cookiecutter.use_prometheus %}
from .core.metrics_files import prepare_metrics_dir
{%- endif %}
from .settings import get_settings


def serve(args: argparse.Namespace) -> int:
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)
    workers = args.workers or settings.workers
{%- if cookiecutter.use_prometheus %}
    prepare_metrics_dir(workers)  # before uvicorn starts the worker processes
{%- endif %}
    uvicorn.run(
        "{{ cookiecutter.project_slug }}.main:app",
        host=args.host or settings.host,
        port=args.port or settings.port,
        workers=workers,
        reload=args.reload,
        log_config=None,  # logging is configured by the app, as JSON
        access_log=False,  # the edge middleware writes one line per request
        proxy_headers=True,
        forwarded_allow_ips=list(settings.forwarded_allow_ips),  # others' headers are ignored
        # The app has already waited for its in-flight work (DRAIN_TIMEOUT_S): this bounds
        # what is left, such as connections that opened during the drain.
        timeout_graceful_shutdown=max(1, int(settings.drain_timeout_s)),
        server_header=False,
    )
    return 0


def openapi(args: argparse.Namespace) -> int:
    from .api.openapi_file import write_or_check  # builds the app: only this command needs it

    return write_or_check(args.output, check=args.check)
{%- if cookiecutter.database != "none" %}


def migrate(args: argparse.Namespace) -> int:
    from .db.migrate import upgrade  # Alembic is only needed by this command
    from .db.provision import DatabaseSetupError

    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)
    try:
        upgrade(settings, revision=args.revision)
    except DatabaseSetupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0
{%- endif %}
{%- if cookiecutter.use_redis %}


def worker(args: argparse.Namespace) -> int:
    from .jobs.worker import run_worker

    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)
    run_worker(settings)
    return 0
{%- endif %}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="{{ cookiecutter.project_slug }}")
    commands = parser.add_subparsers(dest="command")
    serve_parser = commands.add_parser("serve", help="serve the HTTP API (the default)")
    serve_parser.add_argument("--host", help="bind address (default: HOST)")
    serve_parser.add_argument("--port", type=int, help="port (default: PORT)")
    serve_parser.add_argument("--workers", type=int, help="worker processes (default: WORKERS)")
    serve_parser.add_argument("--reload", action="store_true", help="restart on code changes")
    serve_parser.set_defaults(handler=serve)
    openapi_parser = commands.add_parser("openapi", help="write the OpenAPI document to a file")
    openapi_parser.add_argument(
        "--output", type=Path, default=Path("openapi.json"), help="file (./openapi.json)"
    )
    openapi_parser.add_argument(
        "--check", action="store_true", help="exit 1 if the file is missing or out of date"
    )
    openapi_parser.set_defaults(handler=openapi)
{%- if cookiecutter.database != "none" %}
    migrate_parser = commands.add_parser("migrate", help="apply database migrations")
    migrate_parser.add_argument("revision", nargs="?", default="head", help="target (head)")
    migrate_parser.set_defaults(handler=migrate)
{%- endif %}
{%- if cookiecutter.use_redis %}
    worker_parser = commands.add_parser("worker", help="run background jobs from Redis")
    worker_parser.set_defaults(handler=worker)
{%- endif %}
{%- if key_table %}
    add_api_key_commands(commands)  # create-api-key, list-api-keys, revoke-api-key
{%- elif cookiecutter.auth == "jwt" %}
    add_user_commands(commands)  # create-user
{%- endif %}
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if not arguments or (arguments[0].startswith("-") and arguments[0] not in {"-h", "--help"}):
        arguments.insert(0, "serve")  # serving is the default command
    args = build_parser().parse_args(arguments)
    return int(args.handler(args))


if __name__ == "__main__":
    raise SystemExit(main())
