"""Updates of generated projects: `cruft create` from a git checkout of the template, a
template change committed, `cruft update` applies it cleanly, keeping local work.

The project has a local `.env` (written as `make install` writes it) during the update:
`.env` is not part of any render, so the update neither patches nor rejects it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support import REPO, child_env, describe, run, tool

SLUG = "ai_service"
# Not the template's own files: the dev venv, renders, caches.
IGNORED = (".git", ".venv", "build", "__pycache__", ".pytest_cache", ".ruff_cache", ".mypy_cache")


@dataclass
class Setup:
    template: Path
    project: Path
    env: dict[str, str]

    def git(self, folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
        result = run(["git", *args], cwd=folder, env=self.env)
        assert result.returncode == 0, describe(result)
        return result

    def commit(self, folder: Path, message: str) -> str:
        self.git(folder, "add", "-A")
        self.git(folder, "commit", "-q", "-m", message)
        return self.git(folder, "rev-parse", "HEAD").stdout.strip()

    def update(self) -> subprocess.CompletedProcess[str]:
        result = run([tool("cruft"), "update", "--skip-apply-ask"], cwd=self.project, env=self.env)
        assert result.returncode == 0, describe(result)
        return result


def template_files() -> list[Path]:
    """The template's files as a checkout has them (tracked, or new and not ignored)."""
    listed = run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO)
    if listed.returncode != 0:  # not a git checkout: everything but the ignored folders
        return [
            path.relative_to(REPO)
            for path in REPO.rglob("*")
            if path.is_file() and not set(path.relative_to(REPO).parts) & set(IGNORED)
        ]
    return [Path(name) for name in listed.stdout.split("\0") if name and (REPO / name).is_file()]


@pytest.fixture
def setup(tmp_path: Path) -> Setup:
    """A git repository holding the template, and a project cruft created from it."""
    home = tmp_path / "home"  # no user git or cookiecutter configuration leaks in
    home.mkdir()
    identity = {"GIT_AUTHOR_NAME": "Template Tests", "GIT_AUTHOR_EMAIL": "tests@example.com"}
    env = child_env(
        HOME=str(home),
        GIT_CONFIG_NOSYSTEM="1",
        GIT_COMMITTER_NAME=identity["GIT_AUTHOR_NAME"],
        GIT_COMMITTER_EMAIL=identity["GIT_AUTHOR_EMAIL"],
        **identity,
    )
    template = tmp_path / "template"
    for relative in template_files():
        (template / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / relative, template / relative)
    setup = Setup(template=template, project=tmp_path / "projects" / SLUG, env=env)
    setup.git(template, "init", "-q", "-b", "main")
    setup.commit(template, "The template")

    created = run(
        [tool("cruft"), "create", "--no-input", "--output-dir", tmp_path / "projects", template],
        env=env,
        timeout=120,
    )
    assert created.returncode == 0, describe(created)
    assert not (setup.project / ".env").exists(), "a render holds no .env"
    made = run(["make", ".env", f"PYTHON={sys.executable}"], cwd=setup.project, env=env)
    assert made.returncode == 0, describe(made)  # the project's own way, as make install
    setup.git(setup.project, "init", "-q", "-b", "main")
    setup.commit(setup.project, "Generated")
    return setup


def change_template_readme(setup: Setup, line: str) -> str:
    readme = setup.template / "{{cookiecutter.project_slug}}" / "README.md"
    readme.write_text(readme.read_text(encoding="utf-8") + f"\n{line}\n", encoding="utf-8")
    return setup.commit(setup.template, "A line in the rendered README")


def rejected(project: Path) -> list[str]:
    return sorted(str(path.relative_to(project)) for path in project.rglob("*.rej"))


def test_update_applies_a_template_change_cleanly(setup: Setup) -> None:
    env_before = (setup.project / ".env").read_bytes()
    commit = change_template_readme(setup, "A line the template added later.")

    result = setup.update()
    assert rejected(setup.project) == [], describe(result)
    readme = (setup.project / "README.md").read_text(encoding="utf-8")
    assert readme.endswith("\nA line the template added later.\n")
    assert (setup.project / ".env").read_bytes() == env_before
    assert json.loads((setup.project / ".cruft.json").read_text(encoding="utf-8"))["commit"] == (
        commit
    )
    changed = setup.git(setup.project, "status", "--porcelain").stdout.splitlines()
    assert sorted(line[3:] for line in changed) == [".cruft.json", "README.md"], changed


def test_a_local_edit_survives_the_update(setup: Setup) -> None:
    readme = setup.project / "README.md"
    title, rest = readme.read_text(encoding="utf-8").split("\n", 1)
    readme.write_text(f"{title} (our fork)\n{rest}", encoding="utf-8")
    main = setup.project / "src" / SLUG / "main.py"
    main.write_text(main.read_text(encoding="utf-8") + "# local: mounted by our gateway\n")
    setup.commit(setup.project, "Local edits")
    change_template_readme(setup, "Another line from the template.")

    result = setup.update()
    assert rejected(setup.project) == [], describe(result)
    text = readme.read_text(encoding="utf-8")
    assert text.startswith(f"{title} (our fork)\n")
    assert text.endswith("\nAnother line from the template.\n")
    assert main.read_text(encoding="utf-8").endswith("# local: mounted by our gateway\n")
