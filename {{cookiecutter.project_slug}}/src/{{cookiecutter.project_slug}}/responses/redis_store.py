"""Stored responses in Redis: shared by every process, each record expiring after `ttl_s`.

A record is one JSON value under `<prefix><response id>`. Replacing an unfinished one
watches its key, so a cancel and the end of a run cannot both win.
"""

from __future__ import annotations

import dataclasses
import json
from typing import TYPE_CHECKING

from redis.asyncio import Redis
from redis.exceptions import WatchError

from .store import StoredResponse

if TYPE_CHECKING:
    from ..services import Services


class RedisResponseStore:
    shared = True

    def __init__(self, redis: Redis, *, prefix: str, ttl_s: float) -> None:
        self.redis = redis
        self.prefix = prefix
        self.ttl_ms = int(ttl_s * 1000)

    @classmethod
    def for_services(cls, services: Services) -> RedisResponseStore:
        settings = services.settings
        return cls(
            services.redis,
            prefix=f"{settings.redis_key_prefix}responses:",
            ttl_s=settings.responses_ttl_s,
        )

    async def add(self, record: StoredResponse) -> None:
        await self.redis.set(self._key(record.id), encode(record), px=self.ttl_ms)

    async def get(self, response_id: str) -> StoredResponse | None:
        raw = await self.redis.get(self._key(response_id))
        return decode(raw) if raw is not None else None

    async def delete(self, response_id: str) -> bool:
        return bool(await self.redis.delete(self._key(response_id)))

    async def replace_unfinished(self, record: StoredResponse) -> bool:
        key = self._key(record.id)
        async with self.redis.pipeline(transaction=True) as pipe:
            try:
                await pipe.watch(key)
                raw = await pipe.get(key)
                if raw is None or not decode(raw).unfinished:
                    return False
                pipe.multi()  # type: ignore[no-untyped-call]  # redis-py leaves it untyped
                pipe.set(key, encode(record), keepttl=True)
                await pipe.execute()
            except WatchError:  # changed since it was read: whoever changed it won
                return False
        return True

    def _key(self, response_id: str) -> str:
        return f"{self.prefix}{response_id}"


def encode(record: StoredResponse) -> bytes:
    return json.dumps(dataclasses.asdict(record)).encode()


def decode(raw: bytes) -> StoredResponse:
    return StoredResponse(**json.loads(raw))
