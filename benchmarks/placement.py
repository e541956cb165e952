"""Which CPUs each process may run on during a measurement (sched_setaffinity).

Measured on a 2-CPU machine, 3 runs each, coefficient of variation of the
proxy / native throughput ratios: isolate 5 % / 7 %, split 4 % / 11 %, none
11 % / 37 %. So the default is isolate:

- isolate: the server under test gets CPUs of its own (one per worker); the load
  generator and every other process (the upstream behind a proxy, idle servers)
  share the rest;
- split: every server on the server CPUs, the load generator on the rest;
- none: no pinning.

Sequential measurements (time to first token, cache latency) have no server under
test: they are placed as in split, so that the direct path and the paths through a
server cross between the CPUs equally often.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from contextlib import suppress
from dataclasses import dataclass

from .measure import process_tree

MODES = ("isolate", "split", "none")


@dataclass(frozen=True)
class Layout:
    """CPUs for the server under test and for everything else; None: unpinned."""

    server: frozenset[int] | None
    rest: frozenset[int] | None
    note: str = ""

    @property
    def pinned(self) -> bool:
        return self.server is not None


def plan(cpus: Sequence[int], mode: str, server_cpus: int = 1) -> Layout:
    """Split `cpus` for a server that needs `server_cpus` of them.

    A layout that would leave nothing for the load generator is not pinned at all,
    and says so in its note (its figures then compete for the same CPUs).
    """
    if mode not in MODES:
        raise ValueError(f"unknown placement {mode!r}; choose from {', '.join(MODES)}")
    if mode == "none":
        return Layout(None, None)
    if len(cpus) < server_cpus + 1:
        need = f"{server_cpus} server CPU(s) and 1 for the load need {server_cpus + 1}"
        return Layout(None, None, f"unpinned: {need}, this machine gives {len(cpus)}")
    # The last CPUs for the server: CPU 0 usually takes more interrupts.
    server = frozenset(cpus[-server_cpus:])
    return Layout(server, frozenset(cpus[:-server_cpus]))


def pin(pids: Iterable[int], cpus: Iterable[int] | None, all_cpus: Iterable[int]) -> None:
    """Pin each process tree to `cpus` (None: back to all CPUs)."""
    target = set(all_cpus if cpus is None else cpus)
    for root in pids:
        for pid in process_tree(root):
            with suppress(ProcessLookupError, PermissionError, OSError):
                os.sched_setaffinity(pid, target)


def usable_cpus() -> list[int]:
    return sorted(os.sched_getaffinity(0))
