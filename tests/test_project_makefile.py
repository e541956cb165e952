"""The rendered Makefile as a newcomer meets it: `.env` first, then the interpreter they ask for.

Dry runs (`make -n`) show what `make install` would run, with uv on PATH and without;
the refusal of a too-old interpreter runs for real (it stops before any install).
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support import child_env, describe, run, tool

NO_UV_PATH = "/usr/bin:/bin"  # make and a shell, but no uv


@pytest.fixture(scope="module")
def uv_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    """PATH with uv on it (the dev venv's), then the system's."""
    folder = tmp_path_factory.mktemp("uv-bin")
    (folder / "uv").symlink_to(tool("uv"))
    return f"{folder}{os.pathsep}{NO_UV_PATH}"


def make_env(path: str, **env: str) -> dict[str, str]:
    """The environment for make: PATH as given, and PYTHON only when the test sets it.

    The variables an outer make exports (the template's own `make test`) are dropped, so
    the rendered Makefile runs as at top level and prints no "Entering directory" lines.
    """
    environment = child_env(PATH=path)
    for name in ("PYTHON", "MAKELEVEL", "MAKEFLAGS", "MFLAGS", "MAKEOVERRIDES"):
        environment.pop(name, None)
    return {**environment, **env}


def dry_run(project: Path, *args: str, path: str, **env: str) -> list[str]:
    result = run(["make", "-n", *args], cwd=project, env=make_env(path, **env))
    assert result.returncode == 0, describe(result)
    return result.stdout.splitlines()


def test_install_and_run_write_env_first_when_it_is_missing(
    project_of: Callable[..., Path], uv_path: str
) -> None:
    project = project_of()
    assert not (project / ".env").exists()
    for target in ("install", "run"):
        commands = dry_run(project, target, path=uv_path)
        assert commands[0] == "python3 scripts/init_env.py", commands


def test_with_uv_install_passes_the_python_asked_for_and_none_otherwise(
    project_of: Callable[..., Path], uv_path: str
) -> None:
    project = project_of()
    assert "uv sync" in dry_run(project, "install", path=uv_path)
    wanted = "/opt/python3.12/bin/python3"
    on_the_command_line = dry_run(project, "install", f"PYTHON={wanted}", path=uv_path)
    assert f"uv sync --python {wanted}" in on_the_command_line
    assert f"{wanted} scripts/init_env.py" in on_the_command_line
    in_the_environment = dry_run(project, "install", path=uv_path, PYTHON=wanted)
    assert f"uv sync --python {wanted}" in in_the_environment


def test_without_uv_install_checks_the_python_asked_for_then_makes_the_venv_with_it(
    project_of: Callable[..., Path],
) -> None:
    wanted = "/opt/python3.12/bin/python3"
    commands = dry_run(project_of(), "install", f"PYTHON={wanted}", path=NO_UV_PATH)
    assert commands[:3] == [
        f"{wanted} scripts/init_env.py",
        f"{wanted} scripts/check_python.py .venv",
        f"{wanted} -m venv .venv",
    ], commands


def test_an_interpreter_older_than_requires_python_is_refused_in_one_sentence(
    cookies: Any,
) -> None:
    result = cookies.bake()
    assert result.exit_code == 0, repr(result.exception)
    project = Path(result.project_path)
    pyproject = project / "pyproject.toml"
    text = pyproject.read_text(encoding="utf-8")
    assert 'requires-python = ">=3.12"' in text
    # Newer than any interpreter, so this runs the refusal on whichever runs the tests.
    pyproject.write_text(text.replace('">=3.12"', '">=3.99"'), encoding="utf-8")
    refused = run(
        ["make", "install", f"PYTHON={sys.executable}"],
        cwd=project,
        env=make_env(NO_UV_PATH),
    )
    assert refused.returncode != 0, describe(refused)
    assert (
        f"is Python {sys.version.split()[0]}; this project needs 3.99 or newer: "
        "run make install PYTHON=/path/to/python3.99"
    ) in refused.stderr, describe(refused)
    assert "Traceback" not in refused.stderr
    assert not (project / ".venv").exists()
    env = project / ".env"  # written first, from .env.example
    assert env.is_file()
    assert stat.S_IMODE(env.stat().st_mode) == 0o600
    assert "=change-me" not in env.read_text(encoding="utf-8")
