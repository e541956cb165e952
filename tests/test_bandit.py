"""bandit reports nothing of medium or high severity in the rendered code of any render.

bandit judges a file by its content alone, and the renders of the matrix share most of
their files: one bandit process checks each distinct file once (the first render that
has it), for the whole run (the first xdist worker does it, under a lock, and leaves
the findings for the others). Each finding then counts against every render holding
that content, under that render's own path, so each test reports its own render.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from tests.support import combo_id, describe, once_per_run, run, tool
from tests.test_renders import IDS, MATRIX

# Medium and high severity, any confidence; one line per finding, the file's path first.
BANDIT_OPTIONS = [
    "--quiet",
    "--severity-level",
    "medium",
    "--format",
    "custom",
    "--msg-template",
    "{abspath}\t{line}: {test_id} [{severity}/{confidence}] {msg}",
]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def sources(baked: Any) -> dict[str, Path]:
    """combo id -> the render's src/ folder, for every combination of the matrix."""
    return {combo_id(combo): baked.project(**combo) / "src" for combo in MATRIX}


@pytest.fixture(scope="module")
def findings(sources: dict[str, Path], shared_tmp: Path) -> dict[str, list[str]]:
    """Content digest -> bandit's findings in a file of that content ("line: ..."), for
    every distinct Python file of the renders; bandit's failure to run fails the test."""

    def check() -> dict[str, Any]:
        first: dict[str, Path] = {}
        for source in sources.values():
            for path in sorted(source.rglob("*.py")):
                first.setdefault(digest(path), path)
        result = run([tool("bandit"), *BANDIT_OPTIONS, *first.values()])
        found: dict[str, list[str]] = {key: [] for key in first}
        by_path = {str(path.resolve()): key for key, path in first.items()}
        for line in result.stdout.splitlines():
            where, tab, finding = line.partition("\t")
            if tab and where in by_path:
                found[by_path[where]].append(finding)
        # bandit exits 1 when it finds something; anything else, or a 1 with nothing
        # parsed, means it did not check the files.
        ran = result.returncode == 0 or (result.returncode == 1 and any(found.values()))
        return {"found": found} if ran else {"error": describe(result)}

    outcome = once_per_run(shared_tmp, "bandit-findings", check)
    if "error" in outcome:
        pytest.fail(f"bandit did not run:\n{outcome['error']}")
    result_found: dict[str, list[str]] = outcome["found"]
    return result_found


@pytest.mark.parametrize("combo", MATRIX, ids=IDS)
def test_bandit_finds_nothing_of_medium_or_high_severity(
    sources: dict[str, Path], findings: dict[str, list[str]], combo: dict[str, Any]
) -> None:
    source = sources[combo_id(combo)]
    files = sorted(source.rglob("*.py"))
    assert files, f"no Python files under {source}"
    reported = [
        f"{path.relative_to(source)}:{finding}"
        for path in files
        for finding in findings[digest(path)]
    ]
    assert not reported, "\n".join(reported)
