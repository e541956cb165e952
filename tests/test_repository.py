"""The template repository's own CI: `.github/workflows/` at the repository root.

Not the rendered project's workflow (that one lives in the template folder and is
checked per render in test_renders.py). The root workflow runs `make test` where `.ci/run`
would: the same PostgreSQL and Redis, the same DATABASE_URL and REDIS_URL.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.support import (
    REPO,
    describe,
    load_workflow,
    run,
    tool,
    unpinned_actions,
    write_permissions,
)

WORKFLOWS = REPO / ".github" / "workflows"
TEST_WORKFLOW = WORKFLOWS / "test.yml"


def root_workflows() -> list[Path]:
    workflows = sorted(WORKFLOWS.glob("*.y*ml"))
    assert TEST_WORKFLOW in workflows, f"{TEST_WORKFLOW.relative_to(REPO)} is missing"
    return workflows


def ci_run_exports() -> dict[str, str]:
    """NAME -> value of each `export NAME=value` line of .ci/run."""
    text = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    return dict(re.findall(r"^export (\w+)=(\S+)$", text, flags=re.MULTILINE))


@pytest.fixture(scope="module")
def test_job() -> dict[str, Any]:
    job: dict[str, Any] = load_workflow(TEST_WORKFLOW)["jobs"]["test"]
    return job


def test_root_workflows_validate_against_their_schema() -> None:
    result = run(
        [tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", *root_workflows()]
    )
    assert result.returncode == 0, describe(result)


def test_root_workflows_pass_zizmor() -> None:
    result = run(
        [tool("zizmor"), "--offline", "--no-progress", *root_workflows()], cwd=REPO, timeout=120
    )
    assert result.returncode == 0, describe(result)


def test_root_workflow_actions_are_pinned_by_commit_sha() -> None:
    problems = [problem for workflow in root_workflows() for problem in unpinned_actions(workflow)]
    assert not problems, "actions not pinned as `@<commit sha> # vX.Y.Z`:\n" + "\n".join(problems)


def test_root_workflow_runs_on_changes_and_weekly_with_read_only_access() -> None:
    workflow = load_workflow(TEST_WORKFLOW)
    assert {"push", "pull_request", "schedule"} <= set(workflow["on"])
    assert workflow["on"]["schedule"], "no schedule: dependency rot would go unnoticed"
    assert not write_permissions(workflow["permissions"])
    for name, job in workflow["jobs"].items():
        assert not write_permissions(job.get("permissions")), f"job {name} can write"


def test_root_workflow_runs_make_test_in_the_environment_of_ci_run(
    test_job: dict[str, Any],
) -> None:
    exports = ci_run_exports()
    assert {"DATABASE_URL", "REDIS_URL"} <= set(exports), ".ci/run no longer exports them"
    for name, value in exports.items():
        if name == "CI":
            continue  # .ci/run sets it only where the CI system has not: GitHub always has
        assert test_job["env"].get(name) == value, f"{name} differs from .ci/run's"
    assert any(step.get("run") == "make test" for step in test_job["steps"])


def test_root_workflow_services_are_those_the_urls_name(test_job: dict[str, Any]) -> None:
    database, redis = (urlsplit(test_job["env"][name]) for name in ("DATABASE_URL", "REDIS_URL"))
    postgres = test_job["services"]["postgres"]
    assert postgres["env"]["POSTGRES_HOST_AUTH_METHOD"] == "trust"
    assert postgres["env"]["POSTGRES_DB"] == database.path.lstrip("/")
    assert f"{database.port}:5432" in postgres["ports"]
    assert f"{redis.port}:6379" in test_job["services"]["redis"]["ports"]


def test_root_workflow_installs_redis_server_for_the_fault_tests(
    test_job: dict[str, Any],
) -> None:
    commands = "\n".join(str(step.get("run", "")) for step in test_job["steps"])
    assert "install -y -q --no-install-recommends redis-server" in commands
    install = commands.index("redis-server")
    assert install < commands.index("make test"), "redis-server must be there before the tests"


LEFTOVER_SUFFIXES = (".orig", ".rej", ".bak", ".swp", "~")


def test_no_patch_or_editor_leftovers_are_tracked() -> None:
    """A `patch` run's .orig/.rej or an editor backup would render into every project."""
    result = run(["git", "ls-files"], cwd=REPO)
    assert result.returncode == 0, describe(result)
    leftovers = [path for path in result.stdout.splitlines() if path.endswith(LEFTOVER_SUFFIXES)]
    assert not leftovers, f"remove these leftovers from git: {leftovers}"
