"""Provider for any server that speaks OpenAI's chat-completions API.

OpenAI, vLLM, Ollama, LM Studio, TGI and LiteLLM all do. One pooled aiohttp session
serves every request (made once, in the lifespan). aiohttp rather than httpx, by
measurement on a 2-core machine: proxying a 20 ms upstream at 64 concurrent
requests, a pooled httpx 0.28 client reached about 0.1x of the upstream's own
throughput, with connection errors, where aiohttp 3.14 reached about 0.8x.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncGenerator, Mapping
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp
import structlog

from .base import (
    Completion,
    CompletionChunk,
    EmbeddingRequest,
    Embeddings,
    GenerationRequest,
)
from .errors import (
    ProviderError,
    UpstreamBadResponseError,
    UpstreamRateLimitedError,
    UpstreamRejectedError,
    UpstreamTimeoutError,
    UpstreamUnavailableError,
)
from .openai_wire import chat_payload, embeddings_payload, parse_chunk, parse_completion


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """`Retry-After` as seconds: a number, or an HTTP date (RFC 9110)."""
    value = headers.get("Retry-After") or headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - time.time())


def upstream_message(body: str) -> str:
    try:
        data = json.loads(body)
        message = data["error"]["message"] if isinstance(data.get("error"), dict) else data
        return str(message)[:500]
    except (ValueError, KeyError, TypeError, AttributeError):
        return body[:500] or "no details"


def status_error(status: int, body: str, headers: Mapping[str, str]) -> ProviderError:
    detail = upstream_message(body)
    if status == 429:
        return UpstreamRateLimitedError(
            f"The model server is rate limiting requests: {detail}",
            retry_after=retry_after_seconds(headers),
        )
    if status in {400, 413, 422}:
        return UpstreamRejectedError(f"The model server rejected the request: {detail}")
    if status in {408, 504}:
        return UpstreamTimeoutError(f"The model server timed out ({status}): {detail}")
    if status in {401, 403}:
        return UpstreamBadResponseError(
            f"The model server refused this service's credentials ({status}); check LLM_API_KEY."
        )
    if status == 404:
        return UpstreamBadResponseError(
            f"The model server has no such model or route ({status}): {detail}; "
            "check LLM_BASE_URL and LLM_MODEL."
        )
    if status >= 500:
        return UpstreamUnavailableError(
            f"The model server failed ({status}): {detail}",
            retry_after=retry_after_seconds(headers),
        )
    return UpstreamBadResponseError(f"The model server answered {status}: {detail}")


class OpenAICompatibleProvider:
    name = "openai"

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        timeout_s: float,
        max_connections: int,
        connect_timeout_s: float = 5.0,
        max_tokens_parameter: str = "max_tokens",
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.max_tokens_parameter = max_tokens_parameter
        headers = {"Accept": "application/json", "Content-Type": "application/json"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self._session = aiohttp.ClientSession(
            headers=headers,
            # Streams: sock_read bounds the gap between two pieces, so a slow but live
            # stream is never cut while a hung one is. Whole answers also get a total.
            timeout=aiohttp.ClientTimeout(
                total=None, connect=connect_timeout_s, sock_read=timeout_s
            ),
            connector=aiohttp.TCPConnector(
                limit=max_connections, limit_per_host=max_connections, ttl_dns_cache=300
            ),
            raise_for_status=False,
        )
        self._total_timeout_s = timeout_s
        self._complete_timeout = aiohttp.ClientTimeout(
            total=timeout_s, connect=connect_timeout_s, sock_read=timeout_s
        )

    def _chat_url(self) -> str:
        return f"{self.base_url}/chat/completions"

    def _headers(self) -> dict[str, str]:
        # Pass the caller's request id upstream, so one id follows a request across services.
        request_id = structlog.contextvars.get_contextvars().get("request_id")
        return {"X-Request-ID": str(request_id)} if request_id else {}

    def check(self, request: GenerationRequest) -> None:
        return None  # the upstream decides; its refusals come back as 400s

    async def _post(self, path: str, payload: dict[str, Any]) -> bytes:
        """POST a JSON body and read the whole answer (bounded by the total timeout)."""
        body = json.dumps(payload).encode()
        try:
            async with self._session.post(
                f"{self.base_url}{path}",
                data=body,
                headers=self._headers(),
                timeout=self._complete_timeout,
            ) as response:
                raw = await response.read()
                if response.status != 200:
                    text = raw.decode("utf-8", "replace")
                    raise status_error(response.status, text, response.headers)
                return raw
        except TimeoutError as exc:
            raise UpstreamTimeoutError(
                f"The model server did not answer within {self._total_timeout_s:g} s."
            ) from exc
        except aiohttp.ClientError as exc:
            raise UpstreamUnavailableError(f"Cannot reach the model server: {exc}") from exc

    async def complete(self, request: GenerationRequest) -> Completion:
        payload = chat_payload(
            request, stream=False, max_tokens_parameter=self.max_tokens_parameter
        )
        raw = await self._post("/chat/completions", payload)
        try:
            return parse_completion(json.loads(raw), request.model)
        except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
            raise UpstreamBadResponseError(
                f"The model server sent an unreadable completion: {raw[:200]!r}"
            ) from exc

    async def embed(self, request: EmbeddingRequest) -> Embeddings:
        raw = await self._post("/embeddings", embeddings_payload(request))
        try:
            data = json.loads(raw)
            items = sorted(data["data"], key=lambda item: int(item.get("index", 0)))
            vectors = tuple(tuple(float(x) for x in item["embedding"]) for item in items)
            if len(vectors) != len(request.inputs):
                raise ValueError("one embedding per input expected")
            usage = data.get("usage") or {}
            tokens = int(usage.get("prompt_tokens") or 0)
            return Embeddings(vectors, tokens, str(data.get("model") or request.model))
        except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
            raise UpstreamBadResponseError(
                f"The model server sent unreadable embeddings: {raw[:200]!r}"
            ) from exc

    async def stream(self, request: GenerationRequest) -> AsyncGenerator[CompletionChunk, None]:
        payload = chat_payload(request, stream=True, max_tokens_parameter=self.max_tokens_parameter)
        try:
            async with self._session.post(
                self._chat_url(), data=json.dumps(payload).encode(), headers=self._headers()
            ) as response:
                if response.status != 200:
                    raise status_error(response.status, await response.text(), response.headers)
                async for chunk in self._read_events(response):
                    yield chunk
        except TimeoutError as exc:
            raise UpstreamTimeoutError(
                f"The model server sent nothing for {self._total_timeout_s:g} s."
            ) from exc
        except aiohttp.ClientPayloadError as exc:
            raise UpstreamBadResponseError(f"The model server cut the stream: {exc}") from exc
        except aiohttp.ClientError as exc:
            raise UpstreamUnavailableError(f"Cannot reach the model server: {exc}") from exc

    async def _read_events(
        self, response: aiohttp.ClientResponse
    ) -> AsyncGenerator[CompletionChunk, None]:
        async for raw_line in response.content:
            line = raw_line.decode("utf-8", "replace").strip()
            if not line.startswith("data:"):
                continue  # blank separators, comments (keep-alives), event names
            data = line[5:].strip()
            if data == "[DONE]":
                return
            try:
                event = json.loads(data)
                if not isinstance(event, dict):
                    raise TypeError("not an object")
                if isinstance(event.get("error"), dict):
                    raise UpstreamBadResponseError(
                        f"The model server failed mid-stream: {data[:300]}"
                    )
                chunks = parse_chunk(event)
            except (ValueError, TypeError, AttributeError, KeyError) as exc:
                raise UpstreamBadResponseError(f"Unreadable stream event: {data[:200]!r}") from exc
            for chunk in chunks:
                yield chunk
        raise UpstreamBadResponseError("The model server ended the stream without [DONE].")

    async def readiness(self) -> str | None:
        return None

    async def aclose(self) -> None:
        await self._session.close()
