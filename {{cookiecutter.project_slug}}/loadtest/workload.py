"""What the load test sends: the caller's credential, prompts and a tool, read by each user."""

from __future__ import annotations

import itertools
import os
from typing import Any

# The bearer credential: an API key, or a token from POST /api/v1/auth/token.
API_KEY = os.environ.get("LOADTEST_API_KEY", "")
HEADERS = {"Authorization": f"Bearer {API_KEY}"} if API_KEY else {}
MAX_TOKENS = int(os.environ.get("LOADTEST_MAX_TOKENS", "32"))

PROMPTS = itertools.cycle(
    [
        "Summarise the benefits of connection pooling in two sentences.",
        "Write a haiku about a queue that never drains.",
        "Explain back-pressure to a new engineer.",
        "List three ways to make a stream resumable.",
    ]
)

WEATHER_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The current weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


def next_prompt() -> str:
    return next(PROMPTS)
