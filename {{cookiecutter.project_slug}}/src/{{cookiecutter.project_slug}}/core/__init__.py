"""Cross-cutting concerns: errors, logging, caching, lifecycle, process pool."""
