"""Token counting without a model-specific vocabulary (no download at run time).

Words, numbers and punctuation marks each count as one token, and long words as one
per four characters: within a few percent of BPE tokenizers for English text, and
an upper bound for rate limiting. Counting a very large text is CPU-bound, so the
API runs it in the process pool (see `core/cpu.py`).
"""

from __future__ import annotations

import re

TOKEN = re.compile(r"\w+|[^\w\s]")


def count_tokens(text: str) -> int:
    return sum(max(1, (len(piece) + 3) // 4) for piece in TOKEN.findall(text))


def count_message_tokens(contents: list[str]) -> int:
    # Chat templates frame every message with a few tokens of their own.
    return sum(count_tokens(content) + 4 for content in contents)
