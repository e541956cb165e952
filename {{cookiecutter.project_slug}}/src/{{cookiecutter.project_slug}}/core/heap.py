"""Garbage collection settled for a long-running server.

Startup leaves some 140,000 long-lived objects behind: modules, routes, schemas,
settings, pools. CPython's full collections walk every one of them; under load each
took about 100 ms on a 2-core machine, a pause every few seconds that every request
and stream in flight shared (it was most of the p99 latency). Once startup is done,
`settled_heap()` moves what exists into the permanent generation (`gc.freeze`), which
collections skip, and raises the youngest generation's threshold, so collections run
about a fourteenth as often. Objects made later are still collected, only later.

There is no full collection before the freeze: startup leaves almost no garbage (a
few hundred objects in the collections it ran), and one per start would cost every
test that starts an app. When the last app using it stops, both changes are undone
(`gc.unfreeze` releases every frozen object, any frozen before included), so a
process that starts several apps, one after another or overlapping (a test suite),
ends with CPython's settings.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

# The youngest generation is collected once the container objects allocated exceed
# those freed by this many (CPython's default: 700). A request frees almost all it
# allocates by reference counting; what needs the collector (cycles, such as a
# traceback and its frames) can wait a little longer.
YOUNG_THRESHOLD = 10_000


@dataclass
class _Users:
    count: int = 0
    threshold: tuple[int, int, int] = (0, 0, 0)  # CPython's, while the heap is settled


_USERS = _Users()
_LOCK = threading.Lock()  # TestClient runs each app's lifespan in a thread of its own


@contextmanager
def settled_heap() -> Iterator[None]:
    with _LOCK:
        _USERS.count += 1
        if _USERS.count == 1:
            _USERS.threshold = gc.get_threshold()
            gc.freeze()
            if _USERS.threshold[0]:  # 0: automatic collection is off, and stays off
                gc.set_threshold(YOUNG_THRESHOLD, *_USERS.threshold[1:])
    try:
        yield
    finally:
        with _LOCK:
            _USERS.count -= 1
            if _USERS.count == 0:
                gc.set_threshold(*_USERS.threshold)
                gc.unfreeze()
