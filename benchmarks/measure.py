"""What the processes cost, from the kernel's own counters in /proc (Linux).

CPU time is user + system time of a process and its descendants (a uvicorn supervisor
and its workers, a process pool), read from /proc/PID/stat; memory is the resident set
from /proc/PID/status. Both are sampled around a measured window: CPU seconds over the
requests of that window is the CPU cost per request, a figure that moves far less
between machines than requests per second.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable, Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path

PROC = Path("/proc")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def parse_stat(text: str) -> tuple[int, int]:
    """(utime, stime) in clock ticks from the text of /proc/PID/stat.

    The command name (field 2) is in parentheses and may itself hold spaces and
    parentheses: the fields after it are counted from the last ')'.
    """
    fields = text.rsplit(")", 1)[1].split()
    # fields[0] is the state (field 3); utime and stime are fields 14 and 15.
    return int(fields[11]), int(fields[12])


def parse_status(text: str) -> dict[str, int]:
    """The memory lines of /proc/PID/status (VmRSS, VmHWM, ...) in bytes."""
    values: dict[str, int] = {}
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        parts = rest.split()
        if name.startswith(("Vm", "Rss")) and len(parts) == 2 and parts[1] == "kB":
            values[name] = int(parts[0]) * 1024
    return values


def parse_machine_busy(text: str) -> float:
    """Busy CPU seconds of the whole machine since boot, from the text of /proc/stat."""
    fields = [int(x) for x in text.splitlines()[0].split()[1:9]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields) - idle) / CLOCK_TICKS


def children(pid: int) -> list[int]:
    found: list[int] = []
    with suppress(OSError):
        for task in (PROC / str(pid) / "task").iterdir():
            with suppress(OSError):
                found += [int(x) for x in (task / "children").read_text().split()]
    return found


def process_tree(pid: int) -> list[int]:
    """pid and all its descendants."""
    pids, frontier = [pid], [pid]
    while frontier:
        kids = children(frontier.pop())
        pids += kids
        frontier += kids
    return pids


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of one process (0 once it is gone)."""
    with suppress(OSError, IndexError, ValueError):
        utime, stime = parse_stat((PROC / str(pid) / "stat").read_text())
        return (utime + stime) / CLOCK_TICKS
    return 0.0


def tree_cpu_seconds(pid: int) -> dict[int, float]:
    """CPU seconds of pid and of each descendant, by pid."""
    return {member: cpu_seconds(member) for member in process_tree(pid)}


def memory(pid: int) -> dict[str, int]:
    """VmRSS, VmHWM (peak resident set), ... of one process, in bytes ({} once it is gone)."""
    with suppress(OSError):
        return parse_status((PROC / str(pid) / "status").read_text())
    return {}


def rss_bytes(pid: int) -> int:
    return memory(pid).get("VmRSS", 0)


def machine_busy() -> float:
    return parse_machine_busy((PROC / "stat").read_text())


@dataclass
class Snapshot:
    """CPU seconds of each watched process tree (by member pid), and of the machine."""

    at: float
    trees: dict[str, dict[int, float]]
    machine: float

    @classmethod
    def take(cls, watched: Mapping[str, Iterable[int]]) -> Snapshot:
        trees: dict[str, dict[int, float]] = {}
        for name, roots in watched.items():
            trees[name] = {}
            for root in roots:
                trees[name].update(tree_cpu_seconds(root))
        return cls(at=time.monotonic(), trees=trees, machine=machine_busy())


def cpu_used(before: Snapshot, after: Snapshot) -> dict[str, float]:
    """CPU seconds each watched tree used between two snapshots, plus "others".

    A member that appeared in between (a worker that started) counts from zero, one
    that exited is lost: watch trees whose members live through the window.
    "others" is whatever else the machine did meanwhile (other processes, the
    kernel's loopback networking), never below zero.
    """
    used: dict[str, float] = {}
    for name, members in after.trees.items():
        old = before.trees.get(name, {})
        used[name] = sum(max(0.0, cpu - old.get(pid, 0.0)) for pid, cpu in members.items())
    used["others"] = max(0.0, after.machine - before.machine - sum(used.values()))
    return used


@dataclass
class RssSampler:
    """Samples the resident set of process trees in a thread; keeps each pid's peak.

    VmHWM would give the peak since a process started; sampling gives the peak of
    this window only (every `interval_s`, so a spike shorter than that may be missed).
    """

    watched: Mapping[str, int]
    interval_s: float = 0.05
    peaks: dict[str, dict[int, int]] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def sample(self) -> None:
        for name, root in self.watched.items():
            peaks = self.peaks.setdefault(name, {})
            for pid in process_tree(root):
                peaks[pid] = max(peaks.get(pid, 0), rss_bytes(pid))

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.sample()

    def start(self) -> None:
        self.sample()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.sample()

    def peak_process(self, name: str) -> int:
        """The largest resident set any one process of the tree reached (a worker)."""
        return max(self.peaks.get(name, {}).values(), default=0)

    def peak_tree(self, name: str) -> int:
        """The sum of each member's peak: an upper bound for the whole tree."""
        return sum(self.peaks.get(name, {}).values())
