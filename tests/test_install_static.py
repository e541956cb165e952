"""The default render installs from its own pyproject into a fresh venv; its linters pass.

The fresh venv is built once per run (`default_install`, tests/installs.py) and shared
with tests/test_install_runtime.py, which may run on the other xdist worker meanwhile.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.installs import Installed, mypy_with_shared_cache
from tests.support import RecordProperty, describe, timed_with_children

pytestmark = pytest.mark.install

SLUG = "ai_service"


def test_installs_from_its_own_pyproject(
    default_install: Installed, record_property: RecordProperty
) -> None:
    for name, seconds in default_install.timings.items():
        record_property(f"timing: install {default_install.name}: {name}", f"{seconds:.2f} s")
    # The fresh venv is its own (not ours) and holds the service with its dependencies.
    assert default_install.bin != Path(sys.executable).parent
    probe = default_install.run(
        default_install.bin / "python",
        "-c",
        f"import sys, {SLUG}.main as m; print(sys.prefix); print(m.__file__)",
    )
    assert probe.returncode == 0, describe(probe)
    prefix, module = probe.stdout.split()
    assert Path(prefix) == default_install.project / ".venv"
    assert Path(module).is_relative_to(default_install.project / "src")  # editable install


@pytest.mark.parametrize(
    "command",
    [["ruff", "check", "."], ["ruff", "format", "--check", "."], ["mypy"]],
    ids=["ruff-check", "ruff-format", "mypy-strict"],
)
def test_own_linters_pass(
    install: Installed, shared_tmp: Path, record_property: RecordProperty, command: list[str]
) -> None:
    # Each tool from the fresh venv, with the render's own configuration (its pyproject).
    if command == ["mypy"]:
        result, figure = timed_with_children(lambda: mypy_with_shared_cache(install, shared_tmp))
    else:
        result, figure = timed_with_children(
            lambda: install.run(install.bin / command[0], *command[1:])
        )
    record_property(f"timing: install {install.name}: {' '.join(command)}", figure)
    assert result.returncode == 0, describe(result)
