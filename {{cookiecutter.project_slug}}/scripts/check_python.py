"""Check the interpreter `make install` builds `.venv` with (run by that interpreter).

One sentence and exit status 1 when it is older than `requires-python`; a `.venv` made by
another interpreter is removed, so the new one is not built over it. Standard library
only, and old syntax only: it must run on the interpreter it refuses.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
IDENTITY = "import sys; print(sys.base_prefix, sys.version)"


def required_version(pyproject: Path) -> tuple[int, ...]:
    """The lower bound of `requires-python` in pyproject.toml."""
    text = pyproject.read_text(encoding="utf-8")
    found = re.search(r'^requires-python\s*=\s*">=\s*([0-9.]+)', text, re.MULTILINE)
    if found is None:
        return (0,)
    return tuple(int(part) for part in found.group(1).split("."))


def venv_identity(venv: Path) -> str | None:
    """`sys.base_prefix` and `sys.version` of the venv's interpreter; None if it has none."""
    python = venv / "bin" / "python"
    if not python.exists():
        return None
    result = subprocess.run(  # noqa: S603 - the venv's own interpreter
        [str(python), "-c", IDENTITY], capture_output=True, text=True, check=False
    )
    return result.stdout.strip() if result.returncode == 0 else "broken"


def refusal(version: tuple[int, ...], required: tuple[int, ...]) -> str | None:
    """The sentence that refuses an interpreter of `version`; None when it will do."""
    if version[: len(required)] >= required:
        return None
    wanted = ".".join(str(part) for part in required)
    return (
        f"{sys.executable} is Python {'.'.join(str(part) for part in version)}; this project "
        f"needs {wanted} or newer: run make install PYTHON=/path/to/python{wanted}"
    )


def main(argv: list[str]) -> int:
    venv = Path(argv[0]) if argv else PROJECT / ".venv"
    message = refusal(tuple(sys.version_info[:3]), required_version(PROJECT / "pyproject.toml"))
    if message is not None:
        print(message, file=sys.stderr)
        return 1
    current = venv_identity(venv)
    if current is not None and current != f"{sys.base_prefix} {sys.version}":
        print(f"Replacing {venv}, made by another interpreter, with one of {sys.executable}")
        shutil.rmtree(venv)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
