"""Rendering with the real command line, timed (figures are printed, never asserted)."""

from __future__ import annotations

import statistics
import time
from pathlib import Path

from tests.support import REPO, RecordProperty, describe, run, tool


def test_no_input_render_via_the_cli_is_timed(
    tmp_path: Path, record_property: RecordProperty
) -> None:
    durations = []
    for attempt in range(3):
        output = tmp_path / f"render{attempt}"
        start = time.perf_counter()
        result = run([tool("cookiecutter"), "--no-input", "-o", output, REPO])
        seconds = time.perf_counter() - start
        assert result.returncode == 0, describe(result)
        assert (output / "ai_service" / "pyproject.toml").is_file()
        durations.append(seconds)
    figure = f"min {min(durations):.3f} s, median {statistics.median(durations):.3f} s (goal < 1 s)"
    record_property("timing: cookiecutter --no-input (CLI)", figure)
    print(figure)
