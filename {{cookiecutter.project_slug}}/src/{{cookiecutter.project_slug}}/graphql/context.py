"""What a GraphQL operation knows: the services, its connection, and who is calling.

The caller is authenticated by `authenticate`, the function behind the REST routes'
`PrincipalDep`, run on the operation's connection. Over HTTP that happens when a field
first needs the caller: a refused credential is a GraphQL error in a 401 response, and
introspection needs none (like /openapi.json). A WebSocket is authenticated once, at
`connection_init` (refused: closed with 4403), by the `Authorization` entry of that
message's payload (or `X-API-Key` with API keys) or else by what the handshake carried:
an `Authorization` header or the `bearer.<credential>` subprotocol.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from starlette.exceptions import WebSocketException
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response
from strawberry import Info
from strawberry.fastapi import BaseContext
{% if cookiecutter.auth == "api_key" %}
from ..auth.api_keys import authenticate
{%- elif cookiecutter.auth == "jwt" %}
from ..auth.jwt import authenticate
{%- else %}
from ..auth.none import authenticate
{%- endif %}
from ..auth.principal import Principal
from ..core.context import RequestContext
from ..core.errors import APIError
from ..core.lifecycle import Lifecycle
from ..middleware.request_id import request_id_of
from ..services import Services

# Entries of the connection_init payload read as the handshake headers of these names.
CREDENTIAL_ENTRIES = ("authorization", "x-api-key")


def with_credentials(connection: HTTPConnection, payload: Mapping[str, object]) -> HTTPConnection:
    """The connection as if its handshake had carried the payload's credential entries."""
    given = {
        key.lower().encode(): value.encode("latin-1", "replace")
        for key, value in payload.items()
        if key.lower() in CREDENTIAL_ENTRIES and isinstance(value, str)
    }
    if not given:
        return connection
    headers = [(name, value) for name, value in connection.scope["headers"] if name not in given]
    headers += list(given.items())
    return HTTPConnection({**connection.scope, "headers": headers})


class GraphQLContext(BaseContext):
    def __init__(self, services: Services, lifecycle: Lifecycle) -> None:
        super().__init__()
        self.services = services
        self.settings = services.settings
        self.lifecycle = lifecycle
        self._principal: Principal | None = None
        self._refusal: APIError | None = None

    @property
    def connection(self) -> HTTPConnection:
        if self.request is None:
            raise RuntimeError("the GraphQL context is used outside an operation")
        return self.request

    @property
    def http_request(self) -> Request | None:
        """The HTTP request of the operation; None over a WebSocket."""
        return self.request if isinstance(self.request, Request) else None

    @property
    def http_response(self) -> Response | None:
        """Where headers for the client go; None over a WebSocket."""
        return self.response if isinstance(self.response, Response) else None

    async def principal(self) -> Principal:
        """The caller; over HTTP authenticated on first use, refused with a 401."""
        if self._principal is None:
            if self._refusal is not None:
                raise self._refusal
            if self.http_request is None:  # a WebSocket is authenticated before any operation
                raise RuntimeError("the WebSocket was not authenticated at connection_init")
            try:
                self._principal = await authenticate(self.connection)
            except APIError as exc:
                self._refusal = exc
                if self.http_response is not None:
                    self.http_response.status_code = exc.status_code
                raise
        return self._principal

    async def caller(self) -> RequestContext:
        """Who the work is for, as the service, the limits and the history know it."""
        principal = await self.principal()
        return RequestContext(principal.id, request_id_of(self.connection.scope) or None)

    @contextmanager
    def work(self) -> Iterator[None]:
        """Model work a drain lets finish and refuses anew (the edge counts HTTP's)."""
        if self.http_request is not None:
            yield
            return
        if self.lifecycle.refusing:
            raise APIError(
                503, "The server is shutting down; reconnect shortly.", code="shutting_down"
            )
        self.lifecycle.work_started()
        try:
            yield
        finally:
            self.lifecycle.work_finished()

    async def connect(self, payload: Mapping[str, object]) -> bool:
        """Authenticate a WebSocket at connection_init; False if the credential is refused."""
        try:
            self._principal = await authenticate(with_credentials(self.connection, payload))
        except (APIError, WebSocketException):
            return False
        return True


ServiceInfo = Info[GraphQLContext, None]
