"""`make openapi`: openapi.json, the document client SDKs are generated from, kept current."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from {{ cookiecutter.project_slug }}.__main__ import main
from {{ cookiecutter.project_slug }}.api.openapi_file import document_text
from {{ cookiecutter.project_slug }}.main import create_app

from .conftest import make_settings

PROJECT_FILE = Path(__file__).resolve().parents[1] / "openapi.json"
STALE = "openapi.json is stale: run `make openapi` and commit it"


def test_the_command_writes_the_apps_document_sorted_and_indented(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # A developer's environment does not reach the file.
    monkeypatch.setenv("CORS_ORIGINS", "http://localhost:3000")
    monkeypatch.setenv("MAX_BODY_BYTES", "1000")
    monkeypatch.chdir(tmp_path)
    assert main(["openapi"]) == 0
    assert capsys.readouterr().out == "wrote openapi.json\n"

    text = (tmp_path / "openapi.json").read_text(encoding="utf-8")
    written = json.loads(text)
    assert written == create_app(make_settings()).openapi()
    assert text == json.dumps(written, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    assert "/api/v1/generate" in written["paths"]
    assert "servers" not in written  # nothing names the machine it was written on


def test_check_passes_on_a_fresh_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "openapi.json"
    assert main(["openapi", "--output", str(path)]) == 0
    capsys.readouterr()
    assert main(["openapi", "--output", str(path), "--check"]) == 0
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("before", ["stale", "missing"])
def test_check_fails_on_a_stale_or_missing_file(
    before: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    if before == "stale":
        document = json.loads(document_text())
        del document["paths"]["/api/v1/generate"]
        (tmp_path / "openapi.json").write_text(json.dumps(document, indent=2), encoding="utf-8")
    assert main(["openapi", "--check"]) == 1
    assert capsys.readouterr().err == f"{STALE}\n"


def test_operations_and_schemas_have_the_names_generated_clients_give_them() -> None:
    document = json.loads(document_text())
    ids = [op["operationId"] for ops in document["paths"].values() for op in ops.values()]
    assert len(ids) == len(set(ids)), ids
    assert document["paths"]["/api/v1/generate"]["post"]["operationId"] == "generate"
    # Two models of one name get module-qualified names, which generators trip over.
    qualified = [name for name in document["components"]["schemas"] if "__" in name]
    assert not qualified, qualified


def test_the_committed_openapi_json_is_current() -> None:
    if not PROJECT_FILE.exists():
        pytest.skip("no openapi.json in the project yet: `make openapi` writes it")
    assert PROJECT_FILE.read_text(encoding="utf-8") == document_text(), STALE
