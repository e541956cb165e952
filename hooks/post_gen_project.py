"""Finish a freshly rendered project (standard library only).

Offline and idempotent, because cruft re-runs it on every `cruft update`:
it never touches the network, never runs git or an installer, and writes
nothing random (`make install` writes `.env`: cruft's renders must not differ).
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import sys
from pathlib import Path

ANSWERS = {
    "project_slug": {{ cookiecutter.project_slug | tojson }},
    "database": {{ cookiecutter.database | tojson }},
    "use_redis": {{ cookiecutter.use_redis }},
    "use_websocket": {{ cookiecutter.use_websocket }},
    "auth": {{ cookiecutter.auth | tojson }},
    "use_prometheus": {{ cookiecutter.use_prometheus }},
    "use_opentelemetry": {{ cookiecutter.use_opentelemetry }},
    "use_kubernetes": {{ cookiecutter.use_kubernetes }},
    "use_graphql": {{ cookiecutter.use_graphql }},
    "ci": {{ cookiecutter.ci | tojson }},
}

# The one table of optional files: "option=value" (or "option=v1|v2", and clauses
# joined by "&" when several options must agree) -> paths, relative to the project
# (`{slug}` is the package name), that exist only for those answers. The template
# tests render every value and check each path here exists, and is pruned otherwise.
MANIFEST: dict[str, list[str]] = {
    "database=sqlite|postgresql": [
        "alembic.ini",
        "migrations",
        "src/{slug}/api/history.py",
        "src/{slug}/config/database.py",
        "src/{slug}/db",
        "src/{slug}/jobs/sql_store.py",
        "src/{slug}/responses/sql_store.py",
        "src/{slug}/schemas/history.py",
        "tests/commands.py",
        "tests/test_db.py",
    ],
    "database=sqlite": [
        "k8s/base/pvc.yaml",
        "tests/db_sqlite.py",
    ],
    "database=postgresql|none": [
        "k8s/base/hpa.yaml",
        "k8s/base/pdb.yaml",
        "k8s/overlays/production/hpa.yaml",
    ],
    "database=postgresql": [
        "k8s/base/migrate-job.yaml",
        "tests/db_postgresql.py",
        "tests/test_migrate_postgresql.py",
    ],
    "use_redis=yes": [
        "src/{slug}/config/redis.py",
        "src/{slug}/core/cache_redis.py",
        "src/{slug}/core/ratelimit_redis.py",
        "src/{slug}/core/redis.py",
        "src/{slug}/jobs/redis_queue.py",
        "src/{slug}/jobs/worker.py",
        "tests/test_redis.py",
    ],
    "use_redis=no": [
        "src/{slug}/jobs/memory.py",
    ],
    "use_redis=yes&database=postgresql|none": [
        "k8s/base/worker.yaml",  # with SQLite the worker shares the API pod (one volume)
    ],
    "database=none&use_redis=yes": [
        "src/{slug}/jobs/redis_store.py",
        "src/{slug}/responses/redis_store.py",
    ],
    "database=none&use_redis=no": [
        "src/{slug}/jobs/memory_store.py",
    ],
    "use_websocket=yes": [
        "loadtest/ws_chat.py",
        "src/{slug}/api/ws.py",
        "src/{slug}/config/websocket.py",
        "src/{slug}/schemas/ws.py",
        "tests/test_ws.py",
    ],
    "auth=api_key": [
        "src/{slug}/auth/api_keys.py",
        "src/{slug}/config/api_keys.py",
        "tests/auth_api_keys.py",
        "tests/test_auth_api_keys.py",
    ],
    "auth=api_key&database=sqlite|postgresql": [
        "src/{slug}/auth/key_table.py",
        "src/{slug}/db/api_keys.py",
        "tests/test_api_key_table.py",
    ],
    "auth=api_key|jwt": [
        "src/{slug}/auth/credentials.py",
    ],
    "auth=api_key|jwt&database=sqlite|postgresql": [
        "src/{slug}/auth/commands.py",
    ],
    "auth=jwt": [
        "src/{slug}/api/auth.py",
        "src/{slug}/auth/jwt.py",
        "src/{slug}/auth/passwords.py",
        "src/{slug}/config/jwt.py",
        "src/{slug}/db/users.py",
        "src/{slug}/schemas/auth.py",
        "tests/auth_jwt.py",
        "tests/test_auth_jwt.py",
    ],
    "auth=none": [
        "src/{slug}/auth/none.py",
        "tests/auth_none.py",
        "tests/test_auth_none.py",
    ],
    "use_opentelemetry=yes": [
        "src/{slug}/core/tracing.py",
        "tests/test_tracing.py",
    ],
    "use_graphql=yes": [
        "src/{slug}/api/graphql.py",
        "src/{slug}/config/graphql.py",
        "src/{slug}/graphql",
        "tests/test_graphql.py",
    ],
    "use_graphql=yes&database=sqlite|postgresql": [
        "src/{slug}/graphql/history.py",
    ],
    "use_prometheus=yes": [
        "observability",
        "src/{slug}/core/http_metrics.py",
        "src/{slug}/core/metrics.py",
        "src/{slug}/core/metrics_files.py",
        "tests/test_metrics.py",
    ],
    "use_prometheus=yes&use_redis=yes": [
        "src/{slug}/config/metrics.py",
    ],
    "use_prometheus=yes&use_kubernetes=yes&database=postgresql|none": [
        "k8s/components",
    ],
    "use_kubernetes=yes": [
        "k8s",
        "tests/test_kubernetes.py",
    ],
    "ci=github": [".github"],
    "ci=gitlab": [".gitlab-ci.yml"],
}


def answer_key(option: str, value: object) -> str:
    if isinstance(value, bool):
        value = "yes" if value else "no"
    return f"{option}={value}"


def wanted(key: str, answers: dict[str, object]) -> bool:
    """Whether every clause of a MANIFEST key ("option=v1|v2&other=v") holds."""
    for clause in key.split("&"):
        option, _, values = clause.partition("=")
        if answer_key(option, answers[option]) not in {f"{option}={v}" for v in values.split("|")}:
            return False
    return True


def prune(project: Path, answers: dict[str, object]) -> list[str]:
    removed = []
    for key, paths in MANIFEST.items():
        if wanted(key, answers):
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


def reachable(project: Path) -> str:
    """The project folder as the user's shell reaches it: relative when below, else absolute.

    The hook runs inside the project; the shell's own folder is still in PWD.
    """
    shell = os.environ.get("PWD", "")
    if shell and Path(shell).is_absolute():
        with contextlib.suppress(ValueError, OSError):
            return shlex.quote(str(project.relative_to(Path(shell).resolve())))
    return shlex.quote(str(project))


def next_steps(project: Path, answers: dict[str, object]) -> list[tuple[str, str]]:
    """(command, what it does) lines for the user, in the order to run them."""
    slug = answers["project_slug"]
    folder = reachable(project)
    steps = [(f"cd {folder}", "")] if folder != "." else []
    steps.append(("make install", ".env with fresh secrets, .venv with the dependencies"))
    if answers["database"] == "postgresql":
        steps.append(("make migrate", "the database of DATABASE_URL and its tables"))
    if answers["auth"] == "jwt":
        steps.append((f".venv/bin/python -m {slug} create-user NAME", "a user who gets tokens"))
    steps.append(("make run", "serve on http://127.0.0.1:8000/docs"))
    if answers["use_redis"]:
        steps.append(("make worker", "run the background jobs (in another terminal)"))
    steps.append(("make test", "the tests (make check: lint and type check too)"))
    return steps


def main() -> int:
    project = Path.cwd()
    prune(project, ANSWERS)
    print(f"\nCreated {project}\n\nNext:")
    for command, comment in next_steps(project, ANSWERS):
        print(f"  {command.ljust(12)}   # {comment}" if comment else f"  {command}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
