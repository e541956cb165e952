"""Write `.env` from `.env.example` with fresh random secrets; an existing `.env` is kept.

`make install` and `make run` run it when `.env` is missing (`python3 scripts/init_env.py`
does it alone). Standard library only: it runs before the virtual environment exists.
Each line of `.env.example` whose value is `change-me` gets a random value of its own.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
from collections.abc import Sequence
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
PLACEHOLDER = "change-me"


def secret_for(name: str) -> str:
    if name == "API_KEYS":
        return f"sk-{secrets.token_urlsafe(32)}"
    if name == "JWT_SECRET":
        return secrets.token_urlsafe(48)  # 64 characters: long enough for HS512 too
    return secrets.token_urlsafe(24)


def filled(example: str) -> str:
    """`example` with every `NAME=change-me` line given a random value."""
    lines = []
    for line in example.splitlines():
        name, equals, value = line.partition("=")
        if equals and not line.startswith("#") and value == PLACEHOLDER:
            line = f"{name}={secret_for(name)}"
        lines.append(line)
    return "\n".join(lines) + "\n"


def write_env(env: Path, example: Path) -> bool:
    """Write `env` (readable by its owner only) unless it exists; whether it was written."""
    text = filled(example.read_text(encoding="utf-8"))
    try:
        descriptor = os.open(env, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(text)
    return True


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write .env from .env.example.")
    parser.add_argument("--env", type=Path, default=PROJECT / ".env", help="file to write")
    parser.add_argument(
        "--example", type=Path, default=PROJECT / ".env.example", help="file to copy"
    )
    args = parser.parse_args(argv)
    if write_env(args.env, args.example):
        print(f"Wrote {args.env} with fresh random secrets: keep it out of version control.")
    else:
        print(f"{args.env} exists: kept as it is.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
