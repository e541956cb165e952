"""The post-gen MANIFEST (option=value -> paths) agrees with what the template renders.

The table is read from hooks/post_gen_project.py with `ast`, so it cannot drift from
these tests: every listed path exists when its value is chosen and is pruned otherwise,
and every file that only some values render is listed.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support import (
    answer_key,
    choice_options,
    covered,
    load_manifest,
    option_values,
    parse_answer_key,
    relative_files,
    snapshot,
)

MANIFEST = load_manifest()
SLUG = "ai_service"


def paths_of(key: str) -> list[str]:
    return [relative.format(slug=SLUG) for relative in MANIFEST.get(key, [])]


def satisfying(clauses: dict[str, list[Any]], **changed: object) -> dict[str, object]:
    """Answers that meet every clause (each clause's first value) except those `changed`."""
    return {**{option: values[0] for option, values in clauses.items()}, **changed}


def cases_present() -> list[Any]:
    """For each key, every combination of the values its clauses allow."""
    cases = []
    for key in MANIFEST:
        clauses = parse_answer_key(key)
        for values in itertools.product(*clauses.values()):
            answers = dict(zip(clauses, values, strict=True))
            label = ",".join(answer_key(option, value) for option, value in answers.items())
            cases.append(pytest.param(key, answers, id=f"{key}-present-for-{label}"))
    return cases


def cases_pruned() -> list[Any]:
    """For each key, each clause broken by each value it does not allow."""
    cases = []
    for key in MANIFEST:
        for option, values in parse_answer_key(key).items():
            cases += [
                pytest.param(key, option, other, id=f"{key}-pruned-for-{answer_key(option, other)}")
                for other in option_values(option)
                if other not in values
            ]
    return cases


def listed_for(answers: dict[str, object]) -> list[str]:
    """Every MANIFEST path kept for a render with `answers` (other options: defaults)."""
    full = {option: answers.get(option, option_values(option)[0]) for option in choice_options()}
    paths = []
    for key in MANIFEST:
        if all(full[option] in values for option, values in parse_answer_key(key).items()):
            paths += paths_of(key)
    return paths


def test_manifest_is_not_empty_and_names_real_choices() -> None:
    assert MANIFEST, "MANIFEST is empty"
    for key, paths in MANIFEST.items():
        parse_answer_key(key)  # raises on an unknown option or value
        assert paths, f"{key} lists no paths"
        for relative in paths:
            assert not relative.startswith("/"), f"{key}: {relative} is absolute"
            assert ".." not in relative.split("/"), f"{key}: {relative} leaves the project"


@pytest.mark.parametrize(("key", "answers"), cases_present())
def test_listed_paths_exist_when_chosen(
    project_of: Callable[..., Path], key: str, answers: dict[str, object]
) -> None:
    project = project_of(**answers)
    missing = [relative for relative in paths_of(key) if not (project / relative).exists()]
    assert not missing, f"{key} renders without {missing}"


@pytest.mark.parametrize(("key", "option", "other"), cases_pruned())
def test_listed_paths_are_pruned_otherwise(
    project_of: Callable[..., Path], key: str, option: str, other: object
) -> None:
    project = project_of(**satisfying(parse_answer_key(key), **{option: other}))
    assert project.is_dir()
    left = [relative for relative in paths_of(key) if (project / relative).exists()]
    assert not left, f"{answer_key(option, other)} keeps {left}, which belong to {key}"


@pytest.mark.parametrize("option", choice_options())
def test_every_optional_file_is_in_the_manifest(
    project_of: Callable[..., Path], option: str
) -> None:
    """A file that one value renders and another does not must be listed for that value."""
    files = {
        value: relative_files(project_of(**{option: value})) for value in option_values(option)
    }
    assert all(files.values()), f"a render of {option} is empty"
    unlisted = []
    for value, other in itertools.permutations(option_values(option), 2):
        extra = files[value] - files[other]
        listed = listed_for({option: value})
        unlisted += [
            f"{relative} (only with {answer_key(option, value)})"
            for relative in sorted(extra)
            if not covered(relative, listed)
        ]
    assert not unlisted, "files outside the MANIFEST:\n" + "\n".join(sorted(set(unlisted)))


@pytest.mark.parametrize("option", choice_options())
def test_every_option_switches_something(project_of: Callable[..., Path], option: str) -> None:
    """Issue 2: never an option that switches nothing. Each value renders differently."""
    renders = {}
    for value in option_values(option):
        renders[answer_key(option, value)] = snapshot(project_of(**{option: value}))
    same = [
        f"{first} and {second}"
        for first, second in itertools.combinations(renders, 2)
        if renders[first] == renders[second]
    ]
    assert not same, f"these answers render identical projects: {same}"
