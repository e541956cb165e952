"""`/graphql`: a GraphQL API beside REST, on the same services, credentials and rate limits.

Queries and mutations are POSTed as JSON; subscriptions run over a WebSocket at the
same path with the graphql-transport-ws protocol (the `graphql-ws` client, Apollo,
urql). How callers are authenticated: graphql/context.py; how errors look:
graphql/errors.py. GraphiQL (GET /graphql) only with GRAPHQL_IDE=true: its page loads
scripts from a CDN. The route stays out of /openapi.json, which cannot describe it:
the schema itself can (introspection).
"""

from __future__ import annotations

from datetime import timedelta
from typing import overload

from cross_web import HTTPException
from fastapi.responses import JSONResponse
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.exceptions import ConnectionRejectionError
from strawberry.fastapi import GraphQLRouter
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types.unset import UNSET, UnsetType

from ..core.errors import error_type
from ..graphql.context import GraphQLContext
from ..graphql.schema import schema
from ..settings import Settings
from .deps import LifecycleDep, ServicesDep

PATH = "/graphql"
# A socket is accepted before it is authenticated: it must send connection_init by then.
CONNECTION_INIT_TIMEOUT = timedelta(seconds=10)
MAX_OPERATIONS_PER_SOCKET = 20


async def graphql_context(services: ServicesDep, lifecycle: LifecycleDep) -> GraphQLContext:
    return GraphQLContext(services, lifecycle)


def transport_error(exc: HTTPException) -> JSONResponse:
    """A request GraphQL cannot read (not JSON, no query), answered as a GraphQL error."""
    extensions = {
        "code": "invalid_request",
        "type": error_type(exc.status_code),
        "param": None,
        "status": exc.status_code,
    }
    body = {"errors": [{"message": exc.reason, "extensions": extensions}]}
    return JSONResponse(body, status_code=exc.status_code)


class ServiceGraphQLRouter(GraphQLRouter[GraphQLContext, None]):
    @overload
    async def run(
        self, request: Request, context: GraphQLContext = ..., root_value: None = ...
    ) -> Response: ...

    @overload
    async def run(
        self, request: WebSocket, context: GraphQLContext = ..., root_value: None = ...
    ) -> WebSocket: ...

    async def run(
        self,
        request: Request | WebSocket,
        context: GraphQLContext = UNSET,
        root_value: None = UNSET,
    ) -> Response | WebSocket:
        if isinstance(request, WebSocket):
            observer = context.services.observer
            observer.websocket_session(opened=True)
            try:
                return await super().run(request, context, root_value)
            finally:
                observer.websocket_session(opened=False)
        try:
            return await super().run(request, context, root_value)
        except HTTPException as exc:
            return transport_error(exc)

    async def on_ws_connect(self, context: GraphQLContext) -> UnsetType | dict[str, object] | None:
        payload = context.connection_params if isinstance(context.connection_params, dict) else {}
        if not await context.connect(payload):
            raise ConnectionRejectionError  # closed with 4403, as graphql-transport-ws says
        return await super().on_ws_connect(context)


def router_for(settings: Settings) -> GraphQLRouter[GraphQLContext, None]:
    return ServiceGraphQLRouter(
        schema,
        path=PATH,
        context_getter=graphql_context,
        graphql_ide="graphiql" if settings.graphql_ide else None,
        allow_queries_via_get=False,
        subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
        connection_init_wait_timeout=CONNECTION_INIT_TIMEOUT,
        max_subscriptions_per_connection=MAX_OPERATIONS_PER_SOCKET,
        # Browsers on these origins may open the socket (same-origin pages always may).
        allowed_origins=settings.cors_origins,
        include_in_schema=False,
        tags=["graphql"],
    )
