"""The GraphQL API's schema, resolvers, context and errors (the router is api/graphql.py)."""
