"""What can go wrong talking to a model, in terms the HTTP layer can map to a status."""

from __future__ import annotations


class ProviderError(Exception):
    """Base class: the upstream model could not produce (all of) an answer."""

    code = "upstream_error"
    retryable = False

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after


class UpstreamUnavailableError(ProviderError):
    """Could not connect, or the upstream answered 5xx."""

    code = "upstream_unavailable"
    retryable = True


class UpstreamTimeoutError(ProviderError):
    code = "upstream_timeout"
    retryable = True


class UpstreamRateLimitedError(ProviderError):
    code = "upstream_rate_limited"
    retryable = True


class UpstreamBadResponseError(ProviderError):
    """The upstream answered something that is not a valid completion (or cut a stream)."""

    code = "upstream_bad_response"


class UpstreamRejectedError(ProviderError):
    """The upstream refused the request itself (e.g. context too long): the caller's to fix."""

    code = "upstream_rejected"

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


class CircuitOpenError(ProviderError):
    code = "circuit_open"


class OverloadedError(ProviderError):
    """Every upstream slot (LLM_MAX_CONCURRENCY) stayed busy for too long."""

    code = "overloaded"


class UnsupportedParameterError(ValueError):
    """The request asks for something its model cannot do (the caller's to change)."""

    def __init__(self, param: str, message: str | None = None) -> None:
        super().__init__(message or f"'{param}' is not supported by this model.")
        self.param = param
        self.message = str(self)


class UnknownModelError(LookupError):
    """The request names a model this service does not serve."""

    def __init__(self, name: str, *, kind: str, available: list[str]) -> None:
        what = "model" if kind == "chat" else "embedding model"
        listed = ", ".join(available) or "none"
        super().__init__(f"The {what} '{name}' does not exist; available: {listed}.")
        self.name = name
        self.message = str(self)
