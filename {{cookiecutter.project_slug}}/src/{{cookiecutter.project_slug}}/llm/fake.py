"""A deterministic stand-in for a real model: for development, tests, demos and benchmarks.

The same request always produces the same answer. It honours `max_tokens`, `stop`,
`n` and `seed`, counts tokens, and `FAKE_LLM_TOKEN_LATENCY_MS` paces the output like a
real model. It plays the agent loop offline: given tools and a last message that names
one, it calls it with arguments that match the tool's schema (all the tools named, or
the one `tool_choice` forces); after a tool result it answers in text. With
`response_format` it writes JSON (matching the `json_schema` when there is one). It
refuses what it cannot do (log probabilities, logit bias, penalties, reasoning).

For tests and demos it can be told to fail: `FAKE_LLM_FAILURE_RATE` is the share of
calls that fail before the first token, `FAKE_LLM_FAIL_AFTER_TOKENS` cuts every
stream after that many tokens.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import random
import re
from collections.abc import AsyncGenerator
from dataclasses import dataclass

from .base import (
    Choice,
    Completion,
    CompletionChunk,
    EmbeddingRequest,
    Embeddings,
    FinishReason,
    GenerationRequest,
    NamedToolChoice,
    ToolCall,
    ToolCallDelta,
    ToolDefinition,
    Usage,
)
from .errors import (
    UnsupportedParameterError,
    UpstreamBadResponseError,
    UpstreamUnavailableError,
)
from .schema_instances import instance
from .tokens import count_tokens, request_tokens

FAKE_EMBEDDING_MODEL = "fake-embedding"
FAKE_EMBEDDING_DIMENSIONS = 256
VOCABULARY = re.findall(
    r"\w+",
    "the model considers your question and answers with care about data systems latency "
    "tokens context memory streaming requests service design tradeoffs scale cache batch "
    "quality safety users prompts results inference throughput cost reliability clear "
    "simple robust async pipeline evaluation feedback signal pattern example detail",
)
# Parameters of OpenAI's API that change nothing a fake answer could show.
NO_EFFECT_EXTRAS = frozenset(
    {
        "store",
        "service_tier",
        "prompt_cache_key",
        "prompt_cache_retention",
        "safety_identifier",
        "verbosity",
    }
)
ARGUMENT_PIECE = 12  # characters of tool-call arguments per streamed chunk


@dataclass(frozen=True, slots=True)
class Answer:
    """One choice as the fake writes it: text pieces (tokens) or tool calls."""

    pieces: list[str]
    tool_calls: list[ToolCall]
    finish_reason: FinishReason

    @property
    def completion_tokens(self) -> int:
        if self.tool_calls:
            return sum(count_tokens(call.name + call.arguments) for call in self.tool_calls)
        return len(self.pieces)


def rng_for(request: GenerationRequest, index: int) -> random.Random:
    seed = "\n".join(f"{m.role}:{m.text}" for m in request.messages)
    seed += f"|{request.model}|{request.seed}|{index}"
    return random.Random(hashlib.sha256(seed.encode()).digest())  # noqa: S311 - not crypto


def words_of(text: str) -> list[str]:
    return re.findall(r"[^\W\d_]{3,}", text)


def sentence(request: GenerationRequest, rng: random.Random) -> tuple[list[str], bool]:
    """Text tokens derived from the prompt, and whether `max_tokens` cut them short."""
    natural_length = 12 + rng.randrange(40)
    prompt_words = re.findall(r"\w+", request.prompt)
    words = []
    for index in range(min(natural_length, request.max_tokens)):
        pool = prompt_words if prompt_words and rng.random() < 0.2 else VOCABULARY
        word = rng.choice(pool)
        words.append(word.capitalize() if index == 0 else word)
    pieces = [word if i == 0 else f" {word}" for i, word in enumerate(words)]
    truncated = natural_length > request.max_tokens
    if not truncated and pieces:
        pieces[-1] += "."
    return pieces, truncated


def cut_at_stop(pieces: list[str], stop: tuple[str, ...]) -> tuple[list[str], bool]:
    """The pieces up to the first stop sequence (left out, as OpenAI does)."""
    text, kept = "", []
    for piece in pieces:
        joined = text + piece
        hits = [joined.find(s, max(0, len(text) - len(s))) for s in stop]
        found = [at for at in hits if at >= 0]
        if found:
            rest = joined[: min(found)][len(text) :]
            if rest:
                kept.append(rest)
            return kept, True
        kept.append(piece)
        text = joined
    return kept, False


def tools_to_call(request: GenerationRequest) -> list[ToolDefinition]:
    """The tools this turn calls: none after a tool result or with tool_choice "none"."""
    if not request.tools or request.tool_choice == "none":
        return []
    if request.messages and request.messages[-1].role == "tool":
        return []  # the results are in: answer in text
    by_name = {tool.name: tool for tool in request.tools}
    if isinstance(request.tool_choice, NamedToolChoice):
        return [by_name[request.tool_choice.name]] if request.tool_choice.name in by_name else []
    prompt = request.prompt.lower()
    named = sorted(
        (tool for tool in request.tools if mentions(prompt, tool.name)),
        key=lambda tool: first_mention(prompt, tool.name),
    )
    if request.parallel_tool_calls is False:
        named = named[:1]
    if not named and request.tool_choice == "required":
        named = [request.tools[0]]
    return named


def mentions(prompt: str, name: str) -> bool:
    return first_mention(prompt, name) < len(prompt)


def first_mention(prompt: str, name: str) -> int:
    spellings = {name.lower(), name.lower().replace("_", " "), name.lower().replace("-", " ")}
    found = [prompt.find(spelling) for spelling in spellings]
    return min([at for at in found if at >= 0], default=len(prompt))


def answer(request: GenerationRequest, index: int) -> Answer:
    rng = rng_for(request, index)
    words = words_of(request.prompt) or VOCABULARY
    calls = tools_to_call(request)
    if calls:
        digest = hashlib.sha256(f"{request.prompt}|{index}".encode()).hexdigest()
        return Answer(
            pieces=[],
            tool_calls=[
                ToolCall(
                    id=f"call_{digest[n * 8 : n * 8 + 24]}",
                    name=tool.name,
                    arguments=json.dumps(instance(tool.parameters, rng, words)),
                )
                for n, tool in enumerate(calls)
            ],
            finish_reason="tool_calls",
        )
    response_format = request.response_format
    if response_format is not None and response_format.type != "text":
        if response_format.type == "json_schema" and response_format.json_schema:
            document = instance(response_format.json_schema, rng, words)
        else:
            document = {"answer": " ".join(rng.choice(words) for _ in range(6))}
        text = json.dumps(document)
        pieces = [text[at : at + 8] for at in range(0, len(text), 8)]
        # JSON is not cut short: a truncated document would not parse.
        return Answer(pieces, [], "stop")
    pieces, truncated = sentence(request, rng)
    pieces, stopped = cut_at_stop(pieces, request.stop) if request.stop else (pieces, False)
    return Answer(pieces, [], "stop" if stopped or not truncated else "length")


class FakeProvider:
    name = "fake"

    def __init__(
        self,
        *,
        token_latency_s: float = 0.0,
        failure_rate: float = 0.0,
        fail_after_tokens: int | None = None,
    ) -> None:
        self.token_latency_s = token_latency_s
        self.failure_rate = failure_rate
        self.fail_after_tokens = fail_after_tokens
        self._chance = random.Random()  # noqa: S311 - failure injection, not crypto
        self.calls = 0

    def check(self, request: GenerationRequest) -> None:
        if request.logprobs or request.top_logprobs:
            raise UnsupportedParameterError("logprobs", "The fake model has no log probabilities.")
        if request.logit_bias:
            raise UnsupportedParameterError("logit_bias")
        for penalty in ("presence_penalty", "frequency_penalty"):
            if getattr(request, penalty):
                raise UnsupportedParameterError(penalty)
        if request.reasoning_effort is not None:
            raise UnsupportedParameterError(
                "reasoning_effort", "The fake model is not a reasoning model."
            )
        for param in sorted(set(request.extra) - NO_EFFECT_EXTRAS):
            raise UnsupportedParameterError(param)
        if isinstance(request.tool_choice, NamedToolChoice) and request.tool_choice.name not in {
            tool.name for tool in request.tools
        }:
            raise UnsupportedParameterError(
                "tool_choice", f"tool_choice names '{request.tool_choice.name}', not in tools."
            )

    def _maybe_fail(self) -> None:
        self.calls += 1
        if self.failure_rate and self._chance.random() < self.failure_rate:
            raise UpstreamUnavailableError(
                "The fake model failed on purpose (FAKE_LLM_FAILURE_RATE)."
            )

    async def complete(self, request: GenerationRequest) -> Completion:
        self._maybe_fail()
        answers = [answer(request, index) for index in range(request.n)]
        if self.token_latency_s:
            longest = max(max(len(a.pieces), len(a.tool_calls)) for a in answers)
            await asyncio.sleep(self.token_latency_s * longest)
        choices = tuple(
            Choice(
                index=index,
                text="".join(a.pieces),
                finish_reason=a.finish_reason,
                tool_calls=tuple(a.tool_calls),
            )
            for index, a in enumerate(answers)
        )
        usage = Usage(request_tokens(request), sum(a.completion_tokens for a in answers))
        return Completion(choices, usage, request.model)

    async def stream(self, request: GenerationRequest) -> AsyncGenerator[CompletionChunk, None]:
        self._maybe_fail()
        answers = [answer(request, index) for index in range(request.n)]
        sent = 0
        for index, reply in enumerate(answers):
            for piece in reply.pieces:
                if sent == self.fail_after_tokens:
                    raise UpstreamBadResponseError(
                        f"The fake model cut the stream after {sent} tokens "
                        "(FAKE_LLM_FAIL_AFTER_TOKENS)."
                    )
                if self.token_latency_s:
                    await asyncio.sleep(self.token_latency_s)
                sent += 1
                yield CompletionChunk(text=piece, index=index)
            for number, call in enumerate(reply.tool_calls):
                yield CompletionChunk(
                    index=index,
                    tool_calls=(ToolCallDelta(number, id=call.id, name=call.name),),
                )
                for at in range(0, len(call.arguments), ARGUMENT_PIECE):
                    if self.token_latency_s:
                        await asyncio.sleep(self.token_latency_s)
                    fragment = call.arguments[at : at + ARGUMENT_PIECE]
                    yield CompletionChunk(
                        index=index, tool_calls=(ToolCallDelta(number, arguments=fragment),)
                    )
            yield CompletionChunk(index=index, finish_reason=reply.finish_reason)
        yield CompletionChunk(
            usage=Usage(request_tokens(request), sum(a.completion_tokens for a in answers))
        )

    async def embed(self, request: EmbeddingRequest) -> Embeddings:
        """The same text, the same unit vector (so equal texts have cosine similarity 1)."""
        self._maybe_fail()
        dimensions = request.dimensions or FAKE_EMBEDDING_DIMENSIONS
        vectors = []
        tokens = 0
        for item in request.inputs:
            text = item if isinstance(item, str) else " ".join(map(str, item))
            tokens += count_tokens(text) if isinstance(item, str) else len(item)
            rng = random.Random(hashlib.sha256(text.encode()).digest())  # noqa: S311
            raw = [rng.gauss(0.0, 1.0) for _ in range(dimensions)]
            norm = math.sqrt(sum(x * x for x in raw)) or 1.0
            vectors.append(tuple(x / norm for x in raw))
        return Embeddings(tuple(vectors), tokens, request.model)

    async def readiness(self) -> str | None:
        return None

    async def aclose(self) -> None:
        return None
