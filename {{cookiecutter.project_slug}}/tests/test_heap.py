"""The garbage collector while the app runs: startup's objects frozen, later ones collected."""

from __future__ import annotations

import gc
import weakref

from fastapi.testclient import TestClient

from {{ cookiecutter.project_slug }}.core.heap import YOUNG_THRESHOLD
from {{ cookiecutter.project_slug }}.main import create_app
from {{ cookiecutter.project_slug }}.settings import Settings


class Node:
    def __init__(self) -> None:
        self.peer: Node | None = None


def tracked(target: object) -> bool:
    """Whether collections still walk `target` (frozen objects are left out)."""
    return any(candidate is target for candidate in gc.get_objects())


def test_startup_objects_are_frozen_until_shutdown_and_later_cycles_still_collected(
    settings: Settings,
) -> None:
    threshold = gc.get_threshold()
    app = create_app(settings)
    with TestClient(app) as client:
        assert client.get("/health/live").status_code == 200
        assert not tracked(app)  # made before the freeze: collections skip it
        assert gc.get_threshold() == (YOUNG_THRESHOLD, *threshold[1:])

        first, second = Node(), Node()
        first.peer, second.peer = second, first  # a cycle: reference counts never free it
        alive = weakref.ref(first)
        del first, second
        # No explicit collection: enough allocations for the collector to run by itself,
        # the older generation included (once every ten collections of the youngest).
        kept: list[list[None]] = [[] for _ in range(YOUNG_THRESHOLD * 12)]
        assert alive() is None
        del kept

    assert tracked(app)
    assert gc.get_threshold() == threshold


def test_overlapping_apps_keep_the_heap_settled_until_the_last_one_stops(
    settings: Settings,
) -> None:
    threshold = gc.get_threshold()
    first, second = create_app(settings), create_app(settings)
    first_client, second_client = TestClient(first), TestClient(second)
    first_client.__enter__()
    try:
        second_client.__enter__()
    finally:
        first_client.__exit__(None, None, None)
    try:
        # The first app has stopped, the second still runs: its heap stays settled.
        assert not tracked(second)
        assert gc.get_threshold()[0] == YOUNG_THRESHOLD
    finally:
        second_client.__exit__(None, None, None)
    assert tracked(first)
    assert tracked(second)
    assert gc.get_threshold() == threshold
