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


def test_startup_objects_are_frozen_until_shutdown_and_later_cycles_still_collected(
    settings: Settings,
) -> None:
    threshold = gc.get_threshold()
    app = create_app(settings)
    with TestClient(app) as client:
        assert client.get("/health/live").status_code == 200
        # The app itself was made before the freeze: collections no longer walk it.
        assert gc.get_freeze_count() > 10_000
        assert gc.get_threshold() == (YOUNG_THRESHOLD, *threshold[1:])

        first, second = Node(), Node()
        first.peer, second.peer = second, first  # a cycle: reference counts never free it
        alive = weakref.ref(first)
        del first, second
        gc.collect()
        assert alive() is None  # made after startup, so still collected

    assert gc.get_freeze_count() == 0
    assert gc.get_threshold() == threshold
