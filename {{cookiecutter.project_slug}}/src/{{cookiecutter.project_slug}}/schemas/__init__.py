"""Request and response bodies: validated on the way in, documented in OpenAPI."""
