"""A deterministic stand-in for a real model: for development, tests, demos and benchmarks.

The same messages always produce the same text; `max_tokens` is honoured, tokens are
counted, and `FAKE_LLM_TOKEN_LATENCY_MS` paces the output like a real model would.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import re
from collections.abc import AsyncIterator

from .base import ChatMessage, Completion, CompletionChunk, GenerationRequest, Usage

TOKEN = re.compile(r"\w+|[^\w\s]")
VOCABULARY = re.findall(
    r"\w+",
    "the model considers your question and answers with care about data systems latency "
    "tokens context memory streaming requests service design tradeoffs scale cache batch "
    "quality safety users prompts results inference throughput cost reliability clear "
    "simple robust async pipeline evaluation feedback signal pattern example detail",
)


def count_tokens(text: str) -> int:
    """Words and punctuation marks: close enough to a BPE count for a fake."""
    return len(TOKEN.findall(text))


def prompt_tokens(messages: tuple[ChatMessage, ...]) -> int:
    # Every message costs a few tokens of framing, as with chat templates.
    return sum(count_tokens(message.content) + 4 for message in messages)


def fake_tokens(request: GenerationRequest) -> tuple[list[str], bool]:
    """The tokens a reply consists of, and whether `max_tokens` cut it short."""
    seed = "\n".join(f"{m.role}:{m.content}" for m in request.messages) + request.model
    rng = random.Random(hashlib.sha256(seed.encode()).digest())  # noqa: S311 - not crypto
    natural_length = 12 + rng.randrange(40)
    prompt_words = [w for w in TOKEN.findall(request.messages[-1].content) if w.isalnum()]
    words = []
    for index in range(min(natural_length, request.max_tokens)):
        pool = prompt_words if prompt_words and rng.random() < 0.2 else VOCABULARY
        word = rng.choice(pool)
        words.append(word.capitalize() if index == 0 else word)
    text_tokens = [word if i == 0 else f" {word}" for i, word in enumerate(words)]
    truncated = natural_length > request.max_tokens
    if not truncated and text_tokens:
        text_tokens[-1] += "."
    return text_tokens, truncated


class FakeProvider:
    name = "fake"

    def __init__(self, *, model: str = "fake-model", token_latency_s: float = 0.0) -> None:
        self.model = model
        self.token_latency_s = token_latency_s

    def _model(self, request: GenerationRequest) -> str:
        return request.model or self.model

    async def complete(self, request: GenerationRequest) -> Completion:
        tokens, truncated = fake_tokens(request)
        if self.token_latency_s:
            await asyncio.sleep(self.token_latency_s * len(tokens))
        return Completion(
            text="".join(tokens),
            finish_reason="length" if truncated else "stop",
            usage=Usage(prompt_tokens(request.messages), len(tokens)),
            model=self._model(request),
        )

    async def stream(self, request: GenerationRequest) -> AsyncIterator[CompletionChunk]:
        tokens, truncated = fake_tokens(request)
        for token in tokens:
            if self.token_latency_s:
                await asyncio.sleep(self.token_latency_s)
            yield CompletionChunk(text=token)
        yield CompletionChunk(
            text="",
            finish_reason="length" if truncated else "stop",
            usage=Usage(prompt_tokens(request.messages), len(tokens)),
        )

    async def list_models(self) -> list[str]:
        return [self.model]

    async def readiness(self) -> str | None:
        return None

    async def aclose(self) -> None:
        return None
