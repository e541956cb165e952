"""The render matrix: every combination renders cleanly and every rendered file validates.

Data-driven, like cookiecutter-django's generation tests: MATRIX is the list of option
dicts; `test_matrix_is_the_full_product` keeps it equal to the full product of
FULL_PRODUCT_OPTIONS' values in cookiecutter.json. Renders are baked once per session and
shared; slow command-line checkers run once over all renders (see `Batch`).
"""

from __future__ import annotations

import ast
import itertools
import re
import subprocess
import tomllib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support import (
    FULL_PRODUCT_OPTIONS,
    all_pairs,
    choice_options,
    combinations,
    combo_id,
    covering_rows,
    describe,
    load_workflow,
    option_values,
    pairs_of,
    parse_clause,
    possible,
    project_files,
    run,
    tool,
    unpinned_actions,
    write_permissions,
)


def pairwise_matrix() -> list[dict[str, Any]]:
    """Every module combination once, the other options chosen so that every pair of
    values of any two options is rendered at least once (`covering_rows`)."""
    return covering_rows(choice_options(), bases=combinations())


MATRIX: list[dict[str, Any]] = pairwise_matrix()
IDS = [combo_id(combo) for combo in MATRIX]
DEFAULT_SLUG = "ai_service"

CI_FILES = {"github": ".github/workflows/ci.yml", "gitlab": ".gitlab-ci.yml"}
CI_SCHEMAS = {"github": "vendor.github-workflows", "gitlab": "vendor.gitlab-ci"}

# Files every render has, whatever the options (issue 2, "Around the code").
REQUIRED_FILES = (
    "pyproject.toml",
    "README.md",
    "CHANGELOG.md",
    "Makefile",
    ".env.example",
    "scripts/init_env.py",
    "scripts/check_python.py",
    ".gitignore",
    ".gitattributes",
    ".pre-commit-config.yaml",
    "Dockerfile",
    ".dockerignore",
    "compose.yaml",
    "src/{slug}/__init__.py",
    "src/{slug}/__main__.py",
    "src/{slug}/main.py",
    "src/{slug}/settings.py",
    "tests/conftest.py",
)

# `${{ ... }}` is GitHub Actions' own expression syntax, legitimate in its workflow files.
GITHUB_EXPRESSION = re.compile(r"\$\{\{.*?\}\}")
OWN_TEMPLATES = {".github/": GITHUB_EXPRESSION}
LEFTOVER_MARKERS = ("cookiecutter.", "{%", "{{")
# The seed guide's item numbers ("seed S3.3", "S4.2"): a render reads as its own code.
GUIDE_CITATION = re.compile(r"\bS\d+\.\d+\b|(?<![A-Za-z])[Ss]eed[ _](guide|item|contract|S\d)")


def combos_where(**answers: Any) -> list[Any]:
    return [
        pytest.param(combo, id=combo_id(combo))
        for combo in MATRIX
        if all(combo.get(key) == value for key, value in answers.items())
    ]


class Batch:
    """Runs a checker once over many targets; per target again only if the batch fails.

    On the green path one process checks every render (cheap on 2 cores); on the red
    path each target gets its own run, so each test reports only its own render.
    """

    def __init__(self, command: Sequence[str], targets: Sequence[Path]) -> None:
        self.command = list(command)
        self.targets = list(targets)
        self._whole: subprocess.CompletedProcess[str] | None = None
        self._single: dict[Path, subprocess.CompletedProcess[str]] = {}

    def result(self, target: Path) -> subprocess.CompletedProcess[str]:
        assert target in self.targets, f"{target} was not part of the batch"
        if self._whole is None:
            self._whole = run([*self.command, *self.targets])
        if self._whole.returncode == 0:
            return self._whole
        if target not in self._single:
            self._single[target] = run([*self.command, target])
        return self._single[target]


@pytest.fixture(scope="session")
def matrix(baked: Any) -> dict[str, Path]:
    """combo id -> render directory, for every combination that rendered."""
    projects = {}
    for combo in MATRIX:
        result = baked(**combo)
        if result.exit_code == 0 and result.exception is None:
            projects[combo_id(combo)] = Path(result.project_path)
    return projects


@pytest.fixture(scope="session")
def batches(matrix: dict[str, Path]) -> Callable[[str], Batch]:
    """Named batches over all renders, created on first use."""
    projects = list(matrix.values())

    def existing(relative: str) -> list[Path]:
        return [project / relative for project in projects if (project / relative).is_file()]

    def workflows() -> list[Path]:
        return sorted(
            path
            for project in projects
            for path in (project / ".github" / "workflows").glob("*.y*ml")
        )

    factories: dict[str, Callable[[], Batch]] = {
        "ruff-check": lambda: Batch([tool("ruff"), "check", "--no-cache"], projects),
        "ruff-format": lambda: Batch([tool("ruff"), "format", "--check", "--no-cache"], projects),
        "schema-github": lambda: Batch(
            [tool("check-jsonschema"), "--builtin-schema", CI_SCHEMAS["github"]], workflows()
        ),
        "schema-gitlab": lambda: Batch(
            [tool("check-jsonschema"), "--builtin-schema", CI_SCHEMAS["gitlab"]],
            existing(CI_FILES["gitlab"]),
        ),
        "schema-compose": lambda: Batch(
            [tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec"],
            existing("compose.yaml"),
        ),
    }
    made: dict[str, Batch] = {}

    def get(name: str) -> Batch:
        if name not in made:
            made[name] = factories[name]()
        return made[name]

    return get


def project_for(matrix: dict[str, Path], combo: dict[str, Any]) -> Path:
    key = combo_id(combo)
    if key not in matrix:
        pytest.fail(f"{key} did not render (see test_renders)")
    return matrix[key]


# --- rendering ------------------------------------------------------------------------


@pytest.mark.parametrize("combo", MATRIX, ids=IDS)
def test_renders(baked: Any, combo: dict[str, Any]) -> None:
    result = baked(**combo)
    assert result.exception is None, result.exception
    assert result.exit_code == 0
    project = Path(result.project_path)
    assert project.name == DEFAULT_SLUG
    assert (project / "src" / DEFAULT_SLUG / "__init__.py").is_file()


@pytest.mark.parametrize("combo", MATRIX, ids=IDS)
def test_required_files_exist(matrix: dict[str, Path], combo: dict[str, Any]) -> None:
    project = project_for(matrix, combo)
    missing = [
        relative
        for relative in REQUIRED_FILES
        if not (project / relative.format(slug=DEFAULT_SLUG)).is_file()
    ]
    assert not missing, f"missing from the render: {missing}"


@pytest.mark.parametrize("combo", MATRIX, ids=IDS)
def test_no_render_holds_a_env_file(matrix: dict[str, Path], combo: dict[str, Any]) -> None:
    """`make install` writes `.env`: a render with random secrets in it would differ from
    every other render of the same answers, and `cruft update` diffs two renders."""
    assert not (project_for(matrix, combo) / ".env").exists()


@pytest.mark.parametrize("combo", MATRIX, ids=IDS)
def test_no_render_cites_the_seed_guide(matrix: dict[str, Path], combo: dict[str, Any]) -> None:
    project = project_for(matrix, combo)
    cited = [
        f"{path.relative_to(project)}:{number}: {line.strip()}"
        for path in project_files(project)
        if b"\0" not in path.read_bytes()
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if GUIDE_CITATION.search(line)
    ]
    assert not cited, "\n".join(cited)


@pytest.mark.parametrize("combo", MATRIX, ids=IDS)
def test_no_template_leftovers(matrix: dict[str, Path], combo: dict[str, Any]) -> None:
    project = project_for(matrix, combo)
    problems, checked = [], 0
    for path in project_files(project):
        relative = path.relative_to(project).as_posix()
        data = path.read_bytes()
        if b"\0" in data:
            continue  # binary
        checked += 1
        own = next((own for top, own in OWN_TEMPLATES.items() if relative.startswith(top)), None)
        for number, line in enumerate(data.decode("utf-8").splitlines(), start=1):
            visible = own.sub("", line) if own else line
            problems += [
                f"{relative}:{number}: {marker!r} in {line.strip()!r}"
                for marker in LEFTOVER_MARKERS
                if marker in visible
            ]
    assert checked > 10, "suspiciously few text files in the render"
    assert not problems, "\n".join(problems)


# Modules nothing imports by name: entry points, and packages' own __init__.
ENTRY_MODULES = {"__init__", "__main__", "main"}


def imported_modules(package: Path) -> tuple[set[str], dict[str, Path]]:
    """Dotted names (within `package`) that its modules import, and every module's name."""
    modules = {
        ".".join(path.relative_to(package).with_suffix("").parts): path
        for path in sorted(package.rglob("*.py"))
    }
    imported: set[str] = set()
    for dotted, path in modules.items():
        here = dotted.split(".")
        if path.stem != "__init__":
            here = here[:-1]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level:
                base = here[: len(here) - node.level + 1] + (node.module or "").split(".")
                base = [part for part in base if part]
                imported.add(".".join(base))
                imported.update(".".join([*base, alias.name]) for alias in node.names)
    return imported, modules


@pytest.mark.parametrize("combo", MATRIX, ids=IDS)
def test_every_module_of_the_service_is_used(
    matrix: dict[str, Path], combo: dict[str, Any]
) -> None:
    """A module no other module imports belongs to a disabled option: the manifest must
    prune it (a render carries no dead code of an option it was not asked for)."""
    package = project_for(matrix, combo) / "src" / DEFAULT_SLUG
    imported, modules = imported_modules(package)
    unused = [
        path.relative_to(package).as_posix()
        for dotted, path in modules.items()
        if path.stem not in ENTRY_MODULES and dotted not in imported
    ]
    assert not unused, f"modules nothing imports: {unused}"


@pytest.mark.parametrize("combo", MATRIX, ids=IDS)
def test_no_blank_line_scars_at_end_of_files(
    matrix: dict[str, Path], combo: dict[str, Any]
) -> None:
    """Jinja blocks leave blank lines behind; a text file ends with exactly one newline."""
    project = project_for(matrix, combo)
    scarred = []
    for path in project_files(project):
        data = path.read_bytes()
        if not data or b"\0" in data:
            continue
        if not data.endswith(b"\n") or data.endswith(b"\n\n"):
            scarred.append(path.relative_to(project).as_posix())
    assert not scarred, f"files that do not end with exactly one newline: {scarred}"


@pytest.mark.parametrize("combo", MATRIX, ids=IDS)
def test_ci_file_matches_choice(matrix: dict[str, Path], combo: dict[str, Any]) -> None:
    project = project_for(matrix, combo)
    present = {ci for ci, relative in CI_FILES.items() if (project / relative).exists()}
    expected = {combo["ci"]} - {"none"}
    assert present == expected
    if combo["ci"] != "github":
        assert not (project / ".github" / "workflows").exists()


@pytest.mark.parametrize("combo", MATRIX, ids=IDS)
def test_python_version_reaches_its_places(matrix: dict[str, Path], combo: dict[str, Any]) -> None:
    """python_version sets requires-python, ruff/mypy targets, the image and the CI Python."""
    project = project_for(matrix, combo)
    version = combo["python_version"]
    pyproject = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))
    assert pyproject["project"]["requires-python"] == f">={version}"
    assert pyproject["tool"]["ruff"]["target-version"] == "py" + version.replace(".", "")
    assert pyproject["tool"]["mypy"]["python_version"] == version
    assert version in (project / "Dockerfile").read_text(encoding="utf-8")
    if combo["ci"] in CI_FILES:
        ci_text = (project / CI_FILES[combo["ci"]]).read_text(encoding="utf-8")
        python_version_file = project / ".python-version"
        assert version in ci_text or (
            python_version_file.exists() and version in python_version_file.read_text()
        ), f"the CI pipeline does not use Python {version}"


# --- the files parse and validate -------------------------------------------------------


@pytest.mark.parametrize("combo", MATRIX, ids=IDS)
def test_yaml_and_toml_parse(matrix: dict[str, Path], combo: dict[str, Any]) -> None:
    project = project_for(matrix, combo)
    parsed = []
    for path in project_files(project):
        text = (
            path.read_text(encoding="utf-8") if path.suffix in {".yml", ".yaml", ".toml"} else None
        )
        if text is None:
            continue
        relative = path.relative_to(project).as_posix()
        try:
            if path.suffix == ".toml":
                tomllib.loads(text)
            else:
                documents = list(yaml.safe_load_all(text))
                assert documents, f"{relative} holds no YAML document"
        except (tomllib.TOMLDecodeError, yaml.YAMLError) as error:
            pytest.fail(f"{relative} does not parse: {error}")
        parsed.append(relative)
    assert "pyproject.toml" in parsed
    assert "compose.yaml" in parsed, "compose.yaml is missing"


@pytest.mark.parametrize("combo", MATRIX, ids=IDS)
def test_ruff_check_passes_as_rendered(
    matrix: dict[str, Path], batches: Callable[[str], Batch], combo: dict[str, Any]
) -> None:
    # ruff finds each render's own pyproject.toml ([tool.ruff]) next to its files.
    result = batches("ruff-check").result(project_for(matrix, combo))
    assert result.returncode == 0, describe(result)


@pytest.mark.parametrize("combo", MATRIX, ids=IDS)
def test_ruff_format_passes_as_rendered(
    matrix: dict[str, Path], batches: Callable[[str], Batch], combo: dict[str, Any]
) -> None:
    result = batches("ruff-format").result(project_for(matrix, combo))
    assert result.returncode == 0, describe(result)


@pytest.mark.parametrize("combo", combos_where(ci="github") + combos_where(ci="gitlab"))
def test_ci_file_validates_against_its_schema(
    matrix: dict[str, Path], batches: Callable[[str], Batch], combo: dict[str, Any]
) -> None:
    ci = combo["ci"]
    path = project_for(matrix, combo) / CI_FILES[ci]
    assert path.is_file(), f"{CI_FILES[ci]} is missing"
    if ci == "github":
        workflows = sorted(path.parent.glob("*.y*ml"))
        results = [batches("schema-github").result(workflow) for workflow in workflows]
    else:
        results = [batches("schema-gitlab").result(path)]
    for result in results:
        assert result.returncode == 0, describe(result)


@pytest.mark.parametrize("combo", combos_where(ci="github"))
def test_github_workflow_passes_zizmor(matrix: dict[str, Path], combo: dict[str, Any]) -> None:
    project = project_for(matrix, combo)
    assert (project / CI_FILES["github"]).is_file(), f"{CI_FILES['github']} is missing"
    workflows = sorted((project / ".github" / "workflows").glob("*.y*ml"))
    result = run(
        [tool("zizmor"), "--offline", "--no-progress", *workflows], cwd=project, timeout=120
    )
    assert result.returncode == 0, describe(result)


@pytest.mark.parametrize("combo", combos_where(ci="github"))
def test_github_actions_are_pinned_by_commit_sha(
    matrix: dict[str, Path], combo: dict[str, Any]
) -> None:
    workflows = sorted((project_for(matrix, combo) / ".github" / "workflows").glob("*.y*ml"))
    assert workflows, "no GitHub workflow"
    problems = [problem for workflow in workflows for problem in unpinned_actions(workflow)]
    assert not problems, "actions not pinned as `@<commit sha> # vX.Y.Z`:\n" + "\n".join(problems)


def ci_test_job(project: Path, ci: str) -> tuple[set[str], dict[str, Any], str]:
    """The CI test job's service names, environment, and its commands as one text."""
    if ci == "github":
        job = load_workflow(project / CI_FILES[ci])["jobs"]["test"]
        services = set(job.get("services") or {})
        commands = "\n".join(str(step.get("run", "")) for step in job["steps"])
        return services, job.get("env") or {}, commands
    job = yaml.safe_load((project / CI_FILES[ci]).read_text(encoding="utf-8"))["test"]
    services = {entry["alias"] for entry in job.get("services") or []}
    return services, job.get("variables") or {}, "\n".join(job["script"])


@pytest.mark.parametrize("combo", combos_where(ci="github") + combos_where(ci="gitlab"))
def test_ci_tests_run_against_the_services_the_project_uses(
    matrix: dict[str, Path], combo: dict[str, Any]
) -> None:
    services, env, commands = ci_test_job(project_for(matrix, combo), combo["ci"])
    postgres, redis = combo["database"] == "postgresql", combo["use_redis"]
    assert services == {name for name, used in (("postgres", postgres), ("redis", redis)) if used}
    assert ("DATABASE_URL" in env) == postgres
    assert ("REDIS_URL" in env) == redis
    # The Redis fault tests start a redis-server binary of their own.
    assert ("install -y -q --no-install-recommends redis-server" in commands) == redis
    assert "pytest" in commands


@pytest.mark.parametrize("combo", combos_where(ci="github"))
def test_github_image_is_built_every_run_and_pushed_only_from_version_tags(
    matrix: dict[str, Path], combo: dict[str, Any]
) -> None:
    workflow = load_workflow(project_for(matrix, combo) / CI_FILES["github"])
    jobs = workflow["jobs"]
    assert workflow["on"]["push"]["tags"] == ["v*"]
    assert not write_permissions(workflow["permissions"])
    writers = {name for name, job in jobs.items() if write_permissions(job.get("permissions"))}
    pushers = {
        name
        for name, job in jobs.items()
        if any((step.get("with") or {}).get("push") is True for step in job["steps"])
    }
    assert writers == pushers == {"publish"}
    assert write_permissions(jobs["publish"]["permissions"]) == {"packages"}
    assert jobs["publish"]["if"] == "startsWith(github.ref, 'refs/tags/v')"
    assert {"lint", "test"} <= set(jobs["publish"]["needs"])
    assert jobs["image"]["if"] == "!startsWith(github.ref, 'refs/tags/v')"


@pytest.mark.parametrize("combo", combos_where(ci="gitlab"))
def test_gitlab_image_is_built_every_pipeline_and_pushed_only_from_version_tags(
    matrix: dict[str, Path], combo: dict[str, Any]
) -> None:
    pipeline = yaml.safe_load(
        (project_for(matrix, combo) / CI_FILES["gitlab"]).read_text(encoding="utf-8")
    )
    jobs = {
        name: job for name, job in pipeline.items() if isinstance(job, dict) and "script" in job
    }
    pushers = {
        name for name, job in jobs.items() if any("docker push" in line for line in job["script"])
    }
    assert pushers == {"push-image"}
    version_tag = {"if": "$CI_COMMIT_TAG =~ /^v/"}
    assert jobs["push-image"]["rules"] == [version_tag]
    assert jobs["build-image"]["rules"] == [
        {**version_tag, "when": "never"},
        {"when": "on_success"},
    ]
    assert "docker login" not in "\n".join(jobs["build-image"]["script"])


@pytest.mark.parametrize("combo", combos_where(ci="github") + combos_where(ci="gitlab"))
def test_ci_cruft_check_runs_only_for_cruft_projects_and_cannot_fail_the_run(
    matrix: dict[str, Path], combo: dict[str, Any]
) -> None:
    path = project_for(matrix, combo) / CI_FILES[combo["ci"]]
    if combo["ci"] == "github":
        job = load_workflow(path)["jobs"]["template"]
        assert job["continue-on-error"] is True
        (check,) = [step for step in job["steps"] if "cruft check" in step.get("run", "")]
        assert check["if"] == "hashFiles('.cruft.json') != ''"
    else:
        job = yaml.safe_load(path.read_text(encoding="utf-8"))["cruft-check"]
        assert job["allow_failure"] is True
        assert job["rules"] == [{"exists": [".cruft.json"]}]
        assert "cruft check" in job["script"]


@pytest.mark.parametrize("combo", MATRIX, ids=IDS)
def test_dockerfile_passes_hadolint(matrix: dict[str, Path], combo: dict[str, Any]) -> None:
    project = project_for(matrix, combo)
    assert (project / "Dockerfile").is_file(), "Dockerfile is missing"
    # cwd = the render: hadolint picks up a .hadolint.yaml the render may ship.
    result = run([tool("hadolint"), "Dockerfile"], cwd=project, timeout=120)
    assert result.returncode == 0, describe(result)


@pytest.mark.parametrize("combo", MATRIX, ids=IDS)
def test_compose_file_validates(
    matrix: dict[str, Path], batches: Callable[[str], Batch], combo: dict[str, Any]
) -> None:
    path = project_for(matrix, combo) / "compose.yaml"
    assert path.is_file(), "compose.yaml is missing"
    result = batches("schema-compose").result(path)
    assert result.returncode == 0, describe(result)


def test_matrix_is_the_full_product_of_the_modules() -> None:
    """MATRIX holds every module combination once, and every pair of the other options."""
    modules = [{key: combo[key] for key in FULL_PRODUCT_OPTIONS} for combo in MATRIX]
    assert sorted(map(combo_id, modules)) == sorted(map(combo_id, combinations()))
    product = itertools.product(*(option_values(name) for name in FULL_PRODUCT_OPTIONS))
    every = [dict(zip(FULL_PRODUCT_OPTIONS, values, strict=True)) for values in product]
    assert len(modules) == len([combo for combo in every if possible(combo)]) < len(every)
    assert len(IDS) == len(set(IDS))
    rendered = set().union(*(pairs_of(combo, choice_options()) for combo in MATRIX))
    assert rendered == all_pairs(choice_options())


def test_the_installed_renders_cover_every_pair_and_every_python() -> None:
    """The renders whose own suites run (tests/conftest.py INSTALL_SETS) hold every pair
    of values of any two options, so each Python version's suite runs at least once."""
    from tests.conftest import INSTALL_SETS

    rows = [
        {option: parse_clause(f"{option}={value}")[1][0] for option, value in answers.items()}
        for answers in INSTALL_SETS.values()
    ]
    assert all(possible(row) for row in rows)
    assert set().union(*(pairs_of(row, choice_options()) for row in rows)) == all_pairs(
        choice_options()
    )
    assert {row["python_version"] for row in rows} == set(option_values("python_version"))
