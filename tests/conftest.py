"""Fixtures shared by the template tests."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pytest_cookies.plugin import Cookies

from tests.installs import Installed, fresh_install
from tests.support import (
    REPO,
    answer_key,
    choice_options,
    covering_rows,
    once_per_run,
    option_values,
)


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    # pytest-cookies renders `--template` (default: the current directory); make the
    # default this repository, so the suite also works when started from elsewhere.
    if not (Path(config.option.template) / "cookiecutter.json").exists():
        config.option.template = str(REPO)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # The install tests are the long poles: start them first, so that under xdist
    # (--dist load --maxschedchunk 1: one test at a time to whichever worker is free) they
    # spread over the workers and run beside the rest, not after it.
    items.sort(key=lambda item: item.get_closest_marker("install") is None)


@dataclass(frozen=True)
class Baked:
    """What a render gave: pytest-cookies' Result, as every xdist worker can read it."""

    exit_code: int
    exception: str | None
    project_path: str | None


class Baker:
    """Bakes with pytest-cookies once per distinct answer set, for the whole run.

    The first xdist worker that asks renders into the run's shared folder, under a file
    lock, and records the outcome beside it; the others wait and reuse that render.
    (pytest-cookies' own session fixture bakes into a folder of the worker, which it
    deletes when that worker ends, while others may still be reading.) Renders are
    shared between tests: tests must only read them.
    """

    def __init__(self, template: str, config_file: Any, shared: Path) -> None:
        self._template = template
        self._config_file = config_file
        self._shared = shared
        self._results: dict[str, Baked] = {}

    def __call__(self, **answers: Any) -> Baked:
        key = json.dumps(sorted((name, repr(value)) for name, value in answers.items()))
        if key not in self._results:
            self._results[key] = self._bake_once(key, answers)
        return self._results[key]

    def _bake_once(self, key: str, answers: dict[str, Any]) -> Baked:
        name = f"bake-{hashlib.sha256(key.encode()).hexdigest()[:16]}"

        def bake() -> dict[str, Any]:
            folder = self._shared / name
            folder.mkdir()
            result = Cookies(self._template, lambda _: folder, self._config_file).bake(
                extra_context=answers
            )
            exception = None if result.exception is None else repr(result.exception)
            path = None if result.project_path is None else str(result.project_path)
            return dataclasses.asdict(Baked(result.exit_code, exception, path))

        return Baked(**once_per_run(self._shared, name, bake))

    def project(self, **answers: Any) -> Path:
        """The render's directory; fails the test if that render failed."""
        result = self(**answers)
        if result.exception is not None or result.exit_code != 0 or result.project_path is None:
            pytest.fail(f"render {answers!r} failed: exit {result.exit_code}: {result.exception}")
        return Path(result.project_path)


@pytest.fixture(scope="session")
def baked(
    request: pytest.FixtureRequest, shared_tmp: Path, _cookiecutter_config_file: Any
) -> Baker:
    return Baker(request.config.option.template, _cookiecutter_config_file, shared_tmp)


@pytest.fixture(scope="session")
def project_of(baked: Baker) -> Callable[..., Path]:
    return baked.project


@pytest.fixture(scope="session")
def shared_tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A temporary folder of this run that every xdist worker sees."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def everything(on: bool) -> dict[str, Any]:
    """Every module on (PostgreSQL, JWT, ...) or off: two ends of the option space."""
    answers: dict[str, Any] = {
        option: on for option in choice_options() if isinstance(option_values(option)[0], bool)
    }
    if on:
        return {**answers, "database": "postgresql", "auth": "jwt"}
    return {**answers, "database": "none", "auth": "none"}


def install_sets() -> dict[str, dict[str, str]]:
    """Renders whose own test suites run, each in a fresh venv with its own Python, against
    the real PostgreSQL and Redis of the machine (DATABASE_URL / REDIS_URL, which .ci/run
    exports): the default, everything on, everything off, then as many more as it takes
    to hold every pair of values of any two options (computed, not picked by hand)."""
    seeds = {"default": {}, "all-on": everything(on=True), "all-off": everything(on=False)}
    # Five greedy runs: more found no shorter set, and this runs in every xdist process.
    rows = covering_rows(choice_options(), seeds=list(seeds.values()), tries=5)
    names = [*seeds, *(f"pairwise-{n}" for n in range(1, len(rows) - len(seeds) + 1))]
    return {
        name: {option: answer_key(option, value).partition("=")[2] for option, value in row.items()}
        for name, row in zip(names, rows, strict=True)
    }


INSTALL_SETS = install_sets()


def installed(shared_tmp: Path, name: str) -> Installed:
    """The render of the install set `name`, installed into a fresh venv (tests/installs.py)."""
    return fresh_install(shared_tmp, name, dict(INSTALL_SETS[name]))


@pytest.fixture(scope="session", params=list(INSTALL_SETS))
def install(request: pytest.FixtureRequest, shared_tmp: Path) -> Installed:
    """A render of INSTALL_SETS, installed into a fresh venv (see tests/installs.py)."""
    return installed(shared_tmp, request.param)


@pytest.fixture(scope="session")
def default_install(shared_tmp: Path) -> Installed:
    """The default render, installed into a fresh venv (see tests/installs.py)."""
    return installed(shared_tmp, "default")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print the figures tests recorded with `record_property("timing: ...", seconds)`."""
    seen: dict[tuple[str, str], object] = {}
    for reports in terminalreporter.stats.values():
        for report in reports:
            for name, value in getattr(report, "user_properties", ()):
                if str(name).startswith("timing:"):
                    seen[(report.nodeid, name)] = value
    if seen:
        terminalreporter.section("timings (printed, never asserted)")
        for (nodeid, name), value in sorted(seen.items()):
            terminalreporter.write_line(f"{name[7:].strip():<50} {value}  ({nodeid})")
