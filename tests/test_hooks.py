"""The hooks: pre-gen rejects bad answers one sentence each; post-gen finishes the render."""

from __future__ import annotations

import ast
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
from cookiecutter.exceptions import FailedHookException

from tests.support import (
    IMPOSSIBLE,
    REPO,
    child_env,
    combo_id,
    default_context,
    describe,
    project_files,
    rendered_hook,
    run,
    snapshot,
    tool,
)

# (answers, the phrase its message must contain). The message names the offending value.
BAD_ANSWERS = [
    ({"project_slug": "My-App"}, "is not a lower-case Python identifier"),
    ({"project_slug": "1app"}, "is not a lower-case Python identifier"),
    ({"project_slug": "class"}, "is a Python keyword"),
    ({"project_slug": "test"}, "would shadow the module"),
    ({"project_slug": "json"}, "would shadow the module"),
    ({"project_slug": "typing"}, "would shadow the module"),
    ({"project_slug": "fastapi"}, "would shadow the module"),
    ({"project_slug": "pydantic"}, "would shadow the module"),
    ({"project_slug": "strawberry"}, "would shadow the module"),
    ({"author_email": "not-an-email"}, "is not an e-mail address"),
    ({"version": "1.0.0.beta-what"}, "is not a PEP 440 version"),
]
BAD_IDS = [
    "-".join(f"{key}={value}" for key, value in answers.items()) for answers, _ in BAD_ANSWERS
]

# Valid but unusual answers: they must render, lint and compile.
UNUSUAL_ANSWERS = {
    "quotes-unicode": {
        "project_name": 'Ünïcode "Quoted" O\'Brien',
        "project_slug": "unicode_quoted",
    },
    "backslash-metadata": {
        "project_name": "Back\\slash Service",
        "project_slug": "backslash_service",
        "description": 'Says "hi" \\ and C:\\temp\\new, with unicode: naïve — ok.',
        "author_name": 'Seán "Bob" O\'Brien \\',
        "author_email": "sean.obrien+svc@example.co.uk",
        "version": "2.0.0rc1",
    },
}


def error_lines(stderr: str) -> list[str]:
    """The hook's own messages (cookiecutter adds 'ERROR: Stopping generation ...')."""
    return [
        line
        for line in stderr.splitlines()
        if line.startswith("ERROR: ") and "Stopping generation" not in line
    ]


def assert_one_sentence(message: str, answers: dict[str, str], phrase: str) -> None:
    ((option, value),) = answers.items()
    assert message.startswith(f"ERROR: {option} {value!r} "), message
    assert phrase in message, message
    assert "type" in message, f"the message should say what to type instead: {message}"
    assert message.endswith("."), message


@pytest.mark.parametrize(("answers", "phrase"), BAD_ANSWERS, ids=BAD_IDS)
def test_bad_answer_fails_in_process(
    cookies: Any,
    capfd: pytest.CaptureFixture[str],
    tmp_path: Path,
    answers: dict[str, str],
    phrase: str,
) -> None:
    result = cookies.bake(extra_context=answers)
    assert result.exit_code == -1
    assert isinstance(result.exception, FailedHookException)
    messages = error_lines(capfd.readouterr().err)
    assert len(messages) == 1, messages
    assert_one_sentence(messages[0], answers, phrase)
    # pytest-cookies bakes into tmp_path/cookies/bakeNN: nothing may be left there.
    assert [path for path in (tmp_path / "cookies").rglob("*") if not path.is_dir()] == []
    assert [path.name for path in (tmp_path / "cookies").glob("bake*/*")] == []


@pytest.mark.parametrize(("answers", "phrase"), BAD_ANSWERS, ids=BAD_IDS)
def test_bad_answer_fails_on_the_command_line(
    tmp_path: Path, answers: dict[str, str], phrase: str
) -> None:
    output = tmp_path / "out"
    arguments = [f"{key}={value}" for key, value in answers.items()]
    result = run([tool("cookiecutter"), "--no-input", "-o", output, REPO, *arguments], timeout=60)
    assert result.returncode == 1, describe(result)
    messages = error_lines(result.stderr)
    assert len(messages) == 1, describe(result)
    assert_one_sentence(messages[0], answers, phrase)
    first = result.stderr.lstrip().splitlines()[0]
    assert first == messages[0], "the hook's sentence must come before cookiecutter's lines"
    assert not output.exists() or not any(output.iterdir()), list(output.iterdir())


def test_several_bad_answers_each_get_their_message(tmp_path: Path) -> None:
    output = tmp_path / "out"
    result = run(
        [tool("cookiecutter"), "--no-input", "-o", output, REPO,
         "project_slug=class", "author_email=nobody", "version=one"],
        timeout=60,
    )  # fmt: skip
    assert result.returncode == 1, describe(result)
    messages = error_lines(result.stderr)
    assert len(messages) == 3, messages
    assert [m.split()[1] for m in messages] == ["project_slug", "author_email", "version"]
    assert not output.exists() or not any(output.iterdir())


# Each IMPOSSIBLE combination (tests/support.py) and the phrase its one sentence contains.
IMPOSSIBLE_PHRASES = {("jwt", "none"): "keeps its users in the database"}


@pytest.mark.parametrize("answers", IMPOSSIBLE, ids=[combo_id(a) for a in IMPOSSIBLE])
def test_an_impossible_combination_is_refused_in_one_sentence(
    cookies: Any, capfd: pytest.CaptureFixture[str], tmp_path: Path, answers: dict[str, str]
) -> None:
    phrase = IMPOSSIBLE_PHRASES[(answers["auth"], answers["database"])]
    result = cookies.bake(extra_context=answers)
    assert result.exit_code == -1
    assert isinstance(result.exception, FailedHookException)
    (message,) = error_lines(capfd.readouterr().err)
    assert phrase in message, message
    assert "type database=sqlite or database=postgresql" in message, message
    assert message.endswith("."), message
    assert [path.name for path in (tmp_path / "cookies").glob("bake*/*")] == []

    output = tmp_path / "out"
    arguments = [f"{key}={value}" for key, value in answers.items()]
    cli = run([tool("cookiecutter"), "--no-input", "-o", output, REPO, *arguments], timeout=60)
    assert cli.returncode == 1, describe(cli)
    assert cli.stderr.lstrip().splitlines()[0] == message
    assert not output.exists() or not any(output.iterdir())


@pytest.mark.parametrize("answers", UNUSUAL_ANSWERS.values(), ids=UNUSUAL_ANSWERS.keys())
def test_unusual_valid_answers_render_lint_and_compile(
    cookies: Any, answers: dict[str, str]
) -> None:
    result = cookies.bake(extra_context=answers)
    assert result.exception is None, repr(result.exception)
    assert result.exit_code == 0
    project = Path(result.project_path)
    slug = answers["project_slug"]
    assert project.name == slug
    assert (project / "src" / slug / "__init__.py").is_file()

    python_files = [path for path in project_files(project) if path.suffix == ".py"]
    assert len(python_files) > 5
    for path in python_files:
        compile(path.read_text(encoding="utf-8"), str(path), "exec")
    for command in (["check"], ["format", "--check"]):
        lint = run([tool("ruff"), *command, "--no-cache", "."], cwd=project)
        assert lint.returncode == 0, describe(lint)

    # The answers reach the metadata unchanged (quotes and backslashes escaped right).
    pyproject = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))
    assert pyproject["project"]["name"] == slug.replace("_", "-")
    if "description" in answers:
        assert pyproject["project"]["description"] == answers["description"]
    if "author_name" in answers:
        assert pyproject["project"]["authors"][0]["name"] == answers["author_name"]
        assert pyproject["project"]["authors"][0]["email"] == answers["author_email"]
    package = ast.parse((project / "src" / slug / "__init__.py").read_text(encoding="utf-8"))
    constants = {
        node.targets[0].id: node.value.value
        for node in package.body
        if isinstance(node, ast.Assign)
        and isinstance(node.targets[0], ast.Name)
        and isinstance(node.value, ast.Constant)
    }
    assert constants.get("PROJECT_NAME") == answers["project_name"]
    assert answers["project_name"] in (project / "README.md").read_text(encoding="utf-8")


def test_slug_is_derived_from_the_project_name(cookies: Any) -> None:
    result = cookies.bake(extra_context={"project_name": "My Cool-Service"})
    assert result.exit_code == 0, repr(result.exception)
    assert Path(result.project_path).name == "my_cool_service"
    assert (Path(result.project_path) / "src" / "my_cool_service" / "main.py").is_file()


# --- post-gen -----------------------------------------------------------------------


def test_rerunning_cookiecutter_over_a_render_keeps_env(tmp_path: Path) -> None:
    cookiecutter = tool("cookiecutter")
    command: list[str | Path] = [cookiecutter, "--no-input", "-o", tmp_path, REPO, "ci=none"]
    first = run(command, timeout=60)
    assert first.returncode == 0, describe(first)
    project = tmp_path / "ai_service"
    assert not (project / ".env").exists(), "post-gen writes no .env: make install does"
    made = run(["make", ".env", f"PYTHON={sys.executable}"], cwd=project)  # as make install
    assert made.returncode == 0, describe(made)
    before = snapshot(project)
    assert ".env" in before
    assert not (project / ".github").exists()

    again = run([*command[:2], "-f", *command[2:]], timeout=60)
    assert again.returncode == 0, describe(again)
    assert snapshot(project) == before  # same .env (key and mode), pruned paths pruned again


def next_steps(stdout: str) -> list[str]:
    """The commands the hook's "Next:" lines give, without their comments."""
    lines = stdout.split("\nNext:\n", 1)[1].splitlines()
    return [line.split("#")[0].strip() for line in lines if line.strip()]


@pytest.mark.parametrize("output", ["out/services", "elsewhere"], ids=["relative", "absolute"])
def test_next_steps_cd_into_the_project_from_the_folder_cookiecutter_ran_in(
    tmp_path: Path, output: str
) -> None:
    shell = tmp_path / "shell"  # the user's shell is here; cookiecutter writes to `output`
    shell.mkdir()
    relative = not output.startswith("/") and output != "elsewhere"
    target = output if relative else str(tmp_path / output)
    result = run(
        [tool("cookiecutter"), "--no-input", "-o", target, REPO, "ci=none"],
        cwd=shell,
        env=child_env(PWD=str(shell)),
        timeout=60,
    )
    assert result.returncode == 0, describe(result)
    command = next_steps(result.stdout)[0]
    assert command == f"cd {target}/ai_service"
    reached = shell / command.removeprefix("cd ")
    assert (reached / "pyproject.toml").is_file(), f"{command} from {shell} is not the project"


@pytest.mark.parametrize(
    ("answers", "expected"),
    [
        ({}, ["make install", "make run", "make test"]),
        (
            {"database": "postgresql", "use_redis": "yes", "auth": "jwt"},
            [
                "make install",
                "make migrate",
                ".venv/bin/python -m ai_service create-user NAME",
                "make run",
                "make worker",
                "make test",
            ],
        ),
    ],
    ids=["default", "postgresql-redis-jwt"],
)
def test_next_steps_name_the_commands_this_render_needs(
    cookies: Any, tmp_path: Path, answers: dict[str, str], expected: list[str]
) -> None:
    result = cookies.bake(extra_context=answers)
    assert result.exit_code == 0, repr(result.exception)
    project = Path(result.project_path)
    hook = tmp_path / "post_gen_project.py"
    hook.write_text(rendered_hook("post_gen_project", result.context), encoding="utf-8")
    rerun = run([sys.executable, hook], cwd=project, env=child_env(PWD=str(project.parent)))
    assert rerun.returncode == 0, describe(rerun)
    assert next_steps(rerun.stdout) == [f"cd {project.name}", *expected]
    makefile = (project / "Makefile").read_text(encoding="utf-8")
    for command in expected:
        if command.startswith("make "):
            assert f"\n{command.removeprefix('make ')}:" in makefile, command


def test_post_gen_hook_is_idempotent_when_run_again(cookies: Any, tmp_path: Path) -> None:
    """cruft re-runs post-gen over an existing project: a second run changes nothing."""
    answers = {"ci": "gitlab"}
    result = cookies.bake(extra_context=answers)
    assert result.exit_code == 0, repr(result.exception)
    project = Path(result.project_path)
    hook = tmp_path / "post_gen_project.py"
    hook.write_text(rendered_hook("post_gen_project", result.context), encoding="utf-8")
    before = snapshot(project)
    for _ in range(2):
        rerun = run([sys.executable, hook], cwd=project, timeout=60)
        assert rerun.returncode == 0, describe(rerun)
        assert snapshot(project) == before
    # It says what to do next: install, run, test.
    for command in ("make install", "make run", "make test"):
        assert command in rerun.stdout


@pytest.mark.parametrize("name", ["pre_gen_project", "post_gen_project"])
def test_hooks_use_only_the_standard_library(name: str) -> None:
    tree = ast.parse(rendered_hook(name, default_context()))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            imported.add(node.module.split(".")[0])
    assert imported, "no imports found: is the hook empty?"
    assert imported <= set(sys.stdlib_module_names) | {"__future__"}, imported
    if name == "post_gen_project":
        # Offline: no network, no git, no installers (cruft re-runs it on every update).
        assert not imported & {
            "subprocess",
            "socket",
            "urllib",
            "http",
            "ftplib",
            "venv",
            "ensurepip",
        }


@pytest.mark.parametrize("name", ["pre_gen_project", "post_gen_project"])
def test_rendered_hooks_pass_ruff(name: str) -> None:
    """The hooks are Jinja templates; lint and format-check them as cookiecutter runs them."""
    source = rendered_hook(name, default_context())
    for command in (["check"], ["format", "--check"]):
        result = run(
            [tool("ruff"), *command, "--no-cache", "--stdin-filename", f"hooks/{name}.py", "-"],
            cwd=REPO,  # the repository's ruff settings
            stdin=source,
        )
        assert result.returncode == 0, describe(result)
