"""Jinja filters for the template: user answers written as literals a formatter keeps.

cookiecutter loads this module from the template repository (`_extensions` in
cookiecutter.json). Standard library and Jinja only: cookiecutter installs nothing.
"""

from __future__ import annotations

import json

from jinja2.ext import Extension

ESCAPES = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escaped(text: str, quote: str) -> str:
    out = []
    for char in text:
        if char in ESCAPES:
            out.append(ESCAPES[char])
        elif char == quote:
            out.append("\\" + quote)
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\x{ord(char):02x}")
        else:
            out.append(char)
    return "".join(out)


def python_string(value: object) -> str:
    """A Python string literal as `ruff format` writes it: double quotes unless single
    ones need fewer escapes; non-ASCII letters kept as they are."""
    text = str(value)
    quote = "'" if text.count('"') > text.count("'") else '"'
    return f"{quote}{_escaped(text, quote)}{quote}"


def toml_string(value: object) -> str:
    """A TOML basic string (JSON's escapes are TOML's, non-ASCII kept readable)."""
    return json.dumps(str(value), ensure_ascii=False)


class LiteralsExtension(Extension):
    def __init__(self, environment):  # type: ignore[no-untyped-def]
        super().__init__(environment)
        environment.filters["python_string"] = python_string
        environment.filters["toml_string"] = toml_string
