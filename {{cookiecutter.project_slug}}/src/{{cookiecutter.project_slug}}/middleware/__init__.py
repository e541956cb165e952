"""Pure ASGI middleware: each class wraps `send` or `receive` and nothing more."""
