"""Finish a freshly rendered project (standard library only).

Offline and idempotent, because cruft re-runs it on every `cruft update`:
it never touches the network, never runs git or an installer, and leaves
an existing `.env` alone.
"""

from __future__ import annotations

import secrets
import shutil
import sys
from pathlib import Path

ANSWERS = {
    "project_slug": {{ cookiecutter.project_slug | tojson }},
    "ci": {{ cookiecutter.ci | tojson }},
}

# The one table of optional files: "option=value" -> paths (relative to the
# project, `{slug}` is the package name) that exist only for that value.
# The template tests render every value and check each path here exists.
MANIFEST: dict[str, list[str]] = {
    "ci=github": [".github"],
    "ci=gitlab": [".gitlab-ci.yml"],
}

# Variables in `.env.example` that get a fresh random value in `.env`.
SECRETS = ("API_KEYS",)


def answer_key(option: str, value: object) -> str:
    if isinstance(value, bool):
        value = "yes" if value else "no"
    return f"{option}={value}"


def prune(project: Path, answers: dict[str, object]) -> list[str]:
    chosen = {answer_key(option, value) for option, value in answers.items()}
    removed = []
    for key, paths in MANIFEST.items():
        if key in chosen:
            continue
        for relative in paths:
            path = project / relative.format(slug=answers["project_slug"])
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
            else:
                continue
            removed.append(relative)
    return removed


def write_env(project: Path) -> bool:
    env, example = project / ".env", project / ".env.example"
    if env.exists() or not example.exists():
        return False
    lines = []
    for line in example.read_text(encoding="utf-8").splitlines():
        name = line.split("=", 1)[0]
        if name in SECRETS:
            line = f"{name}=sk-{secrets.token_urlsafe(32)}"
        lines.append(line)
    env.write_text("\n".join(lines) + "\n", encoding="utf-8")
    env.chmod(0o600)
    return True


def main() -> int:
    project = Path.cwd()
    prune(project, ANSWERS)
    created = write_env(project)
    slug = ANSWERS["project_slug"]
    print(f"\nCreated {project}")
    if created:
        print("  .env holds a fresh random API key; keep it out of version control.")
    print("\nNext:")
    print(f"  cd {slug} && make install   # virtual environment + dependencies")
    print("  make run                      # serve on http://127.0.0.1:8000/docs")
    print("  make test                     # lint, type check and tests")
    return 0


if __name__ == "__main__":
    sys.exit(main())
