"""Client SDKs: a typed Python client generated from a render's openapi.json works.

As the rendered README says: `python -m ai_service openapi` (what `make openapi` runs)
writes openapi.json, openapi-python-client generates a client package from it, and
that package, type-checked with `mypy --strict` and imported in a fresh interpreter,
calls the default render served on a loopback port and gets typed models back.
The default install is shared (tests/installs.py): everything here is written to
tmp_path.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.installs import Installed
from tests.support import BIN, RecordProperty, child_env, describe, run, timed, tool
from tests.test_schemathesis import SLUG, credentials, served

pytestmark = pytest.mark.install

# The package openapi-python-client names after the document's title ("AI Service").
PACKAGE = "ai_service_client"
# What the README shows a caller doing with the generated package.
CALLER = '''\
"""Calls the served render through the generated client; prints what came back."""

import json
import sys

from ai_service_client import AuthenticatedClient
from ai_service_client.api.generation import generate
from ai_service_client.api.health import live
from ai_service_client.models import ErrorResponse, GenerateRequest, GenerateResponse, Liveness


def main(base_url: str, token: str) -> None:
    with AuthenticatedClient(base_url=base_url, token=token) as client:
        answer = generate.sync(client=client, body=GenerateRequest(prompt="Say hi", max_tokens=8))
        alive = live.sync(client=client)
    with AuthenticatedClient(base_url=base_url, token="sk-not-a-key") as stranger:
        refused = generate.sync_detailed(client=stranger, body=GenerateRequest(prompt="hi"))
    assert isinstance(answer, GenerateResponse), answer
    assert isinstance(alive, Liveness), alive
    assert isinstance(refused.parsed, ErrorResponse), refused
    print(
        json.dumps(
            {
                "answer": type(answer).__name__,
                "text": answer.text,
                "tokens_used": answer.tokens_used,
                "finish_reason": answer.finish_reason.value,
                "total_tokens": answer.usage.total_tokens,
                "alive": type(alive).__name__,
                "status": alive.status,
                "refused": int(refused.status_code),
                "error_type": refused.parsed.error.type_,
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
'''


def test_a_generated_python_client_calls_the_served_render(
    default_install: Installed, tmp_path: Path, record_property: RecordProperty
) -> None:
    document = tmp_path / "openapi.json"
    written = default_install.run(
        default_install.bin / "python", "-m", SLUG, "openapi", "--output", document
    )
    assert written.returncode == 0, describe(written)

    # The command the README gives; it runs ruff over what it writes (the dev venv's).
    env = child_env(PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    clients = tmp_path / "clients" / "python"
    command: list[str | Path] = [tool("openapi-python-client"), "generate", "--path", document]
    generated, seconds = timed(
        lambda: run([*command, "--output-path", clients, "--meta", "uv"], env=env, timeout=300)
    )
    record_property("timing: sdk: openapi-python-client generate", f"{seconds:.2f} s")
    assert generated.returncode == 0, describe(generated)
    # A warning means a part of the API left out of the client (a schema it cannot read).
    assert "Warning" not in generated.stdout + generated.stderr, describe(generated)
    assert (clients / PACKAGE / "py.typed").exists(), describe(generated)

    caller = tmp_path / "use_client.py"
    caller.write_text(CALLER, encoding="utf-8")
    checked, seconds = timed(
        lambda: run(
            [tool("mypy"), "--strict", "--cache-dir", tmp_path / ".mypy_cache", caller],
            env={**env, "MYPYPATH": str(clients)},
            cwd=tmp_path,
        )
    )
    record_property("timing: sdk: mypy --strict on a caller of the client", f"{seconds:.2f} s")
    assert checked.returncode == 0, describe(checked)

    auth_env, bearer = credentials(default_install)
    with served(default_install, tmp_path / "server.log", **auth_env) as base:
        called = run(
            [BIN / "python", caller, base, bearer],
            env={**env, "PYTHONPATH": str(clients)},
            cwd=tmp_path,
            timeout=60,
        )
    assert called.returncode == 0, describe(called)
    seen = json.loads(called.stdout)
    assert seen["answer"] == "GenerateResponse", seen
    assert isinstance(seen["text"], str), seen
    assert seen["text"], seen
    assert seen["tokens_used"] > 0, seen
    assert seen["total_tokens"] >= seen["tokens_used"], seen
    assert seen["finish_reason"] in {"stop", "length"}, seen
    assert (seen["alive"], seen["status"]) == ("Liveness", "ok"), seen
    assert (seen["refused"], seen["error_type"]) == (401, "authentication_error"), seen
