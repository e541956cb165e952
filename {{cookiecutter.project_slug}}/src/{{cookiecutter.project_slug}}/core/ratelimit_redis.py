"""Rate limits in Redis: the buckets of core/ratelimit.py, shared by every process and replica.

Each call to Redis is one Lua script, atomic, on Redis's own clock (never the clients',
which drift apart across machines). A bucket's key expires when the bucket is full
again, so idle callers cost no memory. While Redis is unreachable the outage policy
decides (RATE_LIMIT_FAIL_OPEN).

The checks and settlements of concurrent requests share those calls: one batch is in
flight at a time, and whatever arrives meanwhile goes in the next, in arrival order.
An idle process sends each at once; under load a batch carries every request that
arrived during the previous round trip, so the cost per request falls as the load
rises, and no request waits longer than one round trip more. Each batch is bounded by
OPERATION_TIMEOUT_S, and runs in the context of the request that opened it (its trace
and log fields).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from .ratelimit import Decision, Limit, OutagePolicy, decide

OPERATION_TIMEOUT_S = 0.5
MAX_BATCH = 128  # takes per script call: a batch never holds Redis for long

# MemoryRateLimiter._take once per take, with levels and times kept in a hash per bucket.
TAKE = """
-- KEYS: the buckets of every take, in order. ARGV, per take: '1' takes from all its
-- buckets or none, '0' takes unchecked (a settlement); its number of buckets; then per
-- bucket its size per minute and the cost. Replies, per take, allowed and each level.
local clock = redis.call('TIME')
local now = clock[1] * 1000 + clock[2] / 1000
local reply, key, arg = {}, 0, 1
while arg <= #ARGV do
  local check, count = ARGV[arg] == '1', tonumber(ARGV[arg + 1])
  local sizes, costs, levels, allowed = {}, {}, {}, true
  for i = 1, count do
    sizes[i], costs[i] = tonumber(ARGV[arg + 2 * i]), tonumber(ARGV[arg + 2 * i + 1])
    local state = redis.call('HMGET', KEYS[key + i], 'level', 'at')
    local level = sizes[i]
    if state[1] then
      -- `at` is kept as text to 14 digits, a little off `now`: never a negative wait.
      local waited = math.max(0, now - tonumber(state[2]))
      level = math.min(sizes[i], tonumber(state[1]) + waited * sizes[i] / 60000)
    end
    levels[i] = level
    if check and level < costs[i] then allowed = false end
  end
  if allowed then
    for i = 1, count do
      local level = math.min(sizes[i], levels[i] - costs[i])
      levels[i] = level
      local full_in = math.ceil((sizes[i] - level) * 60000 / sizes[i])
      if full_in > 0 then
        redis.call('HSET', KEYS[key + i], 'level', tostring(level), 'at', tostring(now))
        redis.call('PEXPIRE', KEYS[key + i], full_in)
      else
        redis.call('DEL', KEYS[key + i])
      end
    end
  end
  reply[#reply + 1] = allowed and 1 or 0
  for i = 1, count do
    reply[#reply + 1] = tostring(levels[i]) -- as text: Lua numbers reach Redis as integers
  end
  key, arg = key + count, arg + 2 + 2 * count
end
return reply
"""


@dataclass(slots=True)
class Take:
    """One check or settlement waiting for its batch; `reply` gets allowed, then levels."""

    limits: Sequence[Limit]
    check: bool
    reply: asyncio.Future[list[Any] | None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class RedisRateLimiter:
    def __init__(self, redis: Redis, *, prefix: str, fail_open: bool) -> None:
        self.prefix = prefix
        self.policy = OutagePolicy(fail_open=fail_open, store="redis")
        self._take = redis.register_script(TAKE)
        self._queue: list[Take] = []
        self._sender: asyncio.Task[None] | None = None

    async def acquire(self, limits: Sequence[Limit]) -> Decision:
        reply = await self._submit(limits, check=True)
        if reply is None:
            return self.policy.unavailable()
        allowed, *levels = reply
        return decide(limits, [float(level) for level in levels], allowed=allowed == 1)

    async def adjust(self, limit: Limit) -> None:
        # Lost in an outage, a settlement leaves the reservation taken until it refills.
        await self._submit([limit], check=False)

    async def _submit(self, limits: Sequence[Limit], *, check: bool) -> list[Any] | None:
        if self.policy.bypassed():
            return None
        take = Take(limits, check)
        self._queue.append(take)
        if self._sender is None:
            # It starts after the callbacks already due, so their takes join this batch.
            self._sender = asyncio.create_task(self._send())
        return await take.reply

    async def _send(self) -> None:
        """Send the queue, a batch at a time, until it is empty; answer every take."""
        batch: list[Take] = []
        try:
            while self._queue:
                batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
                replies = await self._call(batch)
                start = 0
                for take in batch:
                    end = start + 1 + len(take.limits)
                    if not take.reply.done():  # its caller may have gone (cancelled)
                        take.reply.set_result(None if replies is None else replies[start:end])
                    start = end
                batch = []
        finally:
            self._sender = None
            # Left only when the sender is cancelled (shutdown): the policy answers them.
            for take in [*batch, *self._queue]:
                if not take.reply.done():
                    take.reply.set_result(None)
            self._queue = []

    async def _call(self, batch: Sequence[Take]) -> list[Any] | None:
        if self.policy.bypassed():
            return None
        keys: list[str] = []
        args: list[int | str] = []
        for take in batch:
            args += ["1" if take.check else "0", len(take.limits)]
            for limit in take.limits:
                keys.append(self.prefix + limit.key)
                args += [limit.per_minute, limit.cost]
        try:
            async with asyncio.timeout(OPERATION_TIMEOUT_S):
                reply: list[Any] = await self._take(keys=keys, args=args)
        except (RedisError, OSError, TimeoutError) as exc:
            self.policy.failed(exc)
            return None
        self.policy.succeeded()
        return reply
