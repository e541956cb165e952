"""bandit reports nothing of medium or high severity in the rendered code of any render.

One bandit process checks `src/` of every render of the matrix (see `Batch`); a render
is checked on its own only when that run fails, so each test reports its own findings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support import combo_id, describe, tool
from tests.test_renders import IDS, MATRIX, Batch

# Medium and high severity, any confidence; one line per finding.
BANDIT_OPTIONS = [
    "--quiet",
    "--recursive",
    "--severity-level",
    "medium",
    "--format",
    "custom",
    "--msg-template",
    "{relpath}:{line}: {test_id} [{severity}/{confidence}] {msg}",
]


@pytest.fixture(scope="module")
def sources(baked: Any) -> dict[str, Path]:
    """combo id -> the render's src/ folder, for every combination of the matrix."""
    return {combo_id(combo): baked.project(**combo) / "src" for combo in MATRIX}


@pytest.fixture(scope="module")
def bandit(sources: dict[str, Path]) -> Batch:
    return Batch([tool("bandit"), *BANDIT_OPTIONS], list(sources.values()))


@pytest.mark.parametrize("combo", MATRIX, ids=IDS)
def test_bandit_finds_nothing_of_medium_or_high_severity(
    sources: dict[str, Path], bandit: Batch, combo: dict[str, Any]
) -> None:
    source = sources[combo_id(combo)]
    assert any(source.rglob("*.py")), f"no Python files under {source}"
    result = bandit.result(source)
    assert result.returncode == 0, describe(result)
