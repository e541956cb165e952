"""The folder where worker processes keep their metrics, so that a scrape of any one sums all.

In prometheus_client's multiprocess mode each process writes its samples to files in
PROMETHEUS_MULTIPROC_DIR and GET /metrics reads them all. The folder must be named before
the worker processes start, and empty then: files of an earlier run would count again.
Standard library only: prometheus_client reads the variable once, when first imported.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"


def prepare_metrics_dir(workers: int) -> None:
    """Empty PROMETHEUS_MULTIPROC_DIR when set; with several workers and none set, make
    one for this run (removed at exit)."""
    named = os.environ.get(MULTIPROC_DIR)
    if named:
        folder = Path(named)
        folder.mkdir(parents=True, exist_ok=True)
        for leftover in folder.glob("*.db"):
            leftover.unlink()
    elif workers > 1:
        made = tempfile.mkdtemp(prefix="{{ cookiecutter.project_slug }}-metrics-")
        atexit.register(shutil.rmtree, made, ignore_errors=True)
        os.environ[MULTIPROC_DIR] = made
