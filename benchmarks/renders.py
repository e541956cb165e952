"""The renders under test: rendered with the cookiecutter CLI, installed into fresh venvs.

Each render is installed from its own pyproject.toml (not editable, as it would be
deployed) with uv into a virtual environment of its own (UV_PYTHON_DOWNLOADS=never:
uv uses an interpreter of this machine or fails).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
TEMPLATE_PARTS = (
    "cookiecutter.json",
    "hooks",
    "local_extensions.py",
    "{{cookiecutter.project_slug}}",
)

# The all-on render: PostgreSQL, Redis, WebSocket, authentication and metrics. An
# option missing from cookiecutter.json (one not built yet) is left out at run time.
# use_opentelemetry stays out: what tracing costs is measured per request, traced and
# not (the render's README, "Tracing"), not mixed into this comparison.
ALL_ON: dict[str, str] = {
    "database": "postgresql",
    "use_redis": "yes",
    "use_websocket": "yes",
    "auth": "api_key",  # the bench sends API keys: the mode that takes them
    "use_prometheus": "yes",
}


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def template_options() -> dict[str, Any]:
    options: dict[str, Any] = json.loads((REPO / "cookiecutter.json").read_text(encoding="utf-8"))
    return options


def all_on_answers(options: Mapping[str, Any]) -> dict[str, str]:
    """ALL_ON restricted to the options the template has; a value it lacks is an error."""
    answers: dict[str, str] = {}
    for key, value in ALL_ON.items():
        if key not in options:
            continue
        choices = options[key]
        if isinstance(choices, list) and value not in choices:
            raise SystemExit(
                f"bench: cookiecutter.json's {key} offers {choices}, not {value!r}: "
                "update ALL_ON in benchmarks/renders.py"
            )
        answers[key] = value
    return answers


def find_tool(name: str) -> str:
    """A tool of the template's dev venv (beside this interpreter), else on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if not found:
        raise SystemExit(f"bench: cannot find {name}: run `make venv` first")
    return found


def python_version_of(python: str) -> str | None:
    """`major.minor` of an interpreter, or None if it does not run."""
    try:
        out = subprocess.run(  # noqa: S603 - an interpreter of this machine
            [python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def interpreter_candidates(version: str) -> list[str]:
    """Interpreters that may be `version`: this one, pyenv's, then PATH's."""
    found = [getattr(sys, "_base_executable", None) or sys.executable]
    pyenv_root = os.environ.get("PYENV_ROOT") or str(Path.home() / ".pyenv")
    pyenv = shutil.which("pyenv")
    if pyenv:
        with suppress(OSError, subprocess.SubprocessError):  # a broken pyenv: its default root
            pyenv_root = subprocess.run(  # noqa: S603 - the pyenv of this machine
                [pyenv, "root"], capture_output=True, text=True, check=True, timeout=30
            ).stdout.strip()
    versions = sorted(Path(pyenv_root, "versions").glob(f"{version}.*/bin/python3"), reverse=True)
    found += [str(path) for path in versions]
    on_path = shutil.which(f"python{version}")
    if on_path:
        found.append(on_path)
    return found


def choose_interpreter(options: Mapping[str, Any]) -> tuple[str, str | None]:
    """(interpreter, python_version answer or None for the template's default).

    The default python_version when an interpreter of it exists here; else the
    running interpreter's version, if the template offers it.
    """
    choices = [str(c) for c in options["python_version"]]
    for candidate in interpreter_candidates(choices[0]):
        if python_version_of(candidate) == choices[0]:
            return candidate, None
    running = "{}.{}".format(*sys.version_info[:2])
    if running in choices:
        return getattr(sys, "_base_executable", None) or sys.executable, running
    raise SystemExit(f"bench: no interpreter for python_version {choices[0]} or {running}")


@dataclass(frozen=True)
class Render:
    name: str  # "default" or "all-on"
    answers: dict[str, str]
    project: Path
    python: Path
    auth: bool = False  # served with API keys (the bench then sends one)

    @property
    def slug(self) -> str:
        return self.project.name

    @property
    def uses_postgres(self) -> bool:
        return self.answers.get("database") == "postgresql"

    @property
    def uses_redis(self) -> bool:
        return self.answers.get("use_redis") == "yes"


def template_hash() -> str:
    """A digest of the template's files: a kept render is reused only if it matches."""
    digest = hashlib.sha256()
    for part in TEMPLATE_PARTS:
        root = REPO / part
        paths = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for path in paths:
            if "__pycache__" in path.parts:
                continue
            digest.update(str(path.relative_to(REPO)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def run(command: list[str], **kwargs: Any) -> None:
    log("$ " + " ".join(command))
    subprocess.run(command, check=True, **kwargs)  # noqa: S603 - our own tools


def render_and_install(
    name: str, answers: Mapping[str, str], interpreter: str, work: Path, *, auth: bool = False
) -> Render:
    """Render `answers` into work/render-NAME and install it into work/venv-NAME.

    A render kept in `work` from an earlier run of the same template, answers and
    interpreter is reused.
    """
    out, venv = work / f"render-{name}", work / f"venv-{name}"
    stamp = work / f"{name}.stamp"
    key = json.dumps([template_hash(), dict(answers), interpreter])
    python = venv / "bin" / "python"
    if stamp.exists() and stamp.read_text(encoding="utf-8") == key and python.exists():
        (project,) = [path for path in out.iterdir() if path.is_dir()]
        log(f"{name}: reusing {project} ({venv})")
        return Render(name, dict(answers), project, python, auth)
    shutil.rmtree(out, ignore_errors=True)
    shutil.rmtree(venv, ignore_errors=True)
    arguments = [f"{k}={v}" for k, v in answers.items()]
    run([find_tool("cookiecutter"), "--no-input", "-o", str(out), str(REPO), *arguments],
        stdout=subprocess.DEVNULL)  # fmt: skip
    (project,) = [path for path in out.iterdir() if path.is_dir()]
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never"}
    uv = find_tool("uv")
    run([uv, "venv", "--quiet", "--python", interpreter, str(venv)], env=env)
    run([uv, "pip", "install", "--quiet", "--python", str(python), str(project)], env=env)
    stamp.write_text(key, encoding="utf-8")
    return Render(name, dict(answers), project, python, auth)


def existing(name: str, answers: Mapping[str, str], project: Path, *, auth: bool = False) -> Render:
    """A render installed elsewhere (its venv in PROJECT/.venv), e.g. by `make demo`."""
    python = project / ".venv" / "bin" / "python"
    if not python.exists():
        raise SystemExit(f"bench: {python} does not exist: install the render there first")
    return Render(name, dict(answers), project.resolve(), python, auth)


def install_tool(render: Render, package: str) -> Path:
    """Install a tool (py-spy) into a render's venv; its executable."""
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never"}
    run(
        [find_tool("uv"), "pip", "install", "--quiet", "--python", str(render.python), package],
        env=env,
    )
    return render.python.parent / package


def versions(render: Render, packages: tuple[str, ...]) -> dict[str, str]:
    """Python and package versions inside a render's venv."""
    code = (
        "import importlib.metadata as m, json, platform, sys\n"
        "out = {'python': platform.python_version()}\n"
        "for p in sys.argv[1:]:\n"
        "    try: out[p] = m.version(p)\n"
        "    except m.PackageNotFoundError: pass\n"
        "print(json.dumps(out))"
    )
    done = subprocess.run(  # noqa: S603 - the render's interpreter
        [str(render.python), "-c", code, *packages], capture_output=True, text=True, check=True
    )
    found: dict[str, str] = json.loads(done.stdout)
    return found


def time_cli_renders(runs: int) -> list[float]:
    """Seconds each `cookiecutter --no-input` CLI render of the default options took."""
    cookiecutter = find_tool("cookiecutter")
    took = []
    with tempfile.TemporaryDirectory(prefix="bench-render-") as folder:
        for index in range(runs):
            began = time.perf_counter()
            subprocess.run(  # noqa: S603 - the dev venv's cookiecutter
                [cookiecutter, "--no-input", "-o", str(Path(folder) / str(index)), str(REPO)],
                check=True,
                stdout=subprocess.DEVNULL,
            )
            took.append(time.perf_counter() - began)
    return took
