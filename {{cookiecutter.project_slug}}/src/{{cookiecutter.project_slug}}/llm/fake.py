"""A deterministic stand-in for a real model: for development, tests, demos and benchmarks.

The same messages always produce the same text; `max_tokens` is honoured, tokens are
counted, and `FAKE_LLM_TOKEN_LATENCY_MS` paces the output like a real model would.
For tests and demos it can be told to fail: `FAKE_LLM_FAILURE_RATE` is the share of
calls that fail before the first token, `FAKE_LLM_FAIL_AFTER_TOKENS` cuts every
stream after that many tokens.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import re
from collections.abc import AsyncGenerator

from .base import ChatMessage, Completion, CompletionChunk, GenerationRequest, Usage
from .errors import UpstreamBadResponseError, UpstreamUnavailableError
from .tokens import count_message_tokens

VOCABULARY = re.findall(
    r"\w+",
    "the model considers your question and answers with care about data systems latency "
    "tokens context memory streaming requests service design tradeoffs scale cache batch "
    "quality safety users prompts results inference throughput cost reliability clear "
    "simple robust async pipeline evaluation feedback signal pattern example detail",
)


def prompt_tokens(messages: tuple[ChatMessage, ...]) -> int:
    return count_message_tokens([message.content for message in messages])


def fake_tokens(request: GenerationRequest) -> tuple[list[str], bool]:
    """The tokens a reply consists of, and whether `max_tokens` cut it short."""
    seed = "\n".join(f"{m.role}:{m.content}" for m in request.messages) + request.model
    rng = random.Random(hashlib.sha256(seed.encode()).digest())  # noqa: S311 - not crypto
    natural_length = 12 + rng.randrange(40)
    prompt_words = re.findall(r"\w+", request.messages[-1].content)
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

    def __init__(
        self,
        *,
        model: str = "fake-model",
        token_latency_s: float = 0.0,
        failure_rate: float = 0.0,
        fail_after_tokens: int | None = None,
    ) -> None:
        self.model = model
        self.token_latency_s = token_latency_s
        self.failure_rate = failure_rate
        self.fail_after_tokens = fail_after_tokens
        self._chance = random.Random()  # noqa: S311 - failure injection, not crypto
        self.calls = 0

    def _maybe_fail(self) -> None:
        self.calls += 1
        if self.failure_rate and self._chance.random() < self.failure_rate:
            raise UpstreamUnavailableError(
                "The fake model failed on purpose (FAKE_LLM_FAILURE_RATE)."
            )

    def _model(self, request: GenerationRequest) -> str:
        return request.model or self.model

    async def complete(self, request: GenerationRequest) -> Completion:
        self._maybe_fail()
        tokens, truncated = fake_tokens(request)
        if self.token_latency_s:
            await asyncio.sleep(self.token_latency_s * len(tokens))
        return Completion(
            text="".join(tokens),
            finish_reason="length" if truncated else "stop",
            usage=Usage(prompt_tokens(request.messages), len(tokens)),
            model=self._model(request),
        )

    async def stream(self, request: GenerationRequest) -> AsyncGenerator[CompletionChunk, None]:
        self._maybe_fail()
        tokens, truncated = fake_tokens(request)
        for index, token in enumerate(tokens):
            if index == self.fail_after_tokens:
                raise UpstreamBadResponseError(
                    f"The fake model cut the stream after {index} tokens "
                    "(FAKE_LLM_FAIL_AFTER_TOKENS)."
                )
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
