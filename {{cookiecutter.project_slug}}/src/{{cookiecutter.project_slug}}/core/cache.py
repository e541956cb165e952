"""Response cache for model outputs: one interface, an in-memory LRU + TTL backend."""

from __future__ import annotations

from typing import Protocol

from cachetools import TTLCache


class ResponseCache(Protocol):
    """Keys are request fingerprints; values are serialised completions."""

    async def get(self, key: str) -> bytes | None: ...

    async def set(self, key: str, value: bytes) -> None: ...

    async def aclose(self) -> None: ...


class MemoryResponseCache:
    """Per-process LRU with a TTL: bounded in entries, nothing shared between workers."""

    def __init__(self, *, ttl_s: float, max_entries: int) -> None:
        self._entries: TTLCache[str, bytes] = TTLCache(maxsize=max_entries, ttl=ttl_s)

    async def get(self, key: str) -> bytes | None:
        return self._entries.get(key)

    async def set(self, key: str, value: bytes) -> None:
        self._entries[key] = value

    async def aclose(self) -> None:
        self._entries.clear()
