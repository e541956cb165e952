"""Validate the answers before anything is rendered (standard library only).

Each problem is reported as one sentence on stderr that says what to type
instead; exit status 1 makes cookiecutter remove the output directory.
"""

from __future__ import annotations

import keyword
import re
import sys

ANSWERS = {
    "project_name": {{ cookiecutter.project_name | tojson }},
    "project_slug": {{ cookiecutter.project_slug | tojson }},
    "author_email": {{ cookiecutter.author_email | tojson }},
    "version": {{ cookiecutter.version | tojson }},
    "database": {{ cookiecutter.database | tojson }},
    "auth": {{ cookiecutter.auth | tojson }},
}

# Top-level modules the rendered service imports or installs: a package with
# one of these names would shadow it.
DEPENDENCY_MODULES = frozenset(
    {
        "aiohttp",
        "alembic",
        "anyio",
        "argon2",
        "asyncpg",
        "click",
        "croniter",
        "fastapi",
        "graphql",
        "h11",
        "httptools",
        "httpx",
        "jwt",
        "locust",
        "mypy",
        "openai",
        "opentelemetry",
        "prometheus_client",
        "pwdlib",
        "pydantic",
        "pydantic_core",
        "pydantic_settings",
        "pytest",
        "python_multipart",
        "redis",
        "ruff",
        "saq",
        "sqlalchemy",
        "starlette",
        "strawberry",
        "structlog",
        "uvicorn",
        "uvloop",
        "websockets",
        "yaml",
    }
)
# Names that collide with the project's own layout or tooling.
# (`test` is the standard library's own test package, missing from stdlib_module_names.)
RESERVED = frozenset({"src", "test", "tests", "migrations", "site", "app"})

EMAIL = re.compile(r"^[^@\s\"'\\,;<>()]+@[A-Za-z0-9.-]+\.[A-Za-z0-9-]{2,}$")
# PEP 440, Appendix B (canonical public version pattern).
PEP440 = re.compile(
    r"""
    v?
    (?:(?P<epoch>[0-9]+)!)?
    (?P<release>[0-9]+(?:\.[0-9]+)*)
    (?P<pre>[-_.]?(?P<pre_l>a|b|c|rc|alpha|beta|pre|preview)[-_.]?(?P<pre_n>[0-9]+)?)?
    (?P<post>(?:-(?P<post_n1>[0-9]+))|(?:[-_.]?(?P<post_l>post|rev|r)[-_.]?(?P<post_n2>[0-9]+)?))?
    (?P<dev>[-_.]?(?P<dev_l>dev)[-_.]?(?P<dev_n>[0-9]+)?)?
    (?:\+(?P<local>[a-z0-9]+(?:[-_.][a-z0-9]+)*))?
    """,
    re.VERBOSE | re.IGNORECASE,
)


def suggest_slug(text: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")
    if not slug or slug[0].isdigit():
        slug = f"svc_{slug}".rstrip("_")
    return slug


def slug_problem(slug: str) -> str | None:
    hint = suggest_slug(slug)
    if not slug.isidentifier() or slug != slug.lower() or not slug.isascii():
        return (
            f"project_slug {slug!r} is not a lower-case Python identifier: "
            f"type letters, digits and underscores, such as {hint!r}."
        )
    if keyword.iskeyword(slug) or keyword.issoftkeyword(slug):
        return (
            f"project_slug {slug!r} is a Python keyword: "
            f"type another name, such as '{slug}_service'."
        )
    if slug in sys.stdlib_module_names or slug in DEPENDENCY_MODULES or slug in RESERVED:
        return (
            f"project_slug {slug!r} would shadow the module of the same name: "
            f"type another name, such as '{slug}_service'."
        )
    return None


def problems(answers: dict[str, str]) -> list[str]:
    found = []
    if not answers["project_name"].strip():
        found.append("project_name is empty: type a name for the service, such as 'AI Service'.")
    slug_error = slug_problem(answers["project_slug"])
    if slug_error:
        found.append(slug_error)
    if not EMAIL.match(answers["author_email"]):
        found.append(
            f"author_email {answers['author_email']!r} is not an e-mail address: "
            "type one such as 'team@example.com'."
        )
    version = answers["version"]
    if version != version.strip() or not PEP440.fullmatch(version):
        found.append(
            f"version {answers['version']!r} is not a PEP 440 version: type one such as '0.1.0'."
        )
    if answers["auth"] == "jwt" and answers["database"] == "none":
        found.append(
            "auth 'jwt' keeps its users in the database, and database is 'none': "
            "type database=sqlite or database=postgresql, or choose auth=api_key."
        )
    return found


def main() -> int:
    found = problems(ANSWERS)
    for message in found:
        print(f"ERROR: {message}", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
