"""Settings of the GraphQL API (`/graphql`)."""

from __future__ import annotations

from typing import Self

from pydantic import model_validator

from .common import SettingsPart


class GraphQLSettings(SettingsPart):
    # GraphiQL at GET /graphql (a browser IDE). Strawberry's page loads its scripts from
    # unpkg.com, so it is off by default (blank offline) and refused in production.
    graphql_ide: bool = False

    @model_validator(mode="after")
    def refuse_ide_in_production(self) -> Self:
        if self.graphql_ide and self.environment == "production":
            raise ValueError(
                "GRAPHQL_IDE=true is for development: GraphiQL is refused with "
                "ENVIRONMENT=production (it loads scripts from a CDN); unset it"
            )
        return self
