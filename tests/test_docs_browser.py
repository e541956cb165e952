"""/docs and /redoc in a real browser, with every host but the service's own blocked.

The default render (its shared fresh venv) is served on a loopback port; headless
Chromium loads each page with every host name but 127.0.0.1 mapped to "not found" and
a dead proxy for the rest, so a script from a CDN could not load. The DOM after the
scripts ran must show every operation of /openapi.json as Swagger UI and ReDoc render
them, and the service's access log the assets it served.

A template test rather than a rendered one: the rendered suite already checks that
the pages name only files the service serves (tests/test_docs.py); running them needs
a browser, which a generated project's CI should not have to install. Chromium is
Debian's `chromium` package, installed here with apt-get when missing; in CI (CI set)
a Chromium that cannot be had fails the test instead of skipping it.
"""

from __future__ import annotations

import fcntl
import html
import json
import os
import re
import shutil
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.installs import Installed
from tests.support import RecordProperty, child_env, describe, run, timed
from tests.test_schemathesis import served

pytestmark = pytest.mark.install

# Debian's package first; a CI image may bring Chromium or Chrome under another name.
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
LOOPBACK_ONLY = (
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    "--proxy-server=http://127.0.0.1:9",  # IP addresses too; loopback bypasses proxies
)
# Virtual time (ms) the page's scripts get before the DOM is dumped; network waits are real.
BUDGET_MS = 15_000
SWAGGER_SECTION = re.compile(r'id="operations-([^"]+)"')  # a tag's, or an operation's
REDOC_OPERATION = re.compile(r'id="tag/([^"/]+)/operation/([^"/]+)"')
DATA_PATH = re.compile(r'data-path="([^"]+)"')


def find_browser() -> str | None:
    return next((path for name in BROWSERS if (path := shutil.which(name))), None)


def apt_get(*args: str) -> str:
    """An apt-get command's failure report, or "" when it succeeded."""
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    env = child_env(DEBIAN_FRONTEND="noninteractive")
    result = run([*sudo, "apt-get", *args], env=env, timeout=900)
    return describe(result) if result.returncode else ""


@pytest.fixture(scope="session")
def chromium(shared_tmp: Path) -> str:
    """A headless-capable Chromium: the machine's, else Debian's package installed once."""
    with (shared_tmp / "chromium.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one apt-get at a time across xdist workers
        found = find_browser()
        if found is None:
            install = ("install", "-y", "-q", "--no-install-recommends", "chromium")
            failure = apt_get(*install)
            if failure:  # the package lists may be missing or old
                failure = apt_get("update", "-q") or apt_get(*install)
            found = find_browser()
            if found is None:
                message = f"no Chromium for the /docs browser test: {failure or 'not on PATH'}"
                if os.environ.get("CI"):
                    pytest.fail(message)
                pytest.skip(message)
    return found


def dump_dom(browser: str, url: str, profile: Path) -> str:
    """The page's DOM once its scripts have run (headless, loopback only)."""
    result = run(
        [
            browser,
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-extensions",
            "--disable-background-networking",
            "--no-first-run",
            f"--user-data-dir={profile}",
            *LOOPBACK_ONLY,
            f"--virtual-time-budget={BUDGET_MS}",
            "--dump-dom",
            url,
        ],
        timeout=90,
    )
    assert result.returncode == 0, describe(result)
    return result.stdout


def operations(base: str) -> dict[tuple[str, str], dict[str, Any]]:
    """(tag, operationId) -> operation, for every operation /openapi.json documents."""
    with urllib.request.urlopen(f"{base}/openapi.json", timeout=10) as response:  # noqa: S310
        document = json.load(response)
    return {
        (operation["tags"][0], operation["operationId"]): operation
        for methods in document["paths"].values()
        for operation in methods.values()
    }


def served_paths(log: Path) -> dict[str, int]:
    """Path -> status of each request in the service's JSON access log."""
    seen = {}
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(entry, dict) and "path" in entry and "status" in entry:
            seen[entry["path"]] = entry["status"]
    return seen


def test_docs_and_redoc_render_every_operation_from_the_services_own_assets(
    chromium: str, default_install: Installed, tmp_path: Path, record_property: RecordProperty
) -> None:
    log = tmp_path / "server.log"
    # Access lines are INFO, as JSON; the docs need no credentials.
    with served(default_install, log, LOG_LEVEL="INFO", LOG_FORMAT="json") as base:
        documented = operations(base)
        swagger, seconds = timed(lambda: dump_dom(chromium, f"{base}/docs", tmp_path / "a"))
        record_property("timing: docs browser: /docs in headless Chromium", f"{seconds:.2f} s")
        redoc, seconds = timed(lambda: dump_dom(chromium, f"{base}/redoc", tmp_path / "b"))
        record_property("timing: docs browser: /redoc in headless Chromium", f"{seconds:.2f} s")
    assert ("generation", "generate") in documented, sorted(documented)

    # Swagger UI: an opblock per operation, named by tag and id, with its path and summary.
    assert 'class="swagger-ui"' in swagger, swagger[:2000]
    tags = {f"tag-{tag}" for tag, _ in documented}
    blocks = {f"{tag}-{operation_id}" for tag, operation_id in documented}
    assert set(SWAGGER_SECTION.findall(swagger)) == tags | blocks, swagger[:2000]
    assert "/api/v1/generate" in DATA_PATH.findall(swagger)
    for operation in documented.values():
        summary = html.escape(operation["summary"], quote=False)
        assert f'opblock-summary-description">{summary}<' in swagger, operation

    # ReDoc: a section per operation, with its summary as the heading.
    assert set(REDOC_OPERATION.findall(redoc)) == set(documented), redoc[:2000]
    for operation in documented.values():
        summary = re.escape(html.escape(operation["summary"], quote=False))
        assert re.search(rf"</a>{summary}\s*</h2>", redoc), operation

    # Every script, style and icon came from the service itself.
    statuses = served_paths(log)
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js"):
        assert statuses.get(f"/docs/assets/{asset}") == 200, statuses
    assert statuses.get("/openapi.json") == 200, statuses
