"""Garbage collection settled for a long-running server.

Startup leaves some 140,000 long-lived objects behind: modules, routes, schemas,
settings, pools. CPython's full collections walk every one of them; under load each
took about 100 ms on a 2-core machine, a pause every few seconds that every request
and stream in flight shared (it was most of the p99 latency). Once startup is done,
`settled_heap()` moves what exists into the permanent generation (`gc.freeze`), which
collections skip, and lets the youngest generation grow larger before it is
collected, so young collections run a fourteenth as often. Objects made later are
collected as before. Both changes are undone when the block exits, so a process
that starts several apps in turn (a test suite) ends as it began.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

# Allocations between two collections of the youngest generation (CPython's default:
# 700). Requests allocate thousands of short-lived objects that reference counting
# frees; the collector is only needed for cycles, which are rare on the request path.
YOUNG_THRESHOLD = 10_000


@contextmanager
def settled_heap() -> Iterator[None]:
    previous = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, *previous[1:])
    try:
        yield
    finally:
        gc.set_threshold(*previous)
        gc.unfreeze()
