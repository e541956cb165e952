"""Structured logging: JSON lines on stdout (ELK / Loki ready) or coloured console output.

structlog renders every record, including those of uvicorn and other libraries that
log through the standard library, and merges the request context (request id) that
the middleware binds into each line. In JSON mode the service's own lines (one access
line per request among them) skip the standard library: structlog renders them with
orjson straight to stdout, a third of the cost of a `logging` record.
"""

from __future__ import annotations

import logging
import sys
from typing import Literal

import orjson
import structlog
import structlog.tracebacks
from structlog.types import Processor
{%- if cookiecutter.use_opentelemetry %}

from .tracing import add_trace_ids
{%- endif %}


def drop_color_message(
    logger: object, method_name: str, event_dict: structlog.types.EventDict
) -> structlog.types.EventDict:
    """uvicorn repeats each message with ANSI colours in `color_message`: noise here."""
    event_dict.pop("color_message", None)
    return event_dict


SHARED_PROCESSORS: list[Processor] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
    structlog.stdlib.ExtraAdder(),
{%- if cookiecutter.use_opentelemetry %}
    add_trace_ids,
{%- endif %}
    drop_color_message,  # after ExtraAdder, which copies it from the record
]


def configure_logging(level: str = "INFO", fmt: Literal["json", "console"] = "json") -> None:
    if fmt == "json":
        # Structured tracebacks, without frame locals: those can hold secrets.
        exceptions: list[Processor] = [
            structlog.processors.ExceptionRenderer(
                structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
            )
        ]
        structlog.configure(
            processors=[
                *SHARED_PROCESSORS,
                *exceptions,
                structlog.processors.JSONRenderer(serializer=orjson.dumps),
            ],
            logger_factory=structlog.BytesLoggerFactory(sys.stdout.buffer),
            # Below LOG_LEVEL, a call returns at once.
            wrapper_class=structlog.make_filtering_bound_logger(level),
            cache_logger_on_first_use=False,  # each configure_logging takes effect
        )
        foreign: list[Processor] = [*exceptions, structlog.processors.JSONRenderer()]
    else:
        structlog.configure(
            processors=[
                structlog.stdlib.filter_by_level,  # below LOG_LEVEL: dropped before any work
                *SHARED_PROCESSORS,
                structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
            ],
            logger_factory=structlog.stdlib.LoggerFactory(),
            wrapper_class=structlog.stdlib.BoundLogger,
            cache_logger_on_first_use=False,
        )
        foreign = [structlog.dev.ConsoleRenderer()]
    # Records of the standard library (uvicorn's, other libraries', and all of ours in
    # console mode) are rendered by the same processors.
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=SHARED_PROCESSORS,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *foreign],
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(formatter)

    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # uvicorn's loggers go through the root handler; its access log is replaced by ours.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    logging.getLogger("uvicorn.access").disabled = True
{%- if cookiecutter.database != "none" %}
    # Alembic announces each of its plugins at INFO as it loads, at every start of a
    # process that checks or migrates the schema; its migration lines are kept.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
{%- endif %}


def get_logger(name: str) -> structlog.typing.FilteringBoundLogger:
    """A logger named `name` (the `logger` of its lines), configured when it logs."""
    logger: structlog.typing.FilteringBoundLogger = structlog.get_logger(name)
    return logger
