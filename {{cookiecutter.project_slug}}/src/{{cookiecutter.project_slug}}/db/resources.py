"""What the database module adds to the services: the engine, the generation log
writer, the durable job store and the response store, each closed with the services."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..jobs.sql_store import SQLJobStore
from ..responses.sql_store import SQLResponseStore
from .engine import open_database
from .recorder import SQLGenerationRecorder

if TYPE_CHECKING:
    from ..services import Services


async def attach_database(services: Services) -> None:
    settings, stack = services.settings, services.stack
    services.database = await stack.enter_async_context(open_database(settings))
    services.lifecycle.add_check("database", services.database.readiness)
    services.recorder = await stack.enter_async_context(
        SQLGenerationRecorder.running(services.database, store_prompts=settings.store_prompts)
    )
    services.job_store = SQLJobStore(services.database, retention_s=settings.job_retention_s)
    services.response_store = SQLResponseStore(services.database, ttl_s=settings.responses_ttl_s)
