"""The floor for a Python proxy: a pass-through written directly on aiohttp, no framework.

Every POST goes to the same path on BENCH_UPSTREAM_URL through one pooled
ClientSession; JSON answers are relayed whole, event streams chunk by chunk. No
validation, no logging, no middleware: whatever a real service does beyond this is
its overhead. Served like the others: one process, uvloop, access log off.

    python aiohttp_proxy.py   (PORT, BENCH_UPSTREAM_URL, BENCH_MAX_CONNECTIONS)
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator

import aiohttp
import uvloop
from aiohttp import web

UPSTREAM = os.environ["BENCH_UPSTREAM_URL"].rstrip("/")
SESSION = web.AppKey("session", aiohttp.ClientSession)
JSON = {"Content-Type": "application/json"}


async def proxy(request: web.Request) -> web.StreamResponse:
    body = await request.read()
    session = request.app[SESSION]
    async with session.post(UPSTREAM + request.path, data=body, headers=JSON) as upstream:
        if upstream.content_type != "text/event-stream":
            payload = await upstream.read()
            return web.Response(status=upstream.status, body=payload, headers=JSON)
        response = web.StreamResponse(
            status=upstream.status,
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"},
        )
        await response.prepare(request)
        async for data in upstream.content.iter_any():
            await response.write(data)
        await response.write_eof()
        return response


async def ready(_: web.Request) -> web.Response:
    return web.Response(text="ok")


async def client_session(app: web.Application) -> AsyncIterator[None]:
    limit = int(os.environ.get("BENCH_MAX_CONNECTIONS", "1024"))
    connector = aiohttp.TCPConnector(limit=limit, limit_per_host=limit)
    app[SESSION] = aiohttp.ClientSession(connector=connector)
    yield
    await app[SESSION].close()


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    app = web.Application()
    app.cleanup_ctx.append(client_session)
    app.router.add_get("/", ready)
    app.router.add_post("/{tail:.*}", proxy)
    port = int(os.environ["PORT"])
    web.run_app(
        app, host="127.0.0.1", port=port, access_log=None, print=None, loop=uvloop.new_event_loop()
    )


if __name__ == "__main__":
    main()
