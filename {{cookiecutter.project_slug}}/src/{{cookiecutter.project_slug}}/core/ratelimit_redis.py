"""Rate limits in Redis: the buckets of core/ratelimit.py, shared by every process and replica.

Each call is one Lua script, atomic, on Redis's own clock (never the clients', which
drift apart across machines). A bucket's key expires when the bucket is full again, so
idle callers cost no memory. Each call is bounded by OPERATION_TIMEOUT_S; while Redis
is unreachable the outage policy decides (RATE_LIMIT_FAIL_OPEN).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from .ratelimit import Decision, Limit, OutagePolicy, decide

OPERATION_TIMEOUT_S = 0.5

# The arithmetic of MemoryRateLimiter._take, with levels and times kept in a hash per bucket.
TAKE = """
-- KEYS: the buckets. ARGV[1]: '1' takes from all or none, '0' takes unchecked (settling);
-- then per bucket its size per minute and the cost. Replies allowed, then each level.
local clock = redis.call('TIME')
local now = clock[1] * 1000 + clock[2] / 1000
local check = ARGV[1] == '1'
local levels, allowed = {}, true
for i, key in ipairs(KEYS) do
  local size, cost = tonumber(ARGV[2 * i]), tonumber(ARGV[2 * i + 1])
  local state = redis.call('HMGET', key, 'level', 'at')
  local level = size
  if state[1] then
    level = math.min(size, tonumber(state[1]) + (now - tonumber(state[2])) * size / 60000)
  end
  levels[i] = level
  if check and level < cost then allowed = false end
end
if allowed then
  for i, key in ipairs(KEYS) do
    local size, cost = tonumber(ARGV[2 * i]), tonumber(ARGV[2 * i + 1])
    local level = math.min(size, levels[i] - cost)
    levels[i] = level
    local full_in = math.ceil((size - level) * 60000 / size)
    if full_in > 0 then
      redis.call('HSET', key, 'level', tostring(level), 'at', tostring(now))
      redis.call('PEXPIRE', key, full_in)
    else
      redis.call('DEL', key)
    end
  end
end
local reply = {allowed and 1 or 0}
for i = 1, #KEYS do
  reply[i + 1] = tostring(levels[i]) -- as text: Lua numbers reach Redis as integers
end
return reply
"""


class RedisRateLimiter:
    def __init__(self, redis: Redis, *, prefix: str, fail_open: bool) -> None:
        self.prefix = prefix
        self.policy = OutagePolicy(fail_open=fail_open, store="redis")
        self._take = redis.register_script(TAKE)

    async def acquire(self, limits: Sequence[Limit]) -> Decision:
        reply = await self._call(limits, check=True)
        if reply is None:
            return self.policy.unavailable()
        allowed, *levels = reply
        return decide(limits, [float(level) for level in levels], allowed=allowed == 1)

    async def adjust(self, limit: Limit) -> None:
        # Lost in an outage, a settlement leaves the reservation taken until it refills.
        await self._call([limit], check=False)

    async def _call(self, limits: Sequence[Limit], *, check: bool) -> list[Any] | None:
        if self.policy.bypassed():
            return None
        args: list[int | str] = ["1" if check else "0"]
        for limit in limits:
            args += [limit.per_minute, limit.cost]
        try:
            async with asyncio.timeout(OPERATION_TIMEOUT_S):
                reply: list[Any] = await self._take(
                    keys=[self.prefix + limit.key for limit in limits], args=args
                )
        except (RedisError, OSError, TimeoutError) as exc:
            self.policy.failed(exc)
            return None
        self.policy.succeeded()
        return reply
