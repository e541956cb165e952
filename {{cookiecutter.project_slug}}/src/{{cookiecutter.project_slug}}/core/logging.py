"""Structured logging: JSON lines on stdout (ELK / Loki ready) or coloured console output.

structlog renders every record, including those of uvicorn and other libraries that
log through the standard library, and merges the request context (request id) that
the middleware binds into each line.
"""

from __future__ import annotations

import logging
import sys
from typing import Literal

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
    renderer: Processor
    if fmt == "json":
        renderer = structlog.processors.JSONRenderer()
        # Structured tracebacks, without frame locals: those can hold secrets.
        exception_processors: list[Processor] = [
            structlog.processors.ExceptionRenderer(
                structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
            )
        ]
    else:
        renderer = structlog.dev.ConsoleRenderer()
        exception_processors = []

    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,  # below LOG_LEVEL: dropped before any work
            *SHARED_PROCESSORS,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=SHARED_PROCESSORS,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            *exception_processors,
            renderer,
        ],
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


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    logger: structlog.stdlib.BoundLogger = structlog.stdlib.get_logger(name)
    return logger
