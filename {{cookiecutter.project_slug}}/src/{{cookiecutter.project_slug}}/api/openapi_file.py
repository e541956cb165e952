"""`openapi.json`: the service's OpenAPI document in a file, for client generators.

`make openapi` (`python -m {{ cookiecutter.project_slug }} openapi`) writes it, and
`--check` says whether the committed file is still current. The document is the same
on every machine: the app is built from the settings' defaults alone (no environment
variable, no `.env`), and the JSON has sorted keys, two-space indents and a final
newline, so that a diff of the file shows what changed in the API and nothing else.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from ..main import create_app
from ..settings import Settings


class DefaultSettings(Settings):
    """The settings as the code declares them: nothing read from outside."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


def document() -> dict[str, Any]:
    return create_app(DefaultSettings()).openapi()


def document_text() -> str:
    return json.dumps(document(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def is_current(path: Path, text: str) -> bool:
    try:
        return path.read_text(encoding="utf-8") == text
    except FileNotFoundError:
        return False


def write_or_check(path: Path, *, check: bool) -> int:
    """Write the document to `path`; with `check`, only compare: 0 current, 1 stale."""
    text = document_text()
    if check:
        if is_current(path, text):
            return 0
        print(f"{path} is stale: run `make openapi` and commit it", file=sys.stderr)
        return 1
    path.write_text(text, encoding="utf-8", newline="\n")
    print(f"wrote {path}")
    return 0
