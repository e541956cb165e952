"""Token counting without a model-specific vocabulary (no download at run time).

Words, numbers and punctuation marks each count as one token, and long words as one
per four characters: within a few percent of BPE tokenizers for English text, and
an upper bound for rate limiting. Counting a very large text is CPU-bound, so the
API runs it in the process pool (see `core/cpu.py`).
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict

from .base import GenerationRequest, ImagePart

TOKEN = re.compile(r"\w+|[^\w\s]")
MESSAGE_FRAME = 4  # chat templates frame every message with a few tokens of their own
IMAGE_TOKENS = 85  # what OpenAI bills a low-detail image


def count_tokens(text: str) -> int:
    return sum(max(1, (len(piece) + 3) // 4) for piece in TOKEN.findall(text))


def request_tokens(request: GenerationRequest) -> int:
    """The prompt's tokens: messages, their tool calls and images, and the tool definitions."""
    total = 0
    for message in request.messages:
        total += MESSAGE_FRAME + count_tokens(message.text)
        total += sum(count_tokens(call.name + call.arguments) for call in message.tool_calls)
        if not isinstance(message.content, str):
            total += IMAGE_TOKENS * sum(isinstance(part, ImagePart) for part in message.content)
    if request.tools:
        total += count_tokens(json.dumps([asdict(tool) for tool in request.tools]))
    return total
