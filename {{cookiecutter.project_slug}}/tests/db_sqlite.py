"""SQLite for the tests: a throwaway file per use, and an outage made by moving it away."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

from sqlalchemy.engine import make_url


@contextmanager
def throwaway_database(folder: Path) -> Iterator[str]:
    """The URL of a database file that does not exist yet, in `folder` (pytest's tmp)."""
    yield f"sqlite:///{folder / 'db' / 'service.db'}"


def delete_rows(url: str) -> None:
    """Empty the jobs and the generation log."""
    database = make_url(url).database
    assert database is not None
    with closing(sqlite3.connect(database)) as connection, connection:
        connection.execute("DELETE FROM jobs")
        connection.execute("DELETE FROM generation_log")


class DatabaseSwitch:
    """A database that the test can take away and bring back: its folder is moved.

    Its own file in `folder` (`url` is ignored): the service's open connections notice
    that the file has gone, like a lost volume, and new ones cannot open it.
    """

    def __init__(self, url: str, folder: Path) -> None:
        self.folder = folder / "switched"
        self.away = folder / "switched-away"
        self.url = f"sqlite:///{self.folder / 'service.db'}"
        self.symptom = "unable to open database file"  # the reason readiness gives

    def __enter__(self) -> DatabaseSwitch:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.restore()

    def cut(self) -> None:
        self.folder.rename(self.away)

    def restore(self) -> None:
        if self.away.exists():
            self.away.rename(self.folder)
