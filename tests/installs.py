"""Fresh installs of a render: built once per test run, shared by every xdist worker.

A render is installed from its own pyproject.toml into a FRESH virtual environment
(`uv venv` + `uv pip install -e . --group dev`), so a dependency missing from the
render's pyproject fails the tests. The first worker that asks builds it under a file
lock in the run's shared temporary folder; the others wait and reuse it (or its error).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support import REPO, child_env, describe, once_per_run, option_values, run, timed, tool

RUNNING_PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"


def interpreter(version: str) -> str | None:
    """A Python `version` (major.minor) on this machine: the running one, `pythonX.Y` on
    PATH, or pyenv's. uv may not download one (UV_PYTHON_DOWNLOADS=never). On this kind of
    machine pyenv holds 3.12 and 3.13 beside the running 3.11, though its shims are not
    selected."""
    if version == RUNNING_PYTHON:
        return sys.executable
    candidates = [shutil.which(f"python{version}")]
    root = os.environ.get("PYENV_ROOT") or str(Path.home() / ".pyenv")
    candidates += sorted(
        (str(path) for path in Path(root, "versions").glob(f"{version}.*/bin/python3")),
        reverse=True,
    )
    for candidate in candidates:
        if candidate and run([candidate, "-c", "import sys"], timeout=30).returncode == 0:
            return candidate
    return None


@dataclass
class Installed:
    name: str  # the install set's name: default, all-on, pairwise-N
    project: Path
    bin: Path
    env: dict[str, str]
    timings: dict[str, float] = field(default_factory=dict)

    def run(self, *command: str | Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        return run(command, cwd=self.project, env=self.env, timeout=timeout)

    def python_version(self) -> str:
        """The major.minor of the render's venv."""
        probe = self.run(self.bin / "python", "-c", "import sys; print(*sys.version_info[:2])")
        return ".".join(probe.stdout.split())


def mypy_with_shared_cache(installed: Installed, shared: Path) -> subprocess.CompletedProcess[str]:
    """`mypy` in a render, its cache started from what earlier renders of its Python left.

    A cold run spends most of its minute on the libraries, which are the same files in
    every render of one Python version. The first render of each version runs cold
    (the others of that version wait for it); each run then adds the modules the shared
    cache lacks (the libraries of its options: Redis, GraphQL, ...) and later runs start
    from a copy of it, where mypy finds those fresh (same hashes) and checks again what
    differs: the render's own modules and whatever depends on them. mypy validates every
    cached module against its source, as in any incremental run.
    """
    seed = shared / f"mypy-cache-{installed.python_version()}"
    own = installed.project / ".mypy_cache"
    seed_lock = shared / f"{seed.name}.lock"
    with seed_lock.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if not seed.exists():
            result = installed.run(installed.bin / "mypy")
            if own.exists():
                shutil.copytree(own, seed)
            return result
        shutil.rmtree(own, ignore_errors=True)
        shutil.copytree(seed, own)
    result = installed.run(installed.bin / "mypy")
    with seed_lock.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        merge_mypy_cache(own, seed)
    return result


def merge_mypy_cache(source: Path, target: Path) -> None:
    """Add to `target` the cache entries of `source` it lacks (mypy's SQLite shards, or
    the files of its file-per-module format); what `target` holds is kept."""
    for path in source.rglob("*"):
        counterpart = target / path.relative_to(source)
        if path.is_dir() or not counterpart.exists():
            if path.is_file():
                counterpart.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, counterpart)
        elif path.suffix == ".db":
            with contextlib.closing(sqlite3.connect(counterpart)) as database:
                database.execute("ATTACH DATABASE ? AS source", (str(path),))
                tables = database.execute(
                    "SELECT name FROM source.sqlite_master WHERE type = 'table'"
                ).fetchall()
                for (table,) in tables:
                    database.execute(
                        f'INSERT OR IGNORE INTO main."{table}" SELECT * FROM source."{table}"'  # noqa: S608 - mypy's own table names
                    )
                database.commit()


def _build(folder: Path, answers: Mapping[str, str]) -> tuple[Path, dict[str, float]]:
    timings: dict[str, float] = {}
    arguments = [f"{key}={value}" for key, value in answers.items()]
    rendered, timings["render (CLI)"] = timed(
        lambda: run([tool("cookiecutter"), "--no-input", "-o", folder, REPO, *arguments])
    )
    if rendered.returncode != 0:
        raise AssertionError(describe(rendered))
    (project,) = [path for path in folder.iterdir() if path.is_dir()]
    python_version = answers.get("python_version") or option_values("python_version")[0]
    found = interpreter(python_version)
    if found is None:
        raise AssertionError(f"no Python {python_version} on this machine for {dict(answers)}")
    # `.env` as `make install` writes it first: the render's tests and servers run beside it.
    env_file = run(["make", ".env", f"PYTHON={sys.executable}"], cwd=project)
    if env_file.returncode != 0:
        raise AssertionError(describe(env_file))
    venv, timings["uv venv"] = timed(
        lambda: run([tool("uv"), "venv", "--python", found, ".venv"], cwd=project)
    )
    if venv.returncode != 0:
        raise AssertionError(describe(venv))
    python = project / ".venv" / "bin" / "python"
    install, timings["uv pip install -e . --group dev"] = timed(
        lambda: run(
            [tool("uv"), "pip", "install", "--python", python, "-e", ".", "--group", "dev"],
            cwd=project,
            timeout=900,
        )
    )
    if install.returncode != 0:
        raise AssertionError(describe(install))
    return project, timings


def fresh_install(shared: Path, name: str, answers: Mapping[str, str]) -> Installed:
    """Render `answers` (the set called `name`), install the render into a fresh venv; once
    per run for all workers."""
    key = hashlib.sha256(json.dumps(dict(answers), sort_keys=True).encode()).hexdigest()[:12]
    folder = shared / f"install-{key}"

    def build() -> dict[str, Any]:
        folder.mkdir()
        try:
            project, timings = _build(folder, answers)
        except (AssertionError, subprocess.TimeoutExpired) as error:
            return {"error": str(error)}
        return {"project": str(project), "timings": timings}

    outcome = once_per_run(shared, f"install-{key}", build)
    if "error" in outcome:
        raise AssertionError(f"installing {dict(answers)} failed:\n{outcome['error']}")
    project = Path(outcome["project"])
    bin_dir = project / ".venv" / "bin"
    env = child_env()
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    # The machine's service URLs reach only the renders that use those services: a
    # PostgreSQL DATABASE_URL would override a SQLite render's own default.
    if answers.get("database", "sqlite") != "postgresql":
        env.pop("DATABASE_URL", None)
    if answers.get("use_redis", "no") != "yes":
        env.pop("REDIS_URL", None)
    return Installed(name=name, project=project, bin=bin_dir, env=env, timings=outcome["timings"])
