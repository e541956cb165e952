"""The set-up scripts `make install` runs before the virtual environment exists."""

from __future__ import annotations

import importlib.util
import re
import stat
import subprocess
import sys
import venv
from pathlib import Path
from types import ModuleType

import pytest

from {{ cookiecutter.project_slug }}.settings import Settings

PROJECT = Path(__file__).resolve().parents[1]
EXAMPLE = PROJECT / ".env.example"


def script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, PROJECT / "scripts" / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


init_env = script("init_env")
check_python = script("check_python")


def write_env(folder: Path) -> list[str]:
    assert init_env.main(["--env", str(folder / ".env"), "--example", str(EXAMPLE)]) == 0
    return (folder / ".env").read_text(encoding="utf-8").splitlines()


def placeholders(example: list[str]) -> list[int]:
    """Indexes of the `NAME=change-me` lines."""
    return [
        index
        for index, line in enumerate(example)
        if line.partition("=")[2] == "change-me" and not line.startswith("#")
    ]


def test_env_is_the_example_with_a_fresh_secret_for_each_placeholder(tmp_path: Path) -> None:
    example = EXAMPLE.read_text(encoding="utf-8").splitlines()
    env = write_env(tmp_path)
    assert stat.S_IMODE((tmp_path / ".env").stat().st_mode) == 0o600
    assert len(env) == len(example)
    secret_lines = placeholders(example)
    for index, (env_line, example_line) in enumerate(zip(env, example, strict=True)):
        if index not in secret_lines:
            assert env_line == example_line
            continue
        name = example_line.partition("=")[0]
        secret = env_line.removeprefix(f"{name}=")
        assert re.fullmatch(r"[A-Za-z0-9_-]{32,}", secret.removeprefix("sk-")), env_line
        assert secret.startswith("sk-") == (name == "API_KEYS"), env_line
    assert len({env[index] for index in secret_lines}) == len(secret_lines)

    (tmp_path / "again").mkdir()
    again = write_env(tmp_path / "again")
    assert all(again[index] != env[index] for index in secret_lines), "fresh on every run"


def test_the_written_env_is_accepted_by_the_settings(tmp_path: Path) -> None:
    write_env(tmp_path)
    settings = Settings(_env_file=tmp_path / ".env", environment="development")
    assert settings.environment == "development"


def test_an_existing_env_is_never_overwritten(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = tmp_path / ".env"
    env.write_text("LOG_LEVEL=DEBUG\n", encoding="utf-8")
    assert init_env.main(["--env", str(env), "--example", str(EXAMPLE)]) == 0
    assert env.read_text(encoding="utf-8") == "LOG_LEVEL=DEBUG\n"
    assert "kept as it is" in capsys.readouterr().out


def test_an_interpreter_older_than_requires_python_is_refused_in_one_sentence() -> None:
    required = check_python.required_version(PROJECT / "pyproject.toml")
    wanted = ".".join(map(str, required))
    assert required >= (3, 11)
    message = check_python.refusal((3, 8, 1), required)
    assert f"is Python 3.8.1; this project needs {wanted} or newer" in message, message
    assert f"run make install PYTHON=/path/to/python{wanted}" in message, message
    assert "\n" not in message
    assert check_python.refusal(tuple(sys.version_info[:3]), required) is None


def test_a_venv_of_another_interpreter_is_replaced_and_one_of_this_kept(tmp_path: Path) -> None:
    folder = tmp_path / ".venv"
    venv.create(folder, with_pip=False, symlinks=True)
    identity = check_python.venv_identity(folder)
    assert identity == f"{sys.base_prefix} {sys.version}"
    assert check_python.main([str(folder)]) == 0
    assert folder.exists(), "a venv of the same interpreter is kept"

    (folder / "pyvenv.cfg").unlink()  # its python now runs as another installation would
    (folder / "bin" / "python").unlink()
    (folder / "bin" / "python").write_text("#!/bin/sh\necho /elsewhere 3.0\n", encoding="utf-8")
    (folder / "bin" / "python").chmod(0o755)
    assert check_python.venv_identity(folder) == "/elsewhere 3.0"
    result = subprocess.run(
        [sys.executable, PROJECT / "scripts" / "check_python.py", folder],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result
    assert "Replacing" in result.stdout
    assert not folder.exists()
