"""Where stored responses live (`store: true`), so that they can be read back and chained.

A record keeps the response as the API returned it and the input items it was made
from: `previous_response_id` rebuilds a conversation from those two lists, response
by response. The in-memory store is the default; the database, or Redis without one,
replaces it so that every worker process sees the same responses.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from cachetools import TTLCache

# A background response in one of these can still change (finish, fail, be cancelled).
UNFINISHED = ("queued", "in_progress")


@dataclass(frozen=True, slots=True)
class StoredResponse:
    id: str
    owner: str  # the principal that created it: nobody else can read, chain or delete it
    response: dict[str, Any]  # the Response object, as JSON
    input_items: list[dict[str, Any]]  # this turn's input items, as JSON (not the instructions)
    previous_response_id: str | None = None
    background: bool = False
    created_at: float = field(default_factory=time.time)

    @property
    def status(self) -> str:
        return str(self.response.get("status"))

    @property
    def unfinished(self) -> bool:
        return self.status in UNFINISHED

    def with_response(self, response: dict[str, Any]) -> StoredResponse:
        return replace(self, response=response)


class ResponseStore(Protocol):
    """Stored responses by id. `shared` stores are seen by every process of the service."""

    shared: bool

    async def add(self, record: StoredResponse) -> None: ...

    async def get(self, response_id: str) -> StoredResponse | None: ...

    async def delete(self, response_id: str) -> bool: ...

    async def replace_unfinished(self, record: StoredResponse) -> bool:
        """Replace the stored record only while it is still queued or in progress.

        False when it finished, was cancelled or was deleted meanwhile: of a cancel and
        the end of a run, whichever comes first wins.
        """
        ...


class MemoryResponseStore:
    """This process's memory: forgotten after `ttl_s`, the least recently used dropped
    beyond `max_entries`."""

    shared = False

    def __init__(self, *, ttl_s: float, max_entries: int) -> None:
        self._records: TTLCache[str, StoredResponse] = TTLCache(maxsize=max_entries, ttl=ttl_s)

    async def add(self, record: StoredResponse) -> None:
        self._records[record.id] = record

    async def get(self, response_id: str) -> StoredResponse | None:
        return self._records.get(response_id)

    async def delete(self, response_id: str) -> bool:
        return self._records.pop(response_id, None) is not None

    async def replace_unfinished(self, record: StoredResponse) -> bool:
        current = self._records.get(record.id)
        if current is None or not current.unfinished:
            return False
        self._records[record.id] = record
        return True
