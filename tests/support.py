"""Shared helpers for the template's own tests (imported by conftest and tests)."""

from __future__ import annotations

import ast
import collections
import fcntl
import hashlib
import itertools
import json
import os
import random
import re
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
HOOKS_DIR = REPO / "hooks"
# The dev virtual environment the tests run in (`make venv`); its tools check the renders.
# Not resolved: `.venv/bin/python` is a symlink to the base interpreter.
BIN = Path(sys.executable).parent
COOKIECUTTER_JSON: dict[str, Any] = json.loads(
    (REPO / "cookiecutter.json").read_text(encoding="utf-8")
)

# Options rendered as a full product (the modules the hooks toggle); every other choice
# option is covered pairwise across those renders (`covering_rows`).
FULL_PRODUCT_OPTIONS = ("database", "use_redis", "use_websocket", "auth")
# Answers the pre-gen hook refuses (tests/test_hooks.py checks it does): never rendered.
IMPOSSIBLE: tuple[dict[str, Any], ...] = ({"auth": "jwt", "database": "none"},)

# Subprocess environment variables that belong to this pytest run, not to a child.
# PYTHONDONTWRITEBYTECODE too: a render's venv (uv installs no bytecode) would otherwise
# compile every module from source in every process it starts, about 2.5 s each here,
# and its suite starts servers, workers and commands by the hundred.
_PRIVATE_ENV = (
    "VIRTUAL_ENV",
    "PYTHONPATH",
    "PYTHONHOME",
    "PYTEST_ADDOPTS",
    "PYTEST_CURRENT_TEST",
    "PYTHONDONTWRITEBYTECODE",
)


def tool(name: str) -> str:
    """Absolute path of a command-line tool of the dev venv; fails clearly if missing."""
    path = BIN / name
    if not path.exists():
        raise AssertionError(f"{path} is missing: run `make venv` (the dev tools live there)")
    return str(path)


def child_env(**overrides: str) -> dict[str, str]:
    """The environment for a subprocess: ours, minus pytest/venv leftovers, plus overrides."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in _PRIVATE_ENV and not key.startswith("PYTEST_XDIST")
    }
    env["UV_PYTHON_DOWNLOADS"] = "never"  # uv must never fetch an interpreter here
    env.update(overrides)
    return env


def run(
    command: Sequence[str | os.PathLike[str]],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 300,
    stdin: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a command to completion, capturing text output (never raises on failure)."""
    return subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        env=dict(env) if env is not None else child_env(),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def describe(result: subprocess.CompletedProcess[str]) -> str:
    """A failure message: the command, its status and everything it printed."""
    command = " ".join(str(part) for part in result.args)
    return f"$ {command}\nexit status {result.returncode}\n{result.stdout}\n{result.stderr}"


# The type of pytest's `record_property` fixture.
RecordProperty = Callable[[str, object], None]


def timed(function: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    value = function()
    return value, time.perf_counter() - start


def timed_with_children(function: Callable[[], Any]) -> tuple[Any, str]:
    """Run `function`: its value, and its wall time with the CPU time (user + system) of
    the processes it started and waited for, their own children included, as the timing
    summary prints them. One test at a time runs in a worker, so the figure is its own."""

    def children_cpu() -> float:
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        return usage.ru_utime + usage.ru_stime

    cpu = children_cpu()
    value, seconds = timed(function)
    return value, f"{seconds:.2f} s, CPU {children_cpu() - cpu:.1f} s"


# --- options -------------------------------------------------------------------------


def option_values(option: str) -> list[Any]:
    """Every value an option accepts, the default first (booleans: both)."""
    value = COOKIECUTTER_JSON[option]
    if isinstance(value, list):
        return list(value)
    if isinstance(value, bool):
        return [value, not value]
    raise AssertionError(f"{option} is free text, not a choice")


def choice_options() -> list[str]:
    return [
        key
        for key, value in COOKIECUTTER_JSON.items()
        if not key.startswith("_") and isinstance(value, (list, bool))
    ]


def answer_key(option: str, value: object) -> str:
    """How the post-gen MANIFEST spells an answer: booleans as yes/no."""
    if isinstance(value, bool):
        value = "yes" if value else "no"
    return f"{option}={value}"


def parse_clause(clause: str) -> tuple[str, list[Any]]:
    """One clause of a MANIFEST key, `option=value` or `option=v1|v2`: the option and
    its values, checked against cookiecutter.json."""
    option, _, text = clause.partition("=")
    if option not in COOKIECUTTER_JSON:
        raise AssertionError(
            f"MANIFEST clause {clause!r}: no option {option!r} in cookiecutter.json"
        )
    values = []
    for word in text.split("|"):
        matches = [v for v in option_values(option) if answer_key(option, v) == f"{option}={word}"]
        if not matches:
            raise AssertionError(
                f"MANIFEST clause {clause!r}: {word!r} is not one of {option_values(option)!r}"
            )
        values += matches
    return option, values


def parse_answer_key(key: str) -> dict[str, list[Any]]:
    """A MANIFEST key, clauses joined by `&`: option -> the values that keep its paths."""
    clauses = dict(parse_clause(clause) for clause in key.split("&"))
    if len(clauses) != len(key.split("&")):
        raise AssertionError(f"MANIFEST key {key!r} names an option twice")
    return clauses


def possible(answers: Mapping[str, Any]) -> bool:
    """Whether the hooks accept `answers` (no IMPOSSIBLE combination among them)."""
    return not any(
        all(answers.get(option) == value for option, value in refused.items())
        for refused in IMPOSSIBLE
    )


Pair = tuple[tuple[str, Any], tuple[str, Any]]


def pairs_of(row: Mapping[str, Any], options: Sequence[str]) -> set[Pair]:
    """The value pairs a (partial) row covers, over `options`."""
    named = [(option, row[option]) for option in options if option in row]
    return {(a, b) for a, b in itertools.combinations(named, 2)}


def all_pairs(options: Sequence[str]) -> set[Pair]:
    """Every pair of values of two options that some accepted render can hold."""
    found = set()
    for a, b in itertools.combinations(options, 2):
        for va, vb in itertools.product(option_values(a), option_values(b)):
            if possible({a: va, b: vb}):
                found.add(((a, va), (b, vb)))
    return found


def complete_row(
    row: dict[str, Any], options: Sequence[str], uncovered: set[Pair]
) -> dict[str, Any]:
    """Fill the options `row` lacks, each with the value that covers most uncovered pairs
    (ties: the option's default), never an answer set the hooks refuse."""
    row = dict(row)
    # The options with the most pairs still to cover first: they constrain the rest most.
    order = sorted(
        (option for option in options if option not in row),
        key=lambda option: -sum(option in (a[0], b[0]) for a, b in uncovered),
    )
    for option in order:
        best, best_gain = None, -1
        for value in option_values(option):
            trial = {**row, option: value}
            if not possible(trial):
                continue
            gain = len(pairs_of(trial, options) & uncovered) - len(
                pairs_of(row, options) & uncovered
            )
            if gain > best_gain:
                best, best_gain = value, gain
        row[option] = best
    return row


CACHE = REPO / "build" / "test-cache"


def once_per_run(shared: Path, name: str, make: Callable[[], Any]) -> Any:
    """`make()` once for the whole test run, by whichever xdist worker asks first: under
    a file lock in the run's shared folder, where its (JSON) result is recorded for the
    others, which wait for it."""
    record = shared / f"{name}.json"
    with (shared / f"{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if not record.exists():
            record.write_text(json.dumps(make()), encoding="utf-8")
    return json.loads(record.read_text(encoding="utf-8"))


def remembered(name: str, compute: Callable[[], Any], *arguments: Any) -> Any:
    """`compute()`, kept in CACHE as JSON under a key made of `arguments`, this module's
    source and cookiecutter.json: for slow, deterministic computations that every pytest
    process (the xdist controller and each worker) would otherwise repeat at import."""
    key = hashlib.sha256(
        json.dumps(
            [arguments, Path(__file__).read_text(encoding="utf-8"), COOKIECUTTER_JSON],
            sort_keys=True,
        ).encode()
    ).hexdigest()[:16]
    path = CACHE / f"{name}-{key}.json"
    if path.exists():
        return json.loads(path.read_text(encoding="utf-8"))
    value = compute()
    CACHE.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{path.name}.{os.getpid()}")
    partial.write_text(json.dumps(value), encoding="utf-8")
    partial.replace(path)  # atomic: a process reading it never sees half a file
    return value


def covering_rows(
    options: Sequence[str],
    *,
    bases: Sequence[Mapping[str, Any]] = (),
    seeds: Sequence[Mapping[str, Any]] = (),
    tries: int = 30,
) -> list[dict[str, Any]]:
    """Answer sets that hold every value pair of `options` at least once (pairwise).

    `seeds` come first (an empty seed is the default render; options a seed leaves out
    are chosen greedily); each of `bases` then becomes one row the same way; then rows
    are added, each an accepted render covering the most pairs still uncovered (ties
    broken at random), until none is left. The shortest of `tries` such runs wins; the
    random choices are seeded, so the same options always give the same rows (which
    are therefore remembered: seconds of work in each pytest process).
    """
    rows: list[dict[str, Any]] = remembered(
        "covering-rows",
        lambda: _covering_rows(options, bases=bases, seeds=seeds, tries=tries),
        list(options),
        [dict(base) for base in bases],
        [dict(seed) for seed in seeds],
        tries,
    )
    return rows


def _covering_rows(
    options: Sequence[str],
    *,
    bases: Sequence[Mapping[str, Any]],
    seeds: Sequence[Mapping[str, Any]],
    tries: int,
) -> list[dict[str, Any]]:
    every = [
        dict(zip(options, values, strict=True))
        for values in itertools.product(*(option_values(option) for option in options))
    ]
    candidates = [(row, frozenset(pairs_of(row, options))) for row in every if possible(row)]
    shuffle = random.Random(20261201)  # noqa: S311 - reproducible tie-breaking, not secrets
    runs = (covering_run(options, candidates, bases, seeds, shuffle) for _ in range(tries))
    shortest = min(runs, key=len)
    pinned = [set(seed) if seed else set(options) for seed in seeds]
    pinned += [set(base) for base in bases]
    return shrunk(shortest, options, pinned=pinned, shuffle=shuffle)


def shrunk(
    rows: list[dict[str, Any]],
    options: Sequence[str],
    *,
    pinned: Sequence[set[str]],
    shuffle: random.Random,
    steps: int = 300,
) -> list[dict[str, Any]]:
    """`rows` less as many of its free rows (those after the `pinned` ones) as a local
    search can do without: drop one, then rewrite the cells no pin holds until every
    pair is covered again. Greedy covering leaves a row or three more than needed, and
    each row is a render whose whole test suite runs in CI."""
    wanted = all_pairs(options)
    while len(rows) > len(pinned):
        for drop in range(len(rows) - 1, len(pinned) - 1, -1):
            trial = [dict(row) for index, row in enumerate(rows) if index != drop]
            if repaired(trial, options, wanted, pinned=pinned, shuffle=shuffle, steps=steps):
                rows = trial
                break
        else:
            break
    return rows


def repaired(
    rows: list[dict[str, Any]],
    options: Sequence[str],
    wanted: set[Pair],
    *,
    pinned: Sequence[set[str]],
    shuffle: random.Random,
    steps: int,
) -> bool:
    """Rewrite unpinned cells of `rows` in place until they hold every pair of `wanted`
    (True), or give up after `steps` moves (False). A move puts one uncovered pair into
    one row whose pins allow it, keeping the answers possible; the best move is taken
    even when it gains nothing, so the search walks across plateaus."""
    held = collections.Counter(pair for row in rows for pair in pairs_of(row, options))
    uncovered = {pair for pair in wanted if not held[pair]}
    for _ in range(steps):
        if not uncovered:
            return True
        (a, va), (b, vb) = shuffle.choice(sorted(uncovered, key=repr))
        best: tuple[int, int, dict[str, Any]] | None = None
        for index, row in enumerate(rows):
            fixed = pinned[index] if index < len(pinned) else set()
            if (a in fixed and row[a] != va) or (b in fixed and row[b] != vb):
                continue
            changed = {**row, a: va, b: vb}
            if not possible(changed):
                continue
            lost = pairs_of(row, options) - pairs_of(changed, options)
            gained = pairs_of(changed, options) - pairs_of(row, options)
            left = sum(1 for pair in lost if held[pair] == 1 and pair in wanted) - sum(
                1 for pair in gained if pair in uncovered
            )
            if best is None or left < best[0]:
                best = (left, index, changed)
        if best is None:
            return False
        _, index, changed = best
        held.subtract(pairs_of(rows[index], options))
        held.update(pairs_of(changed, options))
        rows[index] = changed
        uncovered = {pair for pair in wanted if held[pair] <= 0}
    return not uncovered


def covering_run(
    options: Sequence[str],
    candidates: Sequence[tuple[dict[str, Any], frozenset[Pair]]],
    bases: Sequence[Mapping[str, Any]],
    seeds: Sequence[Mapping[str, Any]],
    shuffle: random.Random,
) -> list[dict[str, Any]]:
    """One greedy run of `covering_rows`."""
    uncovered = all_pairs(options)
    firsts = [
        dict(seed) if seed else {option: option_values(option)[0] for option in options}
        for seed in seeds
    ] + [dict(base) for base in bases]
    rows: list[dict[str, Any]] = []
    for first in firsts:
        rows.append(complete_row(first, options, uncovered))
        uncovered -= pairs_of(rows[-1], options)
    while uncovered:
        most = max(len(pairs & uncovered) for _, pairs in candidates)
        tied = [row for row, pairs in candidates if len(pairs & uncovered) == most]
        rows.append(dict(shuffle.choice(tied)))
        uncovered -= pairs_of(rows[-1], options)
    return rows


def combinations() -> list[dict[str, Any]]:
    """Every combination of FULL_PRODUCT_OPTIONS (the modules) that the hooks accept."""
    names = [name for name in FULL_PRODUCT_OPTIONS if name in COOKIECUTTER_JSON]
    every = (
        dict(zip(names, values, strict=True))
        for values in itertools.product(*(option_values(name) for name in names))
    )
    return [combo for combo in every if possible(combo)]


def combo_id(combo: Mapping[str, Any]) -> str:
    return ",".join(answer_key(key, value) for key, value in combo.items()) or "default"


# --- rendering hooks outside cookiecutter ---------------------------------------------


def default_context(extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The `cookiecutter` context `--no-input` would use (with `extra` answers)."""
    from cookiecutter.generate import generate_context
    from cookiecutter.prompt import prompt_for_config

    context = generate_context(
        context_file=str(REPO / "cookiecutter.json"), extra_context=dict(extra or {})
    )
    return dict(prompt_for_config(context, no_input=True))


def render_text(source: str, context: Mapping[str, Any]) -> str:
    """Render a template string exactly as cookiecutter renders a hook."""
    from cookiecutter.environment import StrictEnvironment

    full = {"cookiecutter": dict(context)}
    environment = StrictEnvironment(context=full, keep_trailing_newline=True)
    return environment.from_string(source).render(**full)


def rendered_hook(name: str, context: Mapping[str, Any] | None = None) -> str:
    source = (HOOKS_DIR / f"{name}.py").read_text(encoding="utf-8")
    return render_text(source, context if context is not None else default_context())


def load_manifest() -> dict[str, list[str]]:
    """The MANIFEST dict literal of hooks/post_gen_project.py, read with `ast`."""
    tree = ast.parse(rendered_hook("post_gen_project"))
    for node in tree.body:
        target: ast.expr
        if isinstance(node, ast.AnnAssign) and node.value is not None:
            target, value = node.target, node.value
        elif isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        else:
            continue
        if isinstance(target, ast.Name) and target.id == "MANIFEST":
            manifest = ast.literal_eval(value)
            assert isinstance(manifest, dict), "MANIFEST must be a dict literal"
            return manifest
    raise AssertionError("hooks/post_gen_project.py defines no MANIFEST dict literal")


# --- looking at renders ---------------------------------------------------------------


def project_files(project: Path) -> Iterator[Path]:
    """Every file of a render (skipping caches and virtual environments)."""
    skip = {".venv", "__pycache__", ".ruff_cache", ".mypy_cache", ".pytest_cache"}
    for path in sorted(project.rglob("*")):
        if path.is_file() and not skip.intersection(path.relative_to(project).parts):
            yield path


def relative_files(project: Path) -> set[str]:
    return {path.relative_to(project).as_posix() for path in project_files(project)}


def snapshot(project: Path) -> dict[str, tuple[int, str]]:
    """File -> (mode, sha256): equal snapshots mean nothing changed."""
    return {
        path.relative_to(project).as_posix(): (
            path.stat().st_mode,
            hashlib.sha256(path.read_bytes()).hexdigest(),
        )
        for path in project_files(project)
    }


def covered(relative: str, prefixes: Iterable[str]) -> bool:
    """Whether a relative file path is one of `prefixes` or lies under one of them."""
    return any(
        relative == prefix or relative.startswith(prefix.rstrip("/") + "/") for prefix in prefixes
    )


# --- CI files -------------------------------------------------------------------------

# `uses: owner/repo[/path]@<full commit SHA> # vX.Y.Z`: immutable, and it says which release.
PINNED_ACTION = re.compile(r"^\s*(?:- )?uses: [\w.-]+/[\w./-]+@[0-9a-f]{40} # v\d+(?:\.\d+){0,2}$")
USES = re.compile(r"^\s*(?:- )?uses:")


def unpinned_actions(workflow: Path) -> list[str]:
    """The `uses:` lines of a GitHub workflow that are not pinned to a commit and a tag."""
    return [
        f"{workflow.name}:{number}: {line.strip()}"
        for number, line in enumerate(workflow.read_text(encoding="utf-8").splitlines(), start=1)
        if USES.match(line) and not PINNED_ACTION.match(line)
    ]


def load_workflow(path: Path) -> dict[str, Any]:
    """A GitHub workflow as a dict; its `on:` key under "on" (YAML 1.1 reads it as True)."""
    workflow = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(workflow, dict), f"{path} is not a YAML mapping"
    if True in workflow:
        workflow["on"] = workflow.pop(True)
    return workflow


def write_permissions(permissions: object) -> set[str]:
    """The scopes a `permissions:` value grants write access to ("*" for write-all)."""
    if isinstance(permissions, str):
        return {"*"} if permissions == "write-all" else set()
    if isinstance(permissions, dict):
        return {scope for scope, access in permissions.items() if access == "write"}
    return set()
